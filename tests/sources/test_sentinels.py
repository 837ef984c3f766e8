"""A sentinel after a valid value makes the reading unknown at once, never the old value:
through a real agent (the Huawei GSE200M's recorded -1) and an MQTT gateway's "N/A"."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from commsmon.config.profiles import ReadingSpec
from commsmon.config.services import MqttSpec
from commsmon.core.fleet import Fleet
from commsmon.core.model import Device, Inventory, Site
from commsmon.core.types import Observation
from commsmon.outputs.api import site_detail
from commsmon.outputs.wording import Wording
from commsmon.sim.snmpagents import SnmpSimulator
from commsmon.sources.mqtt import MqttSource, Route
from commsmon.sources.snmp.base import SnmpTarget
from commsmon.sources.snmp.gufo_backend import GufoClient
from commsmon.sources.snmp.poller import PollJob, SnmpPoller

NOW = 1_764_400_000.0
ROOT = Path(__file__).resolve().parents[2]
RUNTIME = "1.3.6.1.2.1.33.1.2.3.0"  # RFC 1628 upsEstimatedMinutesRemaining, minutes
OUTPUT_SOURCE = "1.3.6.1.2.1.33.1.4.1.0"  # upsOutputSource


def _fleet() -> Fleet:
    ups = Device("ups", "v", "ups", "UPS", "snmp", "ups-rfc1628", max_age={"runtime": 180.0})
    return Fleet(Inventory.build([Site("v", "V", "t")], [ups]), NOW - 86400)


@pytest.mark.integration
async def test_snmp_minus_one_after_600_minutes_is_unknown_at_once() -> None:
    """The UPS said 600 min yesterday; today it answers -1 (not supported): the poll names
    the reading missing and the core forgets the 600 min, keeping when it became unknown."""
    async with SnmpSimulator({"ups": "UPS/huawei-gse200m"}) as agent, GufoClient() as client:
        target = SnmpTarget("127.0.0.1", agent.port, "v2c", "ups", timeout=1.0, retries=1)
        readings = {
            "runtime": (RUNTIME, ReadingSpec(oid=RUNTIME, scale=60, invalid=[-1])),
            "output_source": (OUTPUT_SOURCE, ReadingSpec(
                oid=OUTPUT_SOURCE, decode="enum", enum={3: "normal", 5: "battery"})),
        }
        job = PollJob("ups", target, 60.0, readings)
        obs = await SnmpPoller(client, [job], lambda _: None, clock=lambda: NOW).poll(job)
    assert obs.reachable and obs.missing == frozenset({"runtime"})
    assert obs.readings == {"output_source": "normal"}
    fleet = _fleet()
    fleet.observe(Observation("ups", NOW - 86400, True, {"runtime": 36000.0}))
    fleet.observe(obs)
    ups = fleet.evaluate(NOW).devices["ups"]
    assert "runtime" not in ups.readings
    assert ups.unavailable == {"runtime": NOW}
    assert ups.endurance is not None and not ups.endurance.exact


def test_unavailable_since_counts_from_the_latest_sentinel() -> None:
    """600 min at T-3 h; -1 at T-2 h (unavailable since T-2 h); 590 min at T-1 h (known
    again); -1 at T: unavailable since T, the start of this outage, not T-2 h."""
    fleet = _fleet()
    fleet.observe(Observation("ups", NOW - 3 * 3600, True, {"runtime": 36000.0}))
    fleet.observe(Observation("ups", NOW - 2 * 3600, True, missing=frozenset({"runtime"})))
    assert fleet.evaluate(NOW - 2 * 3600).devices["ups"].unavailable == {
        "runtime": NOW - 2 * 3600}
    fleet.observe(Observation("ups", NOW - 3600, True, {"runtime": 35400.0}))
    ups = fleet.evaluate(NOW - 3600).devices["ups"]
    assert ups.unavailable == {} and ups.readings == {"runtime": 35400.0}
    fleet.observe(Observation("ups", NOW, True, missing=frozenset({"runtime"})))
    assert fleet.evaluate(NOW).devices["ups"].unavailable == {"runtime": NOW}


def test_a_poll_confirms_every_reading_it_reads() -> None:
    """Runtime -1 at T-2 h (unavailable); at T-60 s a trap tells output_source battery
    (unconfirmed: awaiting a poll); at T a poll reads runtime 590 min first, then
    output_source normal: runtime is known again and output_source is confirmed,
    whichever reading the poll lists first (a shortcut that stopped confirming once
    the unavailable map emptied left output_source "awaiting a poll")."""
    fleet = _fleet()
    fleet.observe(Observation("ups", NOW - 2 * 3600, True, missing=frozenset({"runtime"})))
    fleet.observe(Observation("ups", NOW - 60, True, {"output_source": "battery"},
                              unconfirmed=True))
    assert fleet.evaluate(NOW - 60).devices["ups"].unconfirmed == {"output_source": NOW - 60}
    fleet.observe(Observation("ups", NOW, True, {"runtime": 35400.0,
                                                 "output_source": "normal"}))
    ups = fleet.evaluate(NOW).devices["ups"]
    assert ups.unavailable == {} and ups.unconfirmed == {}
    assert ups.readings == {"runtime": 35400.0, "output_source": "normal"}


def test_a_snapshot_keeps_the_times_it_showed_and_shares_them_while_unchanged() -> None:
    """A status holds the tracker's own maps of times, which are replaced, never changed
    in place: runtime -1 and a trap at T-120 s; output_source polled "battery" at T-60 s
    (only the charge changed: the same unavailable map, no copy); at T runtime reads
    again and output_source is confirmed.  The earlier snapshots still show what they
    showed (runtime unavailable since T-120 s; output_source unconfirmed since T-120 s)."""
    fleet = _fleet()
    fleet.observe(Observation("ups", NOW - 120, True, {"charge": 0.9},
                              missing=frozenset({"runtime"})))
    fleet.observe(Observation("ups", NOW - 120, True, {"output_source": "battery"},
                              unconfirmed=True))
    first = fleet.evaluate(NOW - 120).devices["ups"]
    fleet.observe(Observation("ups", NOW - 60, True, {"charge": 0.8},
                              missing=frozenset({"runtime"})))
    second = fleet.evaluate(NOW - 60).devices["ups"]
    assert second is not first and second.readings["charge"] == 0.8
    assert second.unavailable is first.unavailable
    assert second.unconfirmed is first.unconfirmed
    fleet.observe(Observation("ups", NOW, True, {"runtime": 35400.0, "charge": 0.7,
                                                 "output_source": "normal"}))
    third = fleet.evaluate(NOW).devices["ups"]
    assert third.unavailable == {} and third.unconfirmed == {}
    assert first.unavailable == second.unavailable == {"runtime": NOW - 120}
    assert first.unconfirmed == second.unconfirmed == {"output_source": NOW - 120}
    assert first.readings == {"charge": 0.9, "output_source": "battery"}


def test_readings_answered_without_a_value_are_listed_by_name() -> None:
    """A UPS answering four objects as noSuchObject: the village page lists them by
    name (the set a poll names them in has no order of its own)."""
    fleet = _fleet()
    names = ("runtime", "output_source", "charge", "load")
    fleet.observe(Observation("ups", NOW, True, missing=frozenset(names)))
    snap = fleet.evaluate(NOW)
    body = site_detail(snap, "v", lambda at: None if at is None else str(at), Wording("en"))
    assert body is not None
    assert list(body["devices"][0]["readings"]) == sorted(names)


def _mqtt(seen: list[Observation]) -> MqttSource:
    readings = {"fuel": ReadingSpec(field="fuel_pct", scale=0.01, invalid=[-1, "N/A"]),
                "running": ReadingSpec(field="running", decode="bool")}
    routes = {"p/v/g/telemetry": Route("g", "telemetry", readings)}
    return MqttSource(MqttSpec(), routes, seen.append, lambda _: None, clock=lambda: NOW)


@pytest.mark.parametrize(("body", "missing"), [
    ({"fuel_pct": "N/A", "running": False}, {"fuel"}),   # the gateway's sentinel
    ({"fuel_pct": -1, "running": False}, {"fuel"}),      # a numeric one
    ({"fuel_pct": None, "running": False}, {"fuel"}),    # sent, with no value
    ({"fuel_pct": "lots", "running": False}, {"fuel"}),  # sent, unreadable (counted too)
    ({"running": False}, set()),                         # left out: says nothing of it
])
def test_mqtt_field_sent_without_a_value_is_missing(body: dict[str, object],
                                                    missing: set[str]) -> None:
    """A field sent with no usable value is missing now; a field left out is not."""
    seen: list[Observation] = []
    obs = _mqtt(seen).handle("p/v/g/telemetry", json.dumps(body).encode())
    assert obs is not None and obs.missing == frozenset(missing)
    assert "fuel" not in obs.readings


@pytest.mark.integration
async def test_ups_runtime_zero_on_mains_at_full_charge_is_not_supported(
    tmp_path: Path,
) -> None:
    """A real agent answers upsEstimatedMinutesRemaining 0 while upsOutputSource is
    normal(3) and the charge 100 %: the shipped profile's rule makes the runtime not
    known (counted ``unsupported``), so it leaves the exposition, the device's reason
    names it, and the charge still shows."""
    from commsmon.config.load import load_config
    from commsmon.outputs.api import _device
    from commsmon.outputs.metrics import FleetExposition
    from commsmon.outputs.wording import Wording
    from commsmon.selfmetrics import READING_ERRORS

    recording = tmp_path / "ups-zero.snmprec"
    recording.write_text("1.3.6.1.2.1.1.3.0|67|123456\n"
                         f"{RUNTIME}|2|0\n"
                         "1.3.6.1.2.1.33.1.2.4.0|2|100\n"
                         f"{OUTPUT_SOURCE}|2|3\n")
    config = load_config(ROOT / "config" / "demo.yaml")
    profile = config.profiles["ups-rfc1628"]
    readings = {n: (s.oid or "", s) for n, s in profile.readings.items()
                if n in ("runtime", "charge", "output_source")}
    before = READING_ERRORS.labels("snmp", "unsupported")._value.get()
    async with SnmpSimulator({"ups0": recording}) as agent, GufoClient() as client:
        target = SnmpTarget("127.0.0.1", agent.port, "v2c", "ups0", timeout=1.0, retries=1)
        job = PollJob("v01-ups", target, 60.0, readings)
        obs = await SnmpPoller(client, [job], lambda _: None, clock=lambda: NOW).poll(job)
    assert obs.missing == frozenset({"runtime"})
    assert obs.readings == {"charge": 1.0, "output_source": "normal"}
    assert READING_ERRORS.labels("snmp", "unsupported")._value.get() == before + 1

    fleet = Fleet(config.inventory(), NOW - 60)
    fleet.observe(Observation("v01-ups", NOW - 60, True, {"runtime": 36000.0, "charge": 1.0}))
    fleet.observe(obs)
    snap = fleet.evaluate(NOW)
    text = FleetExposition(config).render(snap).decode()
    assert not [ln for ln in text.splitlines()
                if ln.startswith("commsmon_battery_runtime_seconds{") and "v01-ups" in ln]
    assert [ln for ln in text.splitlines()
            if ln.startswith("commsmon_battery_charge_ratio{") and '"v01-ups"' in ln]
    ups = _device(snap.devices["v01-ups"], NOW, lambda t: None, Wording("zh", now=NOW))
    assert ups["readings"]["runtime"]["value"] is None
    assert "UPS（v01-ups）自" in ups["reason"] and "剩余供电时间不可用" in ups["reason"]
