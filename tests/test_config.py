"""Configuration loading: the shipped files validate, bad ones name file, line and field."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from commsmon.config.load import load_config
from commsmon.errors import ConfigError
from commsmon.sources.snmp.poller import jobs_from_config

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "config" / "demo.yaml"


@pytest.mark.parametrize("name", ["demo.yaml", "shanting.yaml"])
def test_shipped_configs_are_valid(name: str) -> None:
    """The district inventory and the demo load: a centre and 14 villages."""
    config = load_config(ROOT / "config" / name)
    inventory = config.inventory()
    villages = [s for s in inventory.sites.values() if s.role == "village"]
    assert len(villages) == 14
    assert {s.town for s in villages} >= {"山城街道", "店子镇", "西集镇", "凫城镇"}
    assert any(d.kind == "pdt_repeater" for d in inventory.devices.values())


def test_demo_and_real_inventory_match() -> None:
    """demo.yaml is the same inventory as shanting.yaml, pointed elsewhere."""
    demo = load_config(DEMO).inventory()
    real = load_config(ROOT / "config" / "shanting.yaml").inventory()
    # The demo polls faster, so its readings age faster, and names demo keepers (the
    # real file leaves them for the bureau); everything else is the same.
    assert {k: dataclasses.replace(d, max_age={}) for k, d in demo.devices.items()} == \
        {k: dataclasses.replace(d, max_age={}) for k, d in real.devices.items()}
    assert {k: dataclasses.replace(s, keeper="") for k, s in demo.sites.items()} == real.sites


def _broken(tmp_path: Path, old: str, new: str) -> Path:
    shutil.copytree(ROOT / "config" / "profiles", tmp_path / "profiles")
    text = DEMO.read_text(encoding="utf-8")
    assert old in text
    path = tmp_path / "bad.yaml"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


def _problems(path: Path) -> list[str]:
    """The located problems ``load_config`` raises for ``path`` (it must raise)."""
    with pytest.raises(ConfigError) as exc:
        load_config(path)
    return exc.value.problems


def _line_of(path: Path, needle: str) -> int:
    lines = path.read_text(encoding="utf-8").splitlines()
    return next(i for i, line in enumerate(lines, 1) if needle in line)


def test_bad_port_names_file_line_and_field(tmp_path: Path) -> None:
    """An out-of-range port is reported as FILE:LINE: sites[i].devices[j].snmp.port."""
    path = _broken(tmp_path, "port: 16107,", "port: 99999,")
    problems = _problems(path)
    line = _line_of(path, "99999")
    assert problems == [
        f"{path}:{line}: sites[2].devices[1].snmp.port: must be 1..65535"
    ]


def test_unknown_parent_is_located(tmp_path: Path) -> None:
    """A reference to a device that does not exist names the field and line."""
    path = _broken(tmp_path, "parent: v03-router", "parent: v03-nope")
    problems = _problems(path)
    (problem,) = problems
    assert problem.startswith(f"{path}:{_line_of(path, 'v03-nope')}: sites[3].devices[1].parent")
    assert "unknown device 'v03-nope'" in problem


def test_unknown_profile_and_kind(tmp_path: Path) -> None:
    """Unknown kinds and profiles are errors with their paths."""
    path = _broken(tmp_path, "kind: satphone", "kind: telephone")
    problems = _problems(path)
    assert "sites[1].devices" in problems[0]
    assert ".kind:" in problems[0]


def test_yaml_syntax_error_has_line(tmp_path: Path) -> None:
    """Broken YAML is reported with its line, not a traceback."""
    path = tmp_path / "x.yaml"
    path.write_text("sites:\n  - id: a\n    name: [unclosed\n", encoding="utf-8")
    problems = _problems(path)
    assert problems[0].startswith(f"{path}:")
    assert "not valid YAML" in problems[0]


def test_bad_profile_is_located(tmp_path: Path) -> None:
    """A profile error names the profile file and field."""
    path = _broken(tmp_path, "district:", "district:")
    bad = tmp_path / "profiles" / "ups-rfc1628.yaml"
    bad.write_text(bad.read_text().replace("decode: enum\n", "decode: bogus\n", 1))
    problems = _problems(path)
    assert any(p.startswith(f"{bad}:") and "decode" in p for p in problems)


def test_check_config_cli(tmp_path: Path) -> None:
    """`commsmon check-config` exits 0 on a good file and non-zero with located errors."""
    good = subprocess.run(
        [sys.executable, "-m", "commsmon", "check-config", str(DEMO)],
        capture_output=True, text=True, check=False,
    )
    assert good.returncode == 0, good.stderr
    assert "15 sites" in good.stdout
    path = _broken(tmp_path, "port: 16107,", "port: 0,")
    bad = subprocess.run(
        [sys.executable, "-m", "commsmon", "check-config", str(path)],
        capture_output=True, text=True, check=False,
    )
    assert bad.returncode != 0
    assert "snmp.port: must be 1..65535" in bad.stderr


def test_parent_loop_is_rejected(tmp_path: Path) -> None:
    """A camera and its router naming each other as parent is a located error."""
    loop = "params: {uplink_ifindex: 2}\n        parent: v01-cam1"
    path = _broken(tmp_path, "params: {uplink_ifindex: 2}", loop)
    problems = _problems(path)
    assert any("parents form a loop" in p for p in problems)


def test_missing_profiles_dir_is_one_located_error(tmp_path: Path) -> None:
    """A profiles_dir that does not exist is one error at its line, not 80."""
    path = tmp_path / "c.yaml"
    path.write_text(DEMO.read_text(encoding="utf-8"), encoding="utf-8")
    problems = _problems(path)
    (problem,) = problems
    assert problem.startswith(f"{path}:{_line_of(path, 'profiles_dir')}: profiles_dir: directory")


def test_secret_references_are_resolved(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """${env:...}, ${file:...} and ${credential:...} fill secrets; they are never inline."""
    (tmp_path / "token").write_text("file-token\n")
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "community").write_text("cred-community")
    monkeypatch.setenv("COMMSMON_TEST_SECRET", "env-secret")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    path = _broken(tmp_path, "  token: demo-token", f"  token: ${{file:{tmp_path / 'token'}}}")
    text = path.read_text(encoding="utf-8")
    text = text.replace("community: v01-router,", "community: \"${credential:community}\",", 1)
    text = text.replace("client_id: commsmon-demo", "client_id: ${env:COMMSMON_TEST_SECRET}", 1)
    path.write_text(text, encoding="utf-8")
    config = load_config(path)
    assert config.http.token is not None
    assert config.http.token.get_secret_value() == "file-token"
    assert config.mqtt is not None and config.mqtt.client_id == "env-secret"
    router = next(d for _, d in config.devices() if d.id == "v01-router")
    assert router.snmp is not None and router.snmp.community is not None
    assert router.snmp.community.get_secret_value() == "cred-community"
    assert "file-token" not in repr(config)


def test_missing_secret_is_located(tmp_path: Path) -> None:
    """An unset variable or unreadable file names file, line and field."""
    path = _broken(tmp_path, "  token: demo-token", "  token: ${env:COMMSMON_NOT_SET_ANYWHERE}")
    problems = _problems(path)
    (problem,) = problems
    line = _line_of(path, "COMMSMON_NOT_SET_ANYWHERE")
    assert problem == (f"{path}:{line}: http.token: environment variable "
                       "COMMSMON_NOT_SET_ANYWHERE is not set")


def test_shard_index_beyond_count_is_located(tmp_path: Path) -> None:
    """shard.index must be below shard.count, and sharding needs a shared MQTT group."""
    path = _broken(tmp_path / "a", "\nhttp:", "\nshard: {index: 3, count: 3}\nhttp:")
    problems = _problems(path)
    assert problems == [
        f"{path}:{_line_of(path, 'shard:')}: shard: index must be below count (3)"
    ]
    path = _broken(tmp_path / "b", "\nhttp:", "\nshard: {index: 1, count: 3}\nhttp:")
    problems = _problems(path)
    assert problems == [
        f"{path}:{_line_of(path, 'shard:')}: shard: several shards need 'mqtt' with a "
        "'share_group'"
    ]


def test_snmp_v3_needs_a_user_and_long_passwords(tmp_path: Path) -> None:
    """version v3 without a user, or with a short password, is a located error."""
    path = _broken(tmp_path / "a", "port: 16107,", "port: 16107, version: v3,")
    problems = _problems(path)
    assert problems == [
        f"{path}:{_line_of(path, 'version: v3')}: sites[2].devices[1].snmp: "
        "version v3 needs a 'user'"
    ]
    path = _broken(tmp_path / "b", "port: 16107,",
                   "port: 16107, version: v3, user: {name: u, auth_password: short},")
    problems = _problems(path)
    (problem,) = problems
    assert "sites[2].devices[1].snmp.user: auth_password must be at least 8 characters" in problem


def test_unknown_snmp_charset_is_located(tmp_path: Path) -> None:
    path = _broken(tmp_path, "port: 16107,", "port: 16107, charset: klingon,")
    problems = _problems(path)
    (problem,) = problems
    assert problem.startswith(f"{path}:{_line_of(path, 'klingon')}: sites[2].devices[1].snmp")
    assert "unknown charset 'klingon'" in problem


def test_reply_from_takes_addresses_only(tmp_path: Path) -> None:
    """An allow-list of reply addresses is IP addresses (a name could change under us);
    a good one reaches the poll job."""
    path = _broken(tmp_path, "port: 16107,", "port: 16107, reply_from: [vrrp-peer],")
    (problem,) = _problems(path)
    assert problem.startswith(f"{path}:{_line_of(path, 'vrrp-peer')}: sites[2].devices[1].snmp")
    assert "reply_from" in problem
    good = _broken(tmp_path / "g", "port: 16107,", "port: 16107, reply_from: [127.0.0.2],")
    jobs = jobs_from_config(load_config(good))
    assert {job.target.reply_from for job in jobs} == {frozenset(), frozenset({"127.0.0.2"})}


@pytest.mark.parametrize(("find", "replace", "words"), [
    # Two readings, one metric name: two series with identical labels.
    ("metric: battery_runtime_seconds", "metric: battery_charge_ratio",
     "both exposed as metric 'battery_charge_ratio'"),
    # A reading shadowing a built-in family.
    ("metric: battery_runtime_seconds", "metric: device_up", "shadow a built-in family"),
])
def test_metric_names_are_unique(tmp_path: Path, find: str, replace: str, words: str) -> None:
    """check-config rejects what would break every scrape, at the profile's file."""
    path = _broken(tmp_path, "district:", "district:")
    bad = tmp_path / "profiles" / "ups-rfc1628.yaml"
    assert find in bad.read_text()
    bad.write_text(bad.read_text().replace(find, replace, 1))
    problems = _problems(path)
    assert any(p.startswith(f"{bad}:") and words in p for p in problems), problems


def test_reserved_prefixes_cover_every_builtin_family() -> None:
    """Every family commsmon writes itself (the exposition's and the daemon's own
    metrics) starts with a reserved prefix: no profile reading can collide with one."""
    import re

    from prometheus_client import REGISTRY

    import commsmon.outputs.alerts.delivery
    import commsmon.selfmetrics  # noqa: F401
    from commsmon.config.profiles import RESERVED_METRIC_PREFIXES

    source = (ROOT / "commsmon" / "outputs" / "metrics.py").read_text()
    written = set(re.findall(r'_Family\(\s*"commsmon_([a-z0-9_]+)"', source))
    registered = {n.removeprefix("commsmon_") for n in REGISTRY._names_to_collectors
                  if n.startswith("commsmon_")}
    assert written and registered
    for name in written | registered:
        assert name.startswith(RESERVED_METRIC_PREFIXES), name
    # ... and no shipped profile reading uses one.
    config = load_config(DEMO)
    for profile in config.profiles.values():
        for spec in profile.readings.values():
            assert not (spec.metric or "x").startswith(RESERVED_METRIC_PREFIXES)


def test_unsupported_when_names_readings_of_its_profile(tmp_path: Path) -> None:
    """A rule on a reading the profile does not have is a located error."""
    path = _broken(tmp_path, "district:", "district:")
    bad = tmp_path / "profiles" / "ups-rfc1628.yaml"
    bad.write_text(bad.read_text().replace("output_source: normal, charge", "source: normal, "
                                           "charge", 1))
    problems = _problems(path)
    assert any(p.startswith(f"{bad}:") and "unsupported_when names 'source'" in p
               for p in problems), problems


@pytest.mark.parametrize(("before", "after", "words"), [
    # upsTrapOnBattery stating output_source 1 where the poll reads the label battery
    ("    set: {output_source: battery}\n", "    set: {output_source: 1}\n",
     "tells reading 'output_source' as a number, but the reading is a text (decode: enum)"),
    # ... or a label the poll's enum does not have
    ("    set: {output_source: battery}\n", "    set: {output_source: on_battery}\n",
     "sets reading 'output_source' to 'on_battery', not one of its labels"),
    # its runtime varbind read as a truth value where the poll reads minutes
    ("runtime: {oid: 1.3.6.1.2.1.33.1.2.3.0, scale: 60, invalid: [-1]}  #",
     "runtime: {oid: 1.3.6.1.2.1.33.1.2.3.0, decode: bool}  #",
     "tells reading 'runtime' as true/false, but the reading is a number (decode: number)"),
])
def test_a_trap_tells_a_reading_in_its_own_type(tmp_path: Path, before: str, after: str,
                                                words: str) -> None:
    """A trap that tells a reading in another type than the profile reads it (a number
    where the poll gives a label or true/false) is a located error: the core compares
    readings by type too (a genset's mains_present told 0.0 is not False)."""
    path = _broken(tmp_path, "district:", "district:")
    bad = tmp_path / "profiles" / "ups-rfc1628.yaml"
    text = bad.read_text()
    assert before in text
    bad.write_text(text.replace(before, after, 1))
    problems = _problems(path)
    assert any(p.startswith(f"{bad}:") and words in p for p in problems), problems


def _with_receiver(tmp_path: Path, *lines: str) -> Path:
    """The demo with an ``alerting`` section of one receiver, given as its block's lines."""
    block = "".join(f"{'    - ' if i == 0 else '      '}{line}\n" for i, line in enumerate(lines))
    return _broken(tmp_path, "\nhttp:", f"\nalerting:\n  receivers:\n{block}http:")


@pytest.mark.parametrize(("kind", "option"), [
    ("webhook", "keyword: 告警"),  # a DingTalk robot's keyword
    ("webhook", "secret: SEC0123456789"),  # only the signing robots take a secret
    ("wecom", "secret: SEC0123456789"),  # WeCom does not sign: its key is in the URL
    ("webhook", "firing_ttl: 86400"),  # Alertmanager's alone
    ("dingtalk", "external_url: http://commsmon.example:9470"),  # Alertmanager's shapes only
])
def test_an_option_of_another_receiver_type_is_located(
    tmp_path: Path, kind: str, option: str
) -> None:
    """Each receiver type takes only its own options: another type's is an error at its
    line that names the type refusing it."""
    path = _with_receiver(tmp_path, "name: pager", f"type: {kind}",
                          "url: http://127.0.0.1:9095/hook", option)
    key = option.split(":")[0]
    assert _problems(path) == [
        f"{path}:{_line_of(path, option)}: alerting.receivers[0].{key}: "
        f"not an option of type {kind!r}"
    ]


def test_an_unknown_or_missing_receiver_type_is_located(tmp_path: Path) -> None:
    """``type`` picks the receiver's spec: an unknown one names the known ones at its line,
    a missing one is a missing field."""
    path = _with_receiver(tmp_path / "a", "name: pager", "type: telegram", "url: http://x/hook")
    assert _problems(path) == [
        f"{path}:{_line_of(path, 'telegram')}: alerting.receivers[0].type: must be one of "
        "'webhook', 'alertmanager', 'dingtalk', 'wecom', 'feishu'"
    ]
    path = _with_receiver(tmp_path / "b", "name: pager", "url: http://x/hook")
    assert _problems(path) == [
        f"{path}:{_line_of(path, 'name: pager')}: alerting.receivers[0].type: Field required"
    ]


def test_receiver_options_load_and_firing_ttl_outlives_repeat_interval(tmp_path: Path) -> None:
    """Each type's own options load; an Alertmanager ``firing_ttl`` is positive seconds and
    longer than ``repeat_interval`` (else Alertmanager resolves a firing alert between two
    pushes), each a located error."""
    path = _with_receiver(tmp_path / "a", "name: am", "type: alertmanager",
                          "url: http://127.0.0.1:9093", "firing_ttl: 0")
    assert _problems(path) == [
        f"{path}:{_line_of(path, 'firing_ttl')}: alerting.receivers[0].firing_ttl: "
        "Input should be greater than 0"
    ]
    path = _with_receiver(tmp_path / "b", "name: am", "type: alertmanager",
                          "url: http://127.0.0.1:9093", "firing_ttl: 3600")
    assert _problems(path) == [
        f"{path}:{_line_of(path, 'alerting:')}: alerting: receiver 'am': firing_ttl (3600 s) "
        "must be longer than repeat_interval (14400 s), or Alertmanager resolves a firing "
        "alert before it is pushed again"
    ]
    path = _with_receiver(tmp_path / "c", "name: am", "type: alertmanager",
                          "url: http://127.0.0.1:9093", "firing_ttl: 28800",
                          "external_url: http://commsmon.example:9470/")
    (am,) = load_config(path).alerting.receivers
    assert am.type == "alertmanager" and am.firing_ttl == 28800
    assert str(am.external_url) == "http://commsmon.example:9470/"
    path = _with_receiver(tmp_path / "d", "name: duty", "type: dingtalk",
                          "url: https://oapi.dingtalk.com/robot/send?access_token=x",
                          "keyword: 告警")
    (duty,) = load_config(path).alerting.receivers
    assert duty.type == "dingtalk" and duty.keyword == "告警"


def test_the_alerting_docstring_example_is_valid() -> None:
    """The example at the top of commsmon/config/alerting.py validates as it stands."""
    import textwrap

    from ruamel.yaml import YAML

    import commsmon.config.alerting
    from commsmon.config.alerting import AlertingSpec

    example = textwrap.dedent((commsmon.config.alerting.__doc__ or "").split("Example::")[1])
    spec = AlertingSpec.model_validate(YAML(typ="safe").load(example)["alerting"])
    assert {r.type for r in spec.receivers} == {"dingtalk", "webhook", "alertmanager"}


def test_demo_alerting_example_uncommented_is_valid(tmp_path: Path) -> None:
    """The commented ``alerting`` example in demo.yaml loads once uncommented, its DingTalk
    receiver with its keyword."""
    lines = DEMO.read_text(encoding="utf-8").splitlines(keepends=True)
    start = lines.index("# alerting:\n")
    end = next(i for i in range(start, len(lines)) if not lines[i].startswith("#"))
    commented = "".join(lines[start:end])
    path = _broken(tmp_path, commented, "".join(line[2:] for line in lines[start:end]))
    duty, archive = load_config(path).alerting.receivers
    assert duty.type == "dingtalk" and duty.keyword == "告警" and duty.secret is not None
    assert archive.type == "webhook" and str(archive.external_url) == "http://127.0.0.1:9470/"


def test_a_reading_the_core_reads_cannot_be_renamed_away(tmp_path: Path) -> None:
    """Renaming the generator's mains_present (the core's mains-loss evidence) would
    silently turn outage detection off: every generator using the profile is refused,
    at its profile line."""
    path = _broken(tmp_path, "district:", "district:")
    profile = tmp_path / "profiles" / "genset-gateway.yaml"
    assert "\n  mains_present:" in profile.read_text()
    profile.write_text(profile.read_text().replace("\n  mains_present:", "\n  mains_ok:", 1))
    problems = _problems(path)
    assert problems and all("has no reading 'mains_present', which the core reads from a "
                            "generator for mains loss" in p for p in problems), problems
    assert problems[0].startswith(f"{path}:") and ".profile:" in problems[0]


def test_an_enum_label_the_core_compares_cannot_be_renamed(tmp_path: Path) -> None:
    """upsOutputSource 5 mapped to 'on_battery' instead of 'battery': the core would
    never see the UPS on battery. Refused at the profile."""
    path = _broken(tmp_path, "district:", "district:")
    profile = tmp_path / "profiles" / "ups-rfc1628.yaml"
    assert "5: battery" in profile.read_text()
    profile.write_text(profile.read_text().replace("5: battery", "5: on_battery", 1))
    problems = _problems(path)
    assert any(p.startswith(f"{profile}:") and "no label 'battery'" in p for p in problems), \
        problems


def test_a_trap_path_check_needs_commsmon_to_listen(tmp_path: Path) -> None:
    """trap_every on a site, but no traps.listen: a located error, not a path that is
    forever down."""
    path = _broken(tmp_path, "    town: 店子镇\n", "    town: 店子镇\n    trap_every: 900\n")
    (problem,) = _problems(path)
    assert "trap_every" in problem and "traps.listen" in problem and f"{path}:" in problem


def test_devices_sharing_a_trap_address_are_a_located_warning(tmp_path: Path) -> None:
    """With traps on, two devices sending from one address (a router's NAT) load, with a
    warning at the second one's snmp: their traps need snmpTrapAddress.0 or engine IDs."""
    path = _broken(tmp_path, "district: 山亭区\n",
                   "district: 山亭区\ntraps: {listen: ['127.0.0.1:16162']}\n")
    config = load_config(path)
    assert config.warnings and all(f"{path}:" in w for w in config.warnings)
    assert "send traps from 127.0.0.1" in config.warnings[0]
    assert load_config(DEMO).warnings == []  # traps off: nothing to tell apart


def test_a_setup_keeps_values_devices_have_alike_once(tmp_path: Path) -> None:
    """The daemon keeps its setup (pickled from the child that loads it) for the whole
    run: values thousands of devices have alike are one object each, numbers too (pickle
    copies a number at each reference), and a power feed's ref is the very id of the
    device it names.  Values that differ stay apart, 0.0 and -0.0 as well."""
    import json
    import math

    from commsmon.config.compile import load_setup
    from commsmon.sim.scale import province

    endpoints = [("127.0.0.1", 16100, "public"), ("127.0.0.1", 16101, "public")]
    data = province(3, endpoints)
    specs = [d for s in data["sites"] for d in s["devices"] if "generator" in d]
    for genset, load in zip(specs, (-0.0, 0.0, 0.0), strict=True):
        genset["generator"] = {**genset["generator"], "expected_load": load}
    path = tmp_path / "province.yaml"
    path.write_text(json.dumps(data), encoding="utf-8")
    setup = load_setup(path)  # in a child process, as the daemon loads it
    devices = setup.tracked.devices  # one instance: the whole inventory
    assert len({id(d.checkin_validity) for d in devices.values()}) == len(
        {d.checkin_validity for d in devices.values()})
    satphones = [devices[f"v0000{n}-satphone"] for n in range(3)]
    assert satphones[0].battery_hours is satphones[1].battery_hours is satphones[2].battery_hours
    assert len({id(j.interval) for j in setup.jobs}) == 1
    assert len({id(j.target.port) for j in setup.jobs}) == 2  # 16100, 16101: not small ints
    loads = [devices[f"v0000{n}-genset"].generator for n in range(3)]
    assert [math.copysign(1, c.expected_load) for c in loads if c] == [-1, 1, 1]
    routers = [devices[f"v0000{n}-router"] for n in range(3)]
    assert routers[0].profile is routers[1].profile is devices["centre-rpt1"].profile
    assert routers[0].power.kind is routers[2].power.kind
    assert routers[0].power.ref is devices["v00000-ups"].id
    assert routers[0].power == devices["v00000-cam1"].power
    assert routers[0].power.ref != routers[1].power.ref
    gensets = [devices[f"v0000{n}-genset"] for n in range(3)]
    assert gensets[0].generator is not None
    assert gensets[1].generator is gensets[2].generator is not gensets[0].generator
    targets = [job.target for job in setup.jobs]
    assert len({id(t.host) for t in targets}) == len({id(t.community) for t in targets}) == 1
    assert len({id(t.reply_from) for t in targets}) == 1
    assert {t.port for t in targets} == {16100, 16101}
    presence = [r for r in setup.routes.values() if r.kind == "status"]
    assert len(presence) == 9 and len({id(r.readings) for r in presence}) == 1
    assert not presence[0].readings


def test_values_equal_but_written_apart_are_not_shared() -> None:
    """A config may say ``expected_load: -0.0``: that curve keeps its own -0.0 (as the
    API shows it), whichever genset was read first."""
    from commsmon.core.model import GeneratorCurve
    from commsmon.core.shared import Shared

    one = Shared()
    zero = one(GeneratorCurve(((0.5, 1.5),), 200.0, 0.0))
    assert one(GeneratorCurve(((0.5, 1.5),), 200.0, -0.0)) is not zero
    assert one(GeneratorCurve(((0.5, 1.5),), 200.0, 0.0)) is zero
    assert one(1.0) is not one(1) and one(True) is True


def test_a_shard_keeps_of_other_shards_devices_only_their_site(tmp_path: Path) -> None:
    """Each of five shards of a 100 000-device province kept every device (42 MiB of
    inventory) and every device's /metrics labels while it tracks a fifth: now it keeps
    the devices it tracks, and of the others only their site (log lines, trap
    counters) and which shards track them, those few tuples shared."""
    import gc
    import json
    import pickle
    from types import FunctionType, ModuleType

    from commsmon.config.compile import Setup
    from commsmon.core.model import Device
    from commsmon.sim.scale import province

    endpoints = [("127.0.0.1", 16100, "public"), ("127.0.0.1", 16101, "public")]
    data = province(12, endpoints)
    data["shard"] = {"index": 1, "count": 3}
    data["mqtt"] = {**data["mqtt"], "share_group": "commsmon"}
    path = tmp_path / "shard.yaml"
    path.write_text(json.dumps(data), encoding="utf-8")
    config = load_config(path)
    setup = pickle.loads(pickle.dumps(Setup.of(config)))
    every = {d.id: d.site for d in config.inventory().devices.values()}
    tracked = set(setup.tracked.devices)
    assert setup.site_of == every and tracked < every.keys()
    others = every.keys() - tracked
    assert len({every[d] for d in others}) >= 4  # villages another shard keeps alone

    reached: dict[int, object] = {}
    todo: list[object] = [setup]
    while todo:  # what the setup holds (not through classes: they reach every module)
        obj = todo.pop()
        if id(obj) not in reached and not isinstance(obj, type | ModuleType | FunctionType):
            reached[id(obj)] = obj
            todo.extend(gc.get_referents(obj))
    kept = {o.id for o in reached.values() if isinstance(o, Device)}
    assert kept == tracked
    labels = "\n".join(o for o in reached.values() if isinstance(o, str))  # /metrics'
    assert all(f'device="{d}"' not in labels for d in others)
    assert all(f'device="{d}"' in labels for d in tracked)
    destinations = setup.plan.destinations
    assert set(destinations) == every.keys()
    assert len({id(t) for t in destinations.values()}) == len(set(destinations.values()))
