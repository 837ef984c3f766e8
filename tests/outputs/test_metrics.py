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
