"""The fleet exposition: valid for promtool, escaped labels, bounded series."""

from __future__ import annotations

import gc
import gzip
import weakref
from dataclasses import replace
from pathlib import Path
from typing import Any
from unittest.mock import patch

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from commsmon.config.load import load_config
from commsmon.core.fleet import Fleet
from commsmon.core.types import Observation, State
from commsmon.outputs import metrics
from commsmon.outputs.gzipmember import Member
from commsmon.outputs.metrics import FleetExposition
from tests.core.test_incremental import CONFIG, EXAMPLES, INVENTORY, _apply, _subset, events
from tests.field.harness import evaluate
from tests.field.villages import VILLAGES, readings
from tests.fleetharness import DEMO
from tests.promtool import promtool_problems

T0 = 1_764_400_000.0


def _render(site_name: str) -> str:
    config = load_config(DEMO)
    sites = list(config.sites)
    sites[1] = sites[1].model_copy(update={"name": site_name})
    config = config.model_copy(update={"sites": sites})
    fleet = Fleet(config.inventory(), T0)
    fleet.set_source("mqtt", True, T0)
    fleet.observe(Observation("v01-ups", T0, True, {"output_source": "battery", "charge": 0.5,
                                                    "model": 'free "text"\n'}))
    fleet.observe(Observation("v01-genset", T0, True, {"fuel": float("nan")}))
    return FleetExposition(config).render(fleet.evaluate(T0 + 1)).decode()


@pytest.mark.integration
async def test_awkward_label_values_stay_valid() -> None:
    """A config label with a quote, a backslash and a newline: promtool still passes."""
    text = _render('村"名\\带\n换行')
    assert await promtool_problems(text) == []
    families = {f.name: f for f in text_string_to_metric_families(text)}
    names = {s.labels["name"] for s in families["commsmon_site_info"].samples}
    assert '村"名\\带\n换行' in names


def test_free_text_readings_never_become_labels() -> None:
    """Only profile enums become label values; free text and NaN make no series."""
    text = _render("v")
    assert 'state="battery"' in text
    assert "free" not in text
    assert 'device="v01-genset",kind="generator"} NaN' not in text


def test_info_series_follow_the_inventory_the_snapshot_holds() -> None:
    """The info families' text is kept from render to render: a second render of the
    same fleet is the same text, once each family (HELP and TYPE once); a village
    and one of its devices renamed (the same ids, new inventory objects, as after a
    reload) show their new names, and nothing of the old."""
    config = load_config(DEMO)
    exposition = FleetExposition(config)
    fleet = Fleet(config.inventory(), T0)
    first = exposition.render(fleet.evaluate(T0 + 1)).decode()
    again = exposition.render(fleet.evaluate(T0 + 2)).decode()
    assert again.count("# TYPE commsmon_device_info gauge") == 1
    assert [line for line in again.splitlines() if "_info{" in line] == \
        [line for line in first.splitlines() if "_info{" in line]

    sites = list(config.sites)
    devices = list(sites[1].devices)
    village, device = sites[1].id, devices[0].id
    devices[0] = devices[0].model_copy(update={"name": "新设备名"})
    sites[1] = sites[1].model_copy(update={"name": "新村名", "devices": devices})
    renamed = config.model_copy(update={"sites": sites})
    text = exposition.render(Fleet(renamed.inventory(), T0).evaluate(T0 + 3)).decode()
    names = {(f.name, s.labels.get("device", s.labels["site"])): s.labels["name"]
             for f in text_string_to_metric_families(text)
             if f.name in ("commsmon_site_info", "commsmon_device_info") for s in f.samples}
    assert names[("commsmon_site_info", village)] == "新村名"
    assert names[("commsmon_device_info", device)] == "新设备名"


@settings(max_examples=EXAMPLES // 2, deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.booleans(), min_size=14, max_size=14),
       st.lists(st.booleans(), min_size=14, max_size=14),
       st.lists(st.tuples(events, st.booleans()), max_size=30))
def test_kept_blocks_serve_what_a_fresh_render_writes(
        keep: list[bool], traps: list[bool], steps: list[tuple[tuple[str, Any], bool]]) -> None:
    """An exposition keeping its blocks (three devices or sites each) from render to
    render serves, after random events of the incremental evaluation's test (and
    reloads to other villages), each scraped or not (Prometheus scrapes less often than
    the daemon evaluates), the text an exposition writing it all anew writes, read back
    from the one gzip member a scrape gets."""
    inventory = _subset(keep, traps)
    fleet = Fleet(inventory, T0)
    now = T0
    with patch.object(metrics, "BLOCK", 3):
        kept = FleetExposition(CONFIG)
        for event, scraped in steps:
            if event[0] == "wait":
                now += event[1]
            elif event[0] == "reload":
                inventory = _subset(event[1], traps)
                fleet.reconfigure(inventory, now)
            elif event[1] is None or event[0] not in ("observe", "checkin") or \
                    event[1][0] in inventory.devices:
                _apply(fleet, event, now)
            snap = fleet.evaluate(now)
            if not scraped:
                continue
            member = Member()
            body = [member.header()]
            for chunk in kept.chunks(snap):
                body.append(member.text(chunk) if isinstance(chunk, bytes | bytearray)
                            else b"".join(map(member.piece, chunk)))
            body.append(member.end())
            assert gzip.decompress(b"".join(body)) == FleetExposition(CONFIG).render(snap), \
                event


def test_a_negative_zero_is_written_as_the_zero_it_equals() -> None:
    """A genset reporting -0.0 litres (its gateway's JSON may say so) lasts 0 h, as one
    reporting 0.0 does: the keys that keep a block compare them equal, so both are
    written 0.0, whichever of the two a kept block was written from (here 0.0, then
    30 L unscraped, then -0.0)."""
    fleet = Fleet(CONFIG.inventory(), T0)
    fleet.set_source("mqtt", True, T0)
    exposition = FleetExposition(CONFIG)
    texts = []
    for n, litres in enumerate((0.0, 30.0, -0.0)):
        fleet.observe(Observation("v01-genset", T0 + n, True,
                                  {"fuel_litres": litres, "running": False}))
        snap = fleet.evaluate(T0 + n + 1)
        if litres != 30.0:
            texts.append(exposition.render(snap).decode())
    fresh = FleetExposition(CONFIG).render(snap).decode()
    genset = 'commsmon_device_endurance_seconds{site="v01",device="v01-genset",'
    assert [line for text in (*texts, fresh) for line in text.splitlines()
            if line.startswith(genset)] == [genset + 'kind="generator"} 0.0'] * 3


def test_a_verdict_that_changes_while_every_state_holds_is_served(tmp_path: Path) -> None:
    """The standard village (tests/field/villages.py) on a quiet day is ready for a power
    cut: pdt370 lasts min(UPS 1 h + genset 150 L / 1.5 L/h = 101 h, the repeater's
    150.5 h) = 101 h >= 72 h.  The genset reports 90 L: 1 h + 90 / 1.5 = 61 h < 72 h and
    the phone's 57.6 h < 72 h, so no longer ready, while every device and the site stay
    up (90 L raises no alarm).  An exposition that rendered the first keeps no block of
    it: the readiness family says 0 and the endurance 61 h."""
    quiet = replace(VILLAGES[0], readings=readings(gen={"fuel_litres": 90.0}))
    before, after = evaluate(VILLAGES[0], tmp_path), evaluate(quiet, tmp_path)
    assert [s.state for s in before.devices.values()] == \
        [s.state for s in after.devices.values()]
    assert before.sites["v"].state is after.sites["v"].state is State.UP
    exposition = FleetExposition(load_config(tmp_path / "field.yaml"))
    first = exposition.render(before).decode()
    text = exposition.render(after).decode()
    power = 'site="v",scenario="power"'
    assert f"commsmon_site_scenario_ready{{{power}}} 1.0" in first
    assert f"commsmon_site_scenario_ready{{{power}}} 0.0" in text
    assert f"commsmon_site_scenario_endurance_seconds{{{power}}} {61 * 3600.0}" in text
    assert text == FleetExposition(load_config(tmp_path / "field.yaml")).render(after).decode()


def test_kept_blocks_keep_no_superseded_verdict_alive(tmp_path: Path) -> None:
    """Between two scrapes the fleet moves on: a village whose verdicts changed after the
    last render is freed with its old snapshot, though that render kept the block it was
    in (scrapes may stop for hours while Prometheus is down: the daemon must not hold
    a second fleet's verdicts)."""
    before = evaluate(VILLAGES[0], tmp_path)
    exposition = FleetExposition(load_config(tmp_path / "field.yaml"))
    exposition.render(before)
    old = weakref.ref(before.sites["v"]), weakref.ref(before.devices["gen"])
    after = evaluate(replace(VILLAGES[0], readings=readings(gen={"fuel_litres": 90.0})),
                     tmp_path)
    del before
    gc.collect()
    assert old[0]() is None and old[1]() is None
    assert "commsmon_site_scenario_ready{site=\"v\",scenario=\"power\"} 0.0" in \
        exposition.render(after).decode()


def test_a_snapshot_from_before_a_reload_is_rendered_whole() -> None:
    """A reload to fewer villages makes the new exposition before the new fleet's first
    evaluation; a scrape in between renders the last snapshot, whose villages the new
    inventory dropped: they are written with their labels, not a failed scrape."""
    fewer = _subset([True] + [False] * 13)
    dropped = next(d for d in INVENTORY.devices.values() if d.id not in fewer.devices)
    snap = Fleet(INVENTORY, T0).evaluate(T0 + 1)
    text = FleetExposition(CONFIG, fewer).render(snap).decode()
    assert (f'commsmon_device_state{{site="{dropped.site}",device="{dropped.id}",'
            f'kind="{dropped.kind}",state="unknown"}} 1.0') in text
    assert text == FleetExposition(CONFIG).render(snap).decode()
