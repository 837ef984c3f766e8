"""Profile-driven decoding of varbinds and JSON fields into readings (pure)."""

from __future__ import annotations

import struct
from typing import Any

import pytest

from commsmon.config.profiles import ReadingSpec
from commsmon.sources.convert import DecodeError, decode, decode_json_field, decode_varbind
from commsmon.sources.snmp.base import SnmpValue, ValueType


def spec(**kw: Any) -> ReadingSpec:
    kw.setdefault("oid", "1.3.6.1.2.1.1.3.0")
    return ReadingSpec(**kw)


@pytest.mark.parametrize(
    ("kw", "raw", "expected"),
    [
        ({}, 42, 42.0),
        ({"scale": 0.01}, 2003011998, 20030119.98),  # sysUpTime ticks -> seconds
        ({"scale": 60, "invalid": [-1]}, -1, None),  # Huawei upsEstimatedMinutesRemaining
        ({"scale": 0.01, "invalid": [-1]}, 100, 1.0),
        ({"scale": 0.1}, 410, 41.0),  # upsBatteryVoltage 0.1 V
        ({}, "12.5", 12.5),
        ({"decode": "text_number", "scale": 0.01}, b"52 PERCENT", 0.52),  # Hikvision
        ({"decode": "text_number"}, "12.6 V", 12.6),
        ({"decode": "text_number"}, b"116.5 GB", 116.5),
        ({"decode": "text_number"}, 13, 13.0),
        ({"decode": "float32_le"}, struct.pack("<f", 13.6), pytest.approx(13.6, abs=1e-5)),
        ({"decode": "float32_be"}, struct.pack(">f", -2.5), -2.5),
        ({"decode": "utf16"}, "RD988".encode("utf-16-le"), "RD988"),
        ({"decode": "utf16"}, "RD988".encode("utf-16"), "RD988"),  # with BOM
        ({"decode": "text"}, b"CPU1 Temp\x00\x00\x00", "CPU1 Temp"),
        ({"decode": "bool"}, "on", True),
        ({"decode": "bool"}, 0, False),
        ({"decode": "bool"}, False, False),
        ({"decode": "enum", "enum": {3: "normal", 5: "battery"}}, 5, "battery"),
        ({"decode": "enum", "enum": {3: "normal", 5: "battery"}}, "3", "normal"),
        ({"decode": "enum", "enum": {3: "normal", 5: "battery"}}, 8, "other"),  # TrippLite ATS
        ({"decode": "enum", "enum": {0: "dc", 1: "battery"}}, "battery", "battery"),
    ],
)
def test_decode_table(kw: dict[str, Any], raw: Any, expected: Any) -> None:
    """Each decoding produces the SI value, or None for a sentinel."""
    assert decode(spec(**kw), raw) == expected


@pytest.mark.parametrize(
    ("kw", "raw", "reason"),
    [
        ({}, "N/A", "not_numeric"),
        ({}, "nan", "not_finite"),
        ({}, float("inf"), "not_finite"),
        ({}, True, "not_numeric"),
        ({}, b"", "not_numeric"),  # zero-length OCTET STRING where a number is expected
        ({"decode": "text_number"}, "no digits", "not_numeric"),
        ({"decode": "float32_le"}, b"\x01\x02", "bad_packed_float"),
        ({"decode": "bool"}, "maybe", "bad_bool"),
        ({"decode": "utf16"}, b"\x41", "bad_text"),
    ],
)
def test_decode_errors_have_bounded_reasons(kw: dict[str, Any], raw: Any, reason: str) -> None:
    """A value that will not decode raises with a reason from the fixed set."""
    with pytest.raises(DecodeError) as exc:
        decode(spec(**kw), raw)
    assert exc.value.reason == reason


@pytest.mark.parametrize(
    "vtype", [ValueType.NO_SUCH_OBJECT, ValueType.NO_SUCH_INSTANCE, ValueType.END_OF_MIB_VIEW]
)
def test_varbind_exceptions_are_no_sample(vtype: ValueType) -> None:
    """noSuchObject and friends are no value: an error, never 0."""
    with pytest.raises(DecodeError) as exc:
        decode_varbind(spec(), SnmpValue(vtype, None))
    assert exc.value.reason == "no_such_object"


def test_opaque_float_decodes() -> None:
    """An Opaque-wrapped float (9f 78 04 + 4 bytes) decodes to its number."""
    raw = bytes.fromhex("9f7804415b3333")
    value = decode_varbind(spec(), SnmpValue(ValueType.OPAQUE, raw))
    assert value == pytest.approx(13.7, abs=1e-5)


def test_json_field_paths() -> None:
    """Dotted field paths reach nested values; absent or null fields give None."""
    s = ReadingSpec(field="engine.fuel_pct", scale=0.01)
    assert decode_json_field(s, {"engine": {"fuel_pct": "82"}}) == pytest.approx(0.82)
    assert decode_json_field(s, {"engine": {}}) is None
    assert decode_json_field(s, {"engine": {"fuel_pct": None}}) is None
    assert decode_json_field(s, {"engine": 5}) is None
