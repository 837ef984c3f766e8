# Two entry points for a newcomer on Debian (as root, or with sudo):
#   make demo   install, then run the daemon on the built-in simulated fleet
#   make test   install, then lint, type-check and run every test
VENV ?= .venv
PYTHON ?= python3
DEBIAN_PACKAGES := mosquitto mosquitto-clients snmpd snmp prometheus prometheus-alertmanager systemd \
	python3-venv util-linux mount
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: demo test lint deps venv clean

demo: deps venv
	$(VENV)/bin/commsmon demo

test: deps venv lint
	$(VENV)/bin/pytest

lint: venv
	$(VENV)/bin/ruff check commsmon tests bench deploy
	$(VENV)/bin/mypy --strict commsmon

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
	touch $@

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
