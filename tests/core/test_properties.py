"""Property-based tests (hypothesis): decoding, MQTT payloads, configuration loading and
the core state machine hold their promises for any input, not only the examples."""

from __future__ import annotations

import math
import re
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from commsmon.config.load import load_config
from commsmon.config.profiles import ReadingSpec
from commsmon.config.services import MqttSpec
from commsmon.core.fleet import Fleet
from commsmon.core.rules import AlertEngine
from commsmon.core.types import Observation, State
from commsmon.errors import ConfigError
from commsmon.selfmetrics import MQTT_MESSAGES
from commsmon.sources.convert import (
    REASONS,
    DecodeError,
    decode_json_field,
    decode_varbind,
    rate_reading,
)
from commsmon.sources.counters import CounterRates, CounterSample
from commsmon.sources.mqtt import MqttSource, Route
from commsmon.sources.snmp.base import SnmpValue, ValueType
from tests.core.smallfleet import small_inventory

ROOT = Path(__file__).resolve().parent.parent.parent
DECODES = ["number", "text_number", "float32_le", "float32_be", "utf16", "text", "bool"]

raw_values = st.one_of(
    st.integers(-(2**64), 2**64), st.binary(max_size=24), st.text(max_size=24), st.none())
json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=12)),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                 max_size=3),
    max_leaves=8)


def _spec(decode: str, **extra: object) -> ReadingSpec:
    if decode == "enum":
        return ReadingSpec(oid="1.3.6.1.2.1.33.1.4.1.0", decode="enum",
                           enum={3: "normal", 5: "battery"})
    return ReadingSpec(oid="1.3.6.1.2.1.1.3.0", decode=decode, **extra)  # type: ignore[arg-type]


@given(st.sampled_from(list(ValueType)), raw_values, st.sampled_from([*DECODES, "enum"]),
       st.floats(-1e6, 1e6), st.floats(-1e6, 1e6))
# Found by hypothesis: "²" passes str.isdigit() but not int(); it escaped as ValueError.
@example(ValueType.INTEGER, "²", "enum", 0.0, 0.0)
def test_snmp_decoding_gives_a_reading_or_a_counted_reason(
    kind: ValueType, raw: int | bytes | str | None, decode: str, scale: float, offset: float
) -> None:
    """Any varbind under any spec: a finite number, a text, a truth value, None, or a
    DecodeError with a reason from the fixed set. Never another exception, never NaN."""
    spec = _spec(decode) if decode == "enum" else _spec(decode, scale=scale, offset=offset)
    try:
        reading = decode_varbind(spec, SnmpValue(kind, raw))
    except DecodeError as exc:
        assert exc.reason in REASONS and exc.reason != "internal_error", exc
        return
    if isinstance(reading, float):
        assert math.isfinite(reading)
    else:
        assert reading is None or isinstance(reading, str | bool)


@given(st.sampled_from([32, 64]), st.lists(st.tuples(
    raw_values, st.floats(-1e7, 1e7), st.one_of(st.none(), st.floats(0, 2**32 / 100))),
    max_size=12))
def test_counter_rates_are_never_negative(
    bits: int, reads: list[tuple[int | bytes | str | None, float, float | None]]
) -> None:
    """Any run of counter reads -- wraps, resets, restarts, clock steps, garbage -- gives
    rates that are finite and never negative, or none; never an exception but a
    DecodeError with a reason."""
    spec = ReadingSpec(oid="1.3.6.1.2.1.31.1.1.1.6.2", counter=bits)  # type: ignore[arg-type]
    rates = CounterRates()
    for raw, at, uptime in reads:
        try:
            count = decode_varbind(spec, SnmpValue(ValueType.COUNTER64, raw))
        except DecodeError as exc:
            assert exc.reason in REASONS and exc.reason != "internal_error", exc
            continue
        assert isinstance(count, int) and 0 <= count < 2**bits
        rate = rate_reading(spec, rates, "d", "in", CounterSample(count, at, uptime))
        assert rate is None or (math.isfinite(rate) and rate >= 0)


@given(json_values, st.sampled_from([*DECODES, "enum"]))
def test_json_field_decoding_never_escapes(value: object, decode: str) -> None:
    spec = (ReadingSpec(field="fuel", decode="enum", enum={1: "on"}) if decode == "enum"
            else ReadingSpec(field="fuel", decode=decode))  # type: ignore[arg-type]
    try:
        reading = decode_json_field(spec, {"fuel": value})
    except DecodeError as exc:
        assert exc.reason in REASONS and exc.reason != "internal_error", exc
        return
    assert not isinstance(reading, float) or math.isfinite(reading)


_TOPICS = {
    "p/v1/g/status": Route("g", "status", {}),
    "p/v1/g/telemetry": Route("g", "telemetry", {
        "fuel": ReadingSpec(field="fuel", scale=0.01),
        "volts": ReadingSpec(field="voltage", decode="text_number"),
        "running": ReadingSpec(field="running", decode="bool"),
    }),
    "p/checkins": Route("", "checkin", {}),
    "p/_shard/0": Route("", "peer", {}),
}
# Every result the source counts; "will_at_disconnect" comes from other tests of the
# process (the counter is global), so this test must not depend on running first.
_RESULTS = {"ok", "unknown_topic", "bad_payload", "too_large", "not_object", "bad_json",
            "bad_checkin", "dropped", "will_at_disconnect"}


@given(st.sampled_from([*_TOPICS, "p/other"]),
       st.one_of(st.binary(max_size=300), json_values.map(lambda v: repr(v).encode())))
@settings(suppress_health_check=[HealthCheck.too_slow])
def test_mqtt_payloads_never_crash_nor_make_new_series(topic: str, payload: bytes) -> None:
    """Any bytes on any topic: an observation or a rejection counted under a fixed result
    label; never an exception."""
    seen: list[Observation] = []
    source = MqttSource(MqttSpec(), _TOPICS, seen.append, lambda _: None,
                        on_checkin=lambda _: None, clock=lambda: 1_764_400_000.0)
    source.handle(topic, payload)
    for family in MQTT_MESSAGES.collect():
        for sample in family.samples:
            assert sample.labels["result"] in _RESULTS
    for obs in seen:
        assert all(not isinstance(v, float) or math.isfinite(v) for v in obs.readings.values())


_DEMO_LINES = (ROOT / "config" / "demo.yaml").read_text(encoding="utf-8").splitlines()
_LOCATED = re.compile(r"^.+:\d+: .+")


@given(st.integers(0, len(_DEMO_LINES) - 1),
       st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=40),
       st.booleans())
@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_bad_yaml_gives_located_errors_never_a_traceback(
    tmp_path_factory: pytest.TempPathFactory, line: int, junk: str, replace: bool
) -> None:
    """The demo configuration with one line replaced by (or followed by) random text
    either loads or fails with ConfigError problems that each name FILE:LINE."""
    directory = tmp_path_factory.mktemp("cfg")
    shutil.copytree(ROOT / "config" / "profiles", directory / "profiles")
    lines = list(_DEMO_LINES)
    if replace:
        lines[line] = junk
    else:
        lines.insert(line, junk)
    path = directory / "fleet.yaml"
    path.write_text("\n".join(lines), encoding="utf-8")
    try:
        load_config(path)
    except ConfigError as exc:
        assert exc.problems
        assert all(_LOCATED.match(p) and p.startswith(str(path)) for p in exc.problems), (
            exc.problems)


events = st.lists(st.tuples(
    st.floats(-30, 400),  # seconds since the previous event (negative: the clock stepped back)
    st.sampled_from(["rpt", "router", "cam", "pdt", "sat", "evaluate", "broker"]),
    st.booleans(), st.booleans(), st.floats(0, 1)), max_size=60)


@given(events)
@settings(max_examples=150, deadline=None)
def test_time_accounting_and_reachable_states(steps: list[tuple[float, str, bool, bool, float]]
                                              ) -> None:
    """Whatever arrives in whatever order: every device's seconds per state sum to the
    time that passed (a clock stepping back adds nothing), every state is one the rules
    know, and the rules engine takes every snapshot."""
    t0 = 1_764_400_000.0
    fleet = Fleet(small_inventory(), t0)
    fleet.set_source("mqtt", True, t0)
    engine = AlertEngine()
    now = t0
    elapsed = 0.0
    last_eval = t0
    for gap, what, ok, conclusive, charge in steps:
        now += gap
        if what == "evaluate":
            snap = fleet.evaluate(now)
            elapsed += max(0.0, now - last_eval)
            last_eval = now
            engine.update(snap)
            for status in snap.devices.values():
                assert status.state in set(State)
                assert sum(status.seconds_at(snap.at).values()) == pytest.approx(elapsed, abs=1e-6)
            for site in snap.sites.values():
                assert site.state in set(State)
                assert sum(site.seconds_at(snap.at).values()) == pytest.approx(elapsed, abs=1e-6)
        elif what == "broker":
            fleet.set_source("mqtt", ok, now)
        else:
            fleet.observe(Observation(what, now, ok, {"battery": charge} if ok else {},
                                      conclusive=conclusive and not ok))
