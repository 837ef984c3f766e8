"""Inputs seen in the field (issue 7), each with its right value: SNMP values from real
agents' quirks and MQTT payloads from real gateways."""

from __future__ import annotations

import json

import pytest
from structlog.testing import capture_logs

from commsmon.config.profiles import ReadingSpec
from commsmon.config.services import MqttSpec
from commsmon.core.types import Observation
from commsmon.selfmetrics import MQTT_MESSAGES, READING_ERRORS
from commsmon.sim.snmpagents import SnmpSimulator
from commsmon.sources.convert import DecodeError, decode_varbind
from commsmon.sources.mqtt import MqttSource, Route
from commsmon.sources.snmp.base import SnmpClient, SnmpTarget, SnmpValue, ValueType
from commsmon.sources.snmp.gufo_backend import GufoClient, to_snmp_value
from commsmon.sources.snmp.native_backend import NativeClient
from commsmon.sources.snmp.poller import PollJob, SnmpPoller
from commsmon.sources.snmp.pysnmp_backend import PysnmpClient

NOW = 1_764_400_000.0


def number(**kw: object) -> ReadingSpec:
    return ReadingSpec(oid="1.3.6.1.2.1.2.2.1.10.1", **kw)  # type: ignore[arg-type]


TEXT = ReadingSpec(oid="1.3.6.1.2.1.1.5.0", decode="text")


# 1. Counters are unsigned, whatever their size.
@pytest.mark.parametrize(("kind", "raw"), [
    (ValueType.COUNTER64, 18446744073708309388),
    (ValueType.COUNTER32, 3028123950),
])
def test_counters_decode_unsigned(kind: ValueType, raw: int) -> None:
    assert decode_varbind(number(), SnmpValue(kind, raw)) == float(raw)
    # gufo hands plain ints; by range they stay unsigned too.
    assert to_snmp_value(raw).value == raw


# 1. Counter rates through a real agent and both backends: a Counter32 wrap is a delta,
#    an agent restart (sysUpTime falls) gives no rate and a new baseline, never a
#    negative rate, and the device keeps answering with its other readings.
UPTIME, IF_IN, IF_HC_IN = "1.3.6.1.2.1.1.3.0", "1.3.6.1.2.1.2.2.1.10.2", "1.3.6.1.2.1.31.1.1.1.6.2"


@pytest.mark.integration
@pytest.mark.parametrize("backend", [NativeClient, GufoClient, PysnmpClient])
async def test_counter_wrap_and_agent_restart(backend: type[SnmpClient]) -> None:
    async with SnmpSimulator({"rtr": "router"}) as agent, backend() as client:
        target = SnmpTarget("127.0.0.1", agent.port, "v2c", "rtr", timeout=1.0, retries=1)
        readings = {
            "in32": (IF_IN, ReadingSpec(oid=IF_IN, counter=32)),
            "in64": (IF_HC_IN, ReadingSpec(oid=IF_HC_IN, counter=64, scale=8)),  # bits/s
            "name": ("1.3.6.1.2.1.1.5.0", TEXT),
        }
        job = PollJob("rtr", target, 60.0, readings)
        poller = SnmpPoller(client, [job], lambda _: None)

        async def poll(ticks: int, c32: int, c64: int) -> dict[str, object]:
            await agent.set_values("rtr", {UPTIME: ("67", ticks), IF_IN: ("65", c32),
                                           IF_HC_IN: ("70", c64)})
            obs = await poller.poll(job)
            assert obs.reachable
            assert obs.readings["name"] == "village-router"
            return {k: v for k, v in obs.readings.items() if k != "name"}

        assert await poll(864_000_000, 4294967000, 9_000_000_000_000) == {}  # baseline
        assert await poll(864_006_000, 704, 9_000_000_006_000) == \
            {"in32": pytest.approx(1000 / 60), "in64": pytest.approx(800.0)}
        assert await poll(3000, 10, 5000) == {}  # agent restarted: no rate, new baseline
        assert await poll(9000, 6010, 11000) == \
            {"in32": pytest.approx(100.0), "in64": pytest.approx(800.0)}


# 2. One PDU with noSuchObject, noSuchInstance, an empty string where a number is
#    expected and a good sysName: the good one is used, the others are "no sample".
def test_mixed_pdu_gives_no_sample_not_zero() -> None:
    for kind in (ValueType.NO_SUCH_OBJECT, ValueType.NO_SUCH_INSTANCE):
        with pytest.raises(DecodeError) as exc:
            decode_varbind(number(), SnmpValue(kind, None))
        assert exc.value.reason == "no_such_object"
    with pytest.raises(DecodeError) as exc:
        decode_varbind(number(), SnmpValue(ValueType.OCTET_STRING, b""))
    assert exc.value.reason == "not_numeric"
    assert decode_varbind(TEXT, SnmpValue(ValueType.OCTET_STRING, b"village-router")) == \
        "village-router"


@pytest.mark.integration
async def test_mixed_pdu_through_a_real_agent_keeps_the_device_up() -> None:
    """The same PDU from snmpsim, polled three times: sysName is used, the three others
    give no sample (not 0) and one warning each, not one per poll; the device is up."""
    missing, instance, empty = ("1.3.6.1.4.1.99999.1.0", "1.3.6.1.2.1.1.5.7",
                                "1.3.6.1.2.1.2.2.1.5.2")
    async with SnmpSimulator({"rtr": "router"}) as agent, GufoClient() as client:
        await agent.set_values("rtr", {empty: ("4", "")})  # ifSpeed.2 as an empty string
        target = SnmpTarget("127.0.0.1", agent.port, "v2c", "rtr", timeout=1.0, retries=1)
        readings = {"name": ("1.3.6.1.2.1.1.5.0", TEXT),
                    **{k: (oid, ReadingSpec(oid=oid)) for k, oid in
                       [("missing", missing), ("instance", instance), ("empty", empty)]}}
        job = PollJob("rtr", target, 60.0, readings)
        poller = SnmpPoller(client, [job], lambda _: None)
        errors_before = READING_ERRORS.labels("snmp", "no_such_object")._value.get()
        with capture_logs() as logs:
            for _ in range(3):
                obs = await poller.poll(job)
                assert obs.reachable
                assert dict(obs.readings) == {"name": "village-router"}
    warned = [e["oid"] for e in logs if e["event"] == "snmp value not decoded"]
    assert sorted(warned) == sorted([missing, instance, empty])
    assert READING_ERRORS.labels("snmp", "no_such_object")._value.get() == errors_before + 6


# 3. Text: NULs stripped, the device's charset when not UTF-8, else replacement.
@pytest.mark.parametrize(("hexbytes", "charset", "text"), [
    ("4c41422dbbfab7bf", "gbk", "LAB-机房"),
    ("4e6f74e96ce9", "latin-1", "Notélé"),
    ("4e6f74e96ce9", None, "Not\ufffdl\ufffd"),  # no charset given: replacement
    ("4e6f74e96ce9", "gbk", "Not\ufffdl\ufffd"),  # not valid GBK either
    ("43505531205465" "6d70" + "00" * 8, None, "CPU1 Temp"),
    ("6574683000", None, "eth0"),
    ("e69cbae688bf", "gbk", "机房"),  # valid UTF-8 wins over the fallback
])
def test_octet_strings_decode_to_clean_text(hexbytes: str, charset: str | None,
                                            text: str) -> None:
    value = SnmpValue(ValueType.OCTET_STRING, bytes.fromhex(hexbytes))
    assert decode_varbind(TEXT, value, charset) == text


# 4. Opaque: net-snmp's float and double, anything else "not numeric".
def test_opaque_float_double_and_other() -> None:
    as_float = SnmpValue(ValueType.OPAQUE, bytes.fromhex("9f78044 15b3333".replace(" ", "")))
    assert decode_varbind(number(), as_float) == pytest.approx(13.7, abs=1e-6)
    double = SnmpValue(ValueType.OPAQUE, bytes.fromhex("9f7908402b666666666666"))
    assert decode_varbind(number(), double) == pytest.approx(13.7)
    with pytest.raises(DecodeError) as exc:
        decode_varbind(number(), SnmpValue(ValueType.OPAQUE, bytes.fromhex("0401ff")))
    assert exc.value.reason == "not_numeric"


# 6. MQTT payloads on a telemetry topic.
READINGS = {
    "fuel": ReadingSpec(field="fuel", scale=0.01),
    "battery": ReadingSpec(field="battery", scale=0.01),
    "volts": ReadingSpec(field="voltage", decode="text_number"),
}
TOPIC = "p/v1/g/telemetry"


def _source(seen: list[Observation]) -> MqttSource:
    return MqttSource(MqttSpec(), {TOPIC: Route("g", "telemetry", READINGS)}, seen.append,
                      lambda _: None, clock=lambda: NOW)


def _count(result: str) -> float:
    return MQTT_MESSAGES.labels("telemetry", result)._value.get()


@pytest.mark.parametrize(("payload", "readings", "rejected"), [
    (b"online", None, "bad_json"),
    (b"\xff\xfe\x00garbage", None, "bad_json"),
    (b'{"fuel": NaN}', {}, None),  # parsed; the value is not a sample
    (b'{"fuel": "nan"}', {}, None),
    (b'{"fuel": Infinity}', {}, None),
    (b'{"battery":"100.00","voltage":"12.6 V"}', {"battery": 1.0, "volts": 12.6}, None),
    (b'{"fuel": "N/A"}', {}, None),
    (b"[1, 2, 3]", None, "not_object"),
    (json.dumps({"fuel": 50, "pad": "x" * 2_000_000}).encode(), None, "too_large"),
])
def test_telemetry_payloads(payload: bytes, readings: dict[str, float] | None,
                            rejected: str | None) -> None:
    """Each is parsed where the profile allows, else counted with a reason; never a crash."""
    seen: list[Observation] = []
    before = _count(rejected) if rejected else 0.0
    _source(seen).handle(TOPIC, payload)
    if rejected:
        assert seen == []
        assert _count(rejected) == before + 1
    else:
        (obs,) = seen
        assert obs.reachable
        assert dict(obs.readings) == readings


# 8. A reading of None or "N/A" for one device leaves the others' series intact: covered
#    by tests/outputs/test_metrics.py (promtool on the exposition with such readings).


def test_telemetry_counter_is_a_rate_by_message_time() -> None:
    """A JSON counter becomes a rate between messages, timed by their own ``ts``; a
    replayed older message and a reset give none."""
    seen: list[Observation] = []
    spec = ReadingSpec(field="run_seconds", counter=64)
    source = MqttSource(MqttSpec(), {TOPIC: Route("g", "telemetry", {"run": spec})},
                        seen.append, lambda _: None, clock=lambda: NOW)
    for ts, count in [(NOW - 240, 1000), (NOW - 180, 1030), (NOW - 210, 1010),
                      (NOW - 120, 0), (NOW - 60, "60")]:
        source.handle(TOPIC, json.dumps({"ts": ts, "run_seconds": count}).encode())
    assert [obs.readings.get("run") for obs in seen] == [None, 0.5, None, None, 1.0]
