"""MQTT messages to observations: presence words, telemetry JSON, bad input (no broker)."""

from __future__ import annotations

import json
import math

import pytest

from commsmon.config.profiles import ReadingSpec
from commsmon.config.services import MqttSpec
from commsmon.core.types import Observation
from commsmon.selfmetrics import MQTT_MESSAGES
from commsmon.sources.mqtt import MqttSource, Route

NOW = 1_764_400_000.0


@pytest.fixture
def seen() -> list[Observation]:
    return []


@pytest.fixture
def source(seen: list[Observation]) -> MqttSource:
    readings = {
        "fuel": ReadingSpec(field="fuel_pct", scale=0.01),
        "battery_volts": ReadingSpec(field="battery_v", decode="text_number"),
        "running": ReadingSpec(field="running", decode="bool"),
    }
    routes = {
        "p/v1/g/status": Route("g", "status", {}),
        "p/v1/g/telemetry": Route("g", "telemetry", readings),
    }
    return MqttSource(MqttSpec(), routes, seen.append, lambda _: None, clock=lambda: NOW)


def _count(result: str) -> float:
    """Messages with ``result`` so far, whatever their topic kind."""
    return sum(MQTT_MESSAGES.labels(kind, result)._value.get()
               for kind in ("status", "telemetry", "checkin", "peer", "unrouted"))


@pytest.mark.parametrize(("payload", "reachable"), [(b"online", True), (b"OFFLINE\n", False)])
def test_presence(source: MqttSource, payload: bytes, reachable: bool) -> None:
    """online/offline presence becomes a conclusive observation: a live birth needs
    no hysteresis, a Last Will none either."""
    obs = source.handle("p/v1/g/status", payload)
    assert obs is not None
    assert obs.reachable is reachable
    assert obs.conclusive and not obs.retained


def test_telemetry_decodes_per_profile(source: MqttSource, seen: list[Observation]) -> None:
    """JSON fields become SI readings; the message's own ts is its time."""
    body = {"ts": NOW - 30, "fuel_pct": "82", "battery_v": "12.6 V", "running": 1}
    obs = source.handle("p/v1/g/telemetry", json.dumps(body).encode())
    assert obs is not None and seen == [obs]
    assert obs.at == NOW - 30
    assert obs.readings == {"fuel": pytest.approx(0.82), "battery_volts": 12.6, "running": True}


def test_millisecond_and_future_timestamps(source: MqttSource) -> None:
    """ts in ms is understood; a ts far in the future is distrusted."""
    obs = source.handle("p/v1/g/telemetry", json.dumps({"ts": (NOW - 5) * 1000}).encode())
    assert obs is not None and obs.at == pytest.approx(NOW - 5)
    obs = source.handle("p/v1/g/telemetry", json.dumps({"ts": NOW + 86400}).encode())
    assert obs is not None and obs.at == NOW


def test_bad_values_are_skipped_not_fatal(source: MqttSource) -> None:
    """NaN, "N/A" and friends drop that reading only; the device still answered."""
    obs = source.handle("p/v1/g/telemetry", b'{"fuel_pct": NaN, "battery_v": "N/A"}')
    assert obs is not None
    assert obs.reachable and obs.readings == {}


@pytest.mark.parametrize("payload", [
    b'{"fuel_pct": NaN, "running": true}',  # orjson: no NaN literal
    b'{"fuel_pct": 1e999, "running": true}',  # orjson: no infinity
    b'{"fuel_pct": 123456789012345678901234567890, "running": true}',  # > 64 bits: a float
    b'{"fuel_pct": 50, "running": true, "note": "\\ud800"}',  # a lone surrogate
    b'{"fuel_pct": 50, "fuel_pct": 60, "running": true}',  # the last of a duplicate key
])
def test_documents_mean_what_the_json_standard_module_says(
    source: MqttSource, payload: bytes
) -> None:
    """Telemetry is parsed with orjson for speed; what it refuses the standard module
    reads, so these documents give the readings ``json.loads`` gives them (an integer
    beyond 64 bits as a float: the same number reading)."""
    document = json.loads(payload)
    obs = source.handle("p/v1/g/telemetry", payload)
    assert obs is not None and obs.reachable
    fuel = document["fuel_pct"]
    assert obs.readings == ({"running": True} if not math.isfinite(fuel)
                            else {"running": True, "fuel": pytest.approx(fuel / 100)})


@pytest.mark.parametrize(
    ("topic", "payload", "reason"),
    [
        ("p/v1/g/telemetry", b"\xff\xfe not json", "bad_json"),
        ("p/v1/g/telemetry", b"online", "bad_json"),
        ("p/v1/g/telemetry", b"[1, 2]", "not_object"),
        ("p/v1/g/telemetry", b"{" + b" " * (300 * 1024) + b"}", "too_large"),
        ("p/v1/g/status", b"maybe", "bad_payload"),
        ("p/other/topic", b"{}", "unknown_topic"),
    ],
)
def test_rejected_messages_are_counted(
    source: MqttSource, seen: list[Observation], topic: str, payload: bytes, reason: str
) -> None:
    """A bad message is counted by reason and produces no observation."""
    before = _count(reason)
    assert source.handle(topic, payload) is None
    assert _count(reason) == before + 1
    assert seen == []


def test_default_client_id_is_unique_per_host_and_shard() -> None:
    """Two instances on two hosts, or two shards on one, never share a client id."""
    import socket

    assert MqttSpec().identity(2) == f"commsmon-{socket.gethostname()}-2"
    assert MqttSpec(client_id="centre-a").identity(2) == "centre-a"


def _retained_source(seen: list[Observation], stale_after: float | None) -> MqttSource:
    routes = {"p/v1/g/telemetry": Route("g", "telemetry",
                                        {"fuel": ReadingSpec(field="fuel_pct", scale=0.01)},
                                        stale_after)}
    return MqttSource(MqttSpec(), routes, seen.append, lambda _: None, clock=lambda: NOW)


@pytest.mark.parametrize(("body", "retained", "at", "readings"), [
    # ts 100 s ago, stale_after 180: the device spoke that recently: live evidence
    ({"ts": NOW - 100, "fuel_pct": 50}, False, NOW - 100, {"fuel": 0.5}),
    # exactly at stale_after (180 s): still live, as a reading at its max_age is fresh
    ({"ts": NOW - 180, "fuel_pct": 50}, False, NOW - 180, {"fuel": 0.5}),
    # 181 s ago: the last known state only; the reading counts at its own time
    ({"ts": NOW - 181, "fuel_pct": 50}, True, NOW - 181, {"fuel": 0.5}),
    # no ts: when it held is unknown: "it was online" and no reading
    ({"fuel_pct": 50}, True, NOW, {}),
])
def test_retained_telemetry_is_judged_by_its_own_time(
    body: dict[str, float], retained: bool, at: float, readings: dict[str, float]
) -> None:
    seen: list[Observation] = []
    obs = _retained_source(seen, 180.0).handle(
        "p/v1/g/telemetry", json.dumps(body).encode(), retained=True)
    assert obs is not None and seen == [obs]
    assert (obs.retained, obs.at, dict(obs.readings)) == (retained, at, readings)


def test_retained_presence_is_marked(source: MqttSource, seen: list[Observation]) -> None:
    obs = source.handle("p/v1/g/status", b"online", retained=True)
    assert obs is not None and obs.retained and seen == [obs]
