# Two entry points for a newcomer on Debian (as root, or with sudo):
#   make demo   install, then run the daemon on the built-in simulated fleet
#   make test   install, then lint, type-check and run every test
VENV ?= .venv
PYTHON ?= python3
DEBIAN_PACKAGES := mosquitto mosquitto-clients snmpd snmp prometheus prometheus-alertmanager etcd-server systemd chromium fonts-wqy-microhei \
	python3-venv util-linux mount \
	fonts-noto-cjk fontconfig libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 poppler-utils
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: demo test lint deps venv clean catalogs

demo: deps venv
	$(VENV)/bin/commsmon demo

# The tests marked idle (minutes of real time waiting for timers, little CPU) run beside
# the others, so their waits do not add to the suite's time; their report follows.
test: deps venv lint
	@echo "the tests marked idle run beside the others; their report follows theirs"; \
	log=$$(mktemp); \
	$(VENV)/bin/pytest -m idle -p no:cacheprovider > $$log 2>&1 & idle=$$!; \
	$(VENV)/bin/pytest -m "not idle"; rest=$$?; \
	wait $$idle; idle_rc=$$?; \
	echo "--- the tests marked idle, run beside the others ($(VENV)/bin/pytest -m idle):"; \
	cat $$log; rm -f $$log; \
	[ $$rest -eq 0 ] && [ $$idle_rc -eq 0 ]

lint: venv
	$(VENV)/bin/ruff check commsmon tests bench deploy
	$(VENV)/bin/mypy --strict commsmon

# After changing words in the code: refresh the template and merge it into the zh-CN and
# en catalogs (commsmon/outputs/wording/locale), then translate the new zh-CN entries.
LOCALE := commsmon/outputs/wording/locale
catalogs: venv
	$(VENV)/bin/pybabel extract -F babel.cfg -k N_ -k _n:1,2 --no-location --sort-output \
	  --project commsmon -w 100 -o $(LOCALE)/commsmon.pot .
	$(VENV)/bin/pybabel update -i $(LOCALE)/commsmon.pot -d $(LOCALE) -D commsmon \
	  -w 100 --ignore-obsolete

# Debian packages the daemon's peers and the tests need; installed only when missing.
deps:
	@missing=""; for p in $(DEBIAN_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[test]'
	# the reports' charts: matplotlib's font list rebuilt now the CJK fonts are installed
	$(VENV)/bin/python -c "import matplotlib.font_manager as fm; fm._load_fontmanager(try_read_cache=False)"
	touch $@

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
