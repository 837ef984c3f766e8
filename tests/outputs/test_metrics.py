"""The fleet exposition: valid for promtool, escaped labels, bounded series."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from commsmon.config.load import load_config
from commsmon.core.fleet import Fleet
from commsmon.core.types import Observation
from commsmon.outputs.metrics import FleetExposition
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
