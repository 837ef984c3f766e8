"""The field table: hand-computed villages through the real config loader and core.

Each case in :mod:`tests.field.villages` is judged for every scenario and
``now``; the verdict, the endurance (known, unknown with its bounds, none
working, unbounded), the surviving channels, the words of the reason in zh-CN
and en, device states and endurance, and the alerts that fire (or must not)
are checked against the arithmetic written beside the case.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from commsmon.core import readiness
from commsmon.core.rules import DEFAULT_RULES, AlertEngine, RuleSpec
from commsmon.core.snapshot import Snapshot
from commsmon.outputs.wording import Wording
from tests.field.harness import NOW, Expect, Village, describe, evaluate
from tests.field.villages import VILLAGES

# Ids, units and the acronyms of the kit may stand in a Chinese text; no other Latin word.
_ALLOWED = re.compile(r"^([A-Z0-9]+|[a-z0-9]+(-[a-z0-9]+)*|L|L/h|h|kW|MHz|M|dBm)$")


def _result(snap: Snapshot, key: str, case: Village) -> tuple[str, object]:
    site, _, scenario = key.rpartition("/")
    site = site or case.site
    return site, snap.sites[site].scenarios[scenario]


def _check(expect: Expect, result: object, key: str, site: str) -> None:
    from commsmon.core.readiness import ScenarioResult

    assert isinstance(result, ScenarioResult)
    e = result.endurance
    got = f"{key}: got ready={result.ready} [{e.lower}, {e.upper}]; want {describe(expect)}"
    assert result.ready is expect.ready, got
    if expect.hours is not None:
        assert e.exact, got
        if math.isinf(expect.hours):
            assert e.unbounded, got
        else:
            assert e.lower == pytest.approx(expect.hours, abs=1e-3), got
    else:
        assert not e.exact, got
        assert e.lower == pytest.approx(expect.at_least or 0.0, abs=1e-3), got
        if expect.at_most is not None:
            assert e.upper == pytest.approx(expect.at_most, abs=1e-2), got
    if expect.surviving is not None:
        assert set(result.surviving) == set(expect.surviving), got
    if expect.until is not None:
        assert result.until == pytest.approx(NOW + expect.until * 3600, abs=1), got
    for lang, words in (("zh", expect.zh), ("en", expect.en)):
        text = Wording(lang, now=NOW).verdict(result.as_fact(), site)  # type: ignore[arg-type]
        for word in words:
            assert word in text, f"{key} ({lang}): {word!r} not in {text!r}"
    zh = Wording("zh", now=NOW).verdict(result.as_fact(), site)
    _only_chinese(zh, key)


def _only_chinese(text: str, where: str) -> None:
    """No English word in a Chinese text but ids, units and acronyms."""
    for word in re.findall(r"[A-Za-z][A-Za-z0-9/_.-]*", text):
        assert _ALLOWED.match(word), f"{where}: English {word!r} in {text!r}"


@pytest.mark.parametrize("case", VILLAGES, ids=lambda c: c.name)
def test_village(case: Village, tmp_path: Path) -> None:
    """Every scenario, now, state, device endurance and alert of one hand-computed village."""
    snap = evaluate(case, tmp_path)
    for key, expect in case.expect.items():
        site, result = _result(snap, key, case)
        _check(expect, result, key, site)
    for device, state in case.state.items():
        assert snap.devices[device].state.value == state, device
    for device, hours in case.devices.items():
        e = snap.devices[device].endurance
        assert e is not None
        if hours is None:
            assert not e.exact, f"{device}: {e}"
        else:
            assert e.exact and e.lower == pytest.approx(hours, abs=1e-3), f"{device}: {e}"
    for device, names in case.unconfirmed.items():
        assert set(snap.devices[device].unconfirmed) == set(names), device
    outages = snap.sites[case.site].outages
    for kind, text in case.outages.items():
        if text is None:
            assert kind not in outages, f"{kind}: {outages.get(kind)}"
            continue
        assert kind in outages, f"no {kind} outage"
        zh = "；".join(Wording("zh", now=NOW).fact(f, case.site) for f in outages[kind].evidence)
        assert zh == text
        _only_chinese(zh, kind)
    if case.trap_path is not None:
        path = snap.sites[case.site].trap_path
        state, words = case.trap_path
        assert path is not None and path.state.value == state, path
        if words:
            assert path.reason is not None
            zh = Wording("zh", now=NOW).fact(path.reason, case.site)
            assert words in zh, f"{words!r} not in {zh!r}"
            _only_chinese(zh, "trap path")
    if case.alerts or case.quiet:
        firing = _alerts(snap)
        for alert in case.alerts:
            assert alert in firing, f"{alert!r} not firing: {sorted(firing)}"
        for alert in case.quiet:
            assert alert not in firing, f"{alert!r} fires: {sorted(firing)}"


def _alerts(snap: Snapshot) -> set[str]:
    """Alerts firing on ``snap`` with every rule at for: 0, as "rule site label"."""
    engine = AlertEngine({n: RuleSpec(0, s.severity) for n, s in DEFAULT_RULES.items()})
    engine.update(snap)
    out = set()
    for a in engine.firing:
        extra = [a.labels[k] for k in ("outage", "scenario", "hours") if k in a.labels]
        out.add(" ".join([a.rule, a.labels.get("site", ""), *extra]).strip())
    return out


@pytest.mark.parametrize("case", VILLAGES, ids=lambda c: c.name)
def test_village_judged_again_keeps_its_verdicts(case: Village, tmp_path: Path) -> None:
    """Evaluated a second time with nothing changed, every hand-computed village gives
    the same verdicts, endurance and words: kept judgements are the judged ones."""
    once, twice = evaluate(case, tmp_path), evaluate(case, tmp_path, again=True)
    for site_id, site in once.sites.items():
        for name, result in site.scenarios.items():
            assert twice.sites[site_id].scenarios[name] == result, f"{site_id}/{name}"
        assert twice.sites[site_id].outages == site.outages
    for device_id, status in once.devices.items():
        assert twice.devices[device_id].endurance == status.endurance, device_id


@pytest.mark.parametrize("case", VILLAGES, ids=lambda c: c.name)
def test_scenarios_judged_alike_share_their_outlooks_and_nothing_else(
        case: Village, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A site's scenarios share the outlook of a channel (or a support) whose chains
    read the same of their conditions (network and now; power and all but public).
    Every hand-computed village, outages, roads and check-ins included, gives the same
    verdicts as when each scenario judges every outlook itself."""
    shared = evaluate(case, tmp_path)
    monkeypatch.setattr(readiness._Judge, "channel", readiness._Judge._channel)
    monkeypatch.setattr(readiness._Judge, "support", readiness._Judge._support)
    alone = evaluate(case, tmp_path)
    for site_id, site in shared.sites.items():
        assert site.scenarios == alone.sites[site_id].scenarios, site_id


def test_table_is_large_enough() -> None:
    """The table holds at least 40 hand-computed villages."""
    assert len(VILLAGES) >= 40


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(VILLAGES), st.integers(0, 2**32))
def test_order_of_sites_and_devices_does_not_matter(case: Village, seed: int) -> None:
    """The same villages with their sites and devices listed in any other order give the
    same verdicts, endurance, facts (so words) and device states."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        a = evaluate(case, Path(tmp))
        b = evaluate(case, Path(tmp), shuffle=seed)
    for site_id, site in a.sites.items():
        for name, result in site.scenarios.items():
            other = b.sites[site_id].scenarios[name]
            assert result.as_fact() == other.as_fact(), f"{case.name}: {site_id}/{name}"
        assert site.outages == b.sites[site_id].outages
        assert site.state is b.sites[site_id].state
    for device_id, status in a.devices.items():
        assert status.state is b.devices[device_id].state
        assert status.endurance == b.devices[device_id].endurance
