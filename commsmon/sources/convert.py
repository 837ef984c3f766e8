"""Profile-driven conversion of raw values into typed readings (pure).

A raw value comes from a varbind (:class:`SnmpValue`) or a JSON field; the
profile's :class:`ReadingSpec` says how to decode it.  A value that will not
decode raises :class:`DecodeError` with a ``reason`` from a fixed set, so it can
be counted under a bounded label and skipped: a bad value never fails the poll.
"""

from __future__ import annotations

import functools
import math
import re
import struct
from collections.abc import Mapping
from typing import Any

from commsmon.config.profiles import ReadingSpec
from commsmon.core.types import Reading
from commsmon.sources.counters import CounterRates, CounterSample
from commsmon.sources.snmp.base import SnmpValue, ValueType

__all__ = [
    "NOT_KNOWN",
    "REASONS",
    "DecodeError",
    "decode",
    "decode_json_field",
    "decode_varbind",
    "json_field_present",
    "rate_reading",
    "unsupported",
]

#: Every ``DecodeError.reason``; label values of ``commsmon_reading_errors_total``.
REASONS = (
    "no_such_object",
    "not_numeric",
    "not_finite",
    "bad_packed_float",
    "bad_bool",
    "bad_text",
    "out_of_range",
    "internal_error",  # a decoder bug; the property tests make sure none is known
)
#: Values that decode but mean "not known" (label values of the same counter): a
#: vendor sentinel (``invalid``), or a value ``unsupported_when`` says is not supported.
NOT_KNOWN = ("sentinel", "unsupported")

_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
_TRUE = {"true", "on", "yes", "1", "running", "online"}
_FALSE = {"false", "off", "no", "0", "stopped", "offline"}
# RFC 2579 has no float; net-snmp's Opaque float: 9f 78 04 <4 bytes big-endian>.
_OPAQUE_FLOAT = b"\x9f\x78\x04"
_OPAQUE_DOUBLE = b"\x9f\x79\x08"


class DecodeError(ValueError):
    """A raw value that the reading's spec cannot turn into a reading.

    Attributes:
        reason: one of :data:`REASONS`.
    """

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


def decode_varbind(
    spec: ReadingSpec, value: SnmpValue, charset: str | None = None
) -> Reading | None:
    """Decode one varbind; ``None`` for a vendor sentinel listed in ``invalid``.

    An OCTET STRING read as text is UTF-8 if it is valid UTF-8, else in the
    device's ``charset`` (GBK, Latin-1 ...) if it is valid there, else UTF-8
    with replacement characters; NULs are stripped (C strings, padded fields).

    Raises:
        DecodeError: noSuchObject/noSuchInstance/endOfMibView, or a value the
            spec's ``decode`` cannot read.
    """
    if value.is_exception or value.value is None:
        raise DecodeError("no_such_object", value.type.value)
    raw: Any = value.value
    if value.type is ValueType.OPAQUE and isinstance(raw, bytes):
        raw = _opaque_number(raw)
    return _guarded(spec, raw, charset)


def unsupported(
    specs: Mapping[str, ReadingSpec], readings: Mapping[str, Reading]
) -> list[str]:
    """Readings of one answer whose value means "not supported" given the others
    (each spec's ``unsupported_when``); the caller drops them and counts them
    ``unsupported``, like a sentinel."""
    found = []
    for name, value in readings.items():
        spec = specs.get(name)
        when = spec.unsupported_when if spec is not None else None
        if when is None or value != when.value:
            continue
        if all(readings.get(other) == wanted for other, wanted in when.readings.items()):
            found.append(name)
    return found


def decode_json_field(spec: ReadingSpec, document: dict[str, Any]) -> Reading | None:
    """Decode the reading's ``field`` (dotted path) from a JSON object.

    Returns ``None`` when the field is absent or null, or holds a sentinel.

    Raises:
        DecodeError: the field holds a value the spec cannot read.
    """
    node: Any = document
    for part in _path(spec.field):
        if not isinstance(node, dict):  # JSON objects are dicts
            return None
        node = node.get(part)
    return None if node is None else _guarded(spec, node, None)


def json_field_present(spec: ReadingSpec, document: dict[str, Any]) -> bool:
    """Whether the reading's ``field`` is in ``document`` at all (even as ``null``):
    a message that leaves a field out says nothing of it; one that sends it
    with no usable value says it is not known now."""
    node: Any = document
    for part in _path(spec.field):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


@functools.cache
def _path(field: str | None) -> tuple[str, ...]:
    """A dotted field's parts (a handful per profile: split once, not per message)."""
    return tuple((field or "").split("."))


def _guarded(spec: ReadingSpec, raw: Any, charset: str | None) -> Reading | None:
    """:func:`decode`, with a bug in it costing one value, not the poll or the message."""
    try:
        return decode(spec, raw, charset)
    except DecodeError:
        raise
    except Exception as exc:
        raise DecodeError("internal_error", f"{type(exc).__name__}: {exc}"[:120]) from exc


def decode(spec: ReadingSpec, raw: Any, charset: str | None = None) -> Reading | None:
    """Decode a raw Python value (int, float, str, bytes, bool) per ``spec``.

    ``charset`` is the fallback for bytes that are not UTF-8 (see
    :func:`decode_varbind`).

    A ``counter`` spec gives the count itself, an ``int`` (exact even for
    a Counter64 beyond 2**53); :func:`rate_reading` makes it a rate.

    Raises:
        DecodeError: when the value does not fit ``spec.decode`` or, for a
            counter, is not an integer in 0 .. 2**bits - 1.
    """
    if spec.counter is not None:
        return _counter(raw, spec.counter)
    kind = spec.decode
    if kind == "number":  # most readings: checked first
        number = _number(raw)
    elif kind == "text":
        return _text(raw, charset)
    elif kind == "utf16":
        return _utf16(raw)
    elif kind == "bool":
        return _bool(raw)
    elif kind == "enum":
        return _enum(spec, raw)
    elif kind in ("float32_le", "float32_be"):
        number = _packed_float(raw, "<f" if kind == "float32_le" else ">f")
    elif kind == "text_number":
        number = _text_number(raw)
    else:
        number = _number(raw)
    if number in spec.invalid:
        return None
    value = number * spec.scale + spec.offset
    if not math.isfinite(value):
        raise DecodeError("not_finite", repr(raw))
    return value


def rate_reading(
    spec: ReadingSpec, rates: CounterRates, device: str, name: str, sample: CounterSample
) -> float | None:
    """The reading of a ``counter`` spec: per-second rate times ``scale``.

    ``None`` for the first sample and for an interval with no rate (agent
    restart, reset); see :mod:`commsmon.sources.counters`.
    """
    assert spec.counter is not None
    rate = rates.update(device, name, sample, spec.counter)
    return None if rate is None else rate * spec.scale


def _counter(raw: Any, bits: int) -> int:
    if isinstance(raw, bool):
        raise DecodeError("not_numeric", "a truth value where a counter is expected")
    if isinstance(raw, float) and raw.is_integer():
        raw = int(raw)
    elif isinstance(raw, str | bytes):
        text = _text(raw)
        if not (text.isascii() and text.isdigit()):
            raise DecodeError("not_numeric", repr(text[:40]))
        raw = int(text)
    if not isinstance(raw, int):
        raise DecodeError("not_numeric", f"{raw!r:.40} is not a whole number")
    if not 0 <= raw < 2**bits:
        raise DecodeError("out_of_range", f"{raw} does not fit Counter{bits}")
    return raw


def _number(raw: Any) -> float:
    if type(raw) is float and math.isfinite(raw):  # most values: nothing to convert
        return raw
    if isinstance(raw, bool):
        raise DecodeError("not_numeric", "a truth value where a number is expected")
    if isinstance(raw, int | float):
        if not math.isfinite(raw):
            raise DecodeError("not_finite", repr(raw))
        return float(raw)
    text = _text(raw).strip()
    try:
        number = float(text)
    except ValueError:
        raise DecodeError("not_numeric", repr(text[:40])) from None
    if not math.isfinite(number):
        raise DecodeError("not_finite", repr(text[:40]))
    return number


def _text_number(raw: Any) -> float:
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        return _number(raw)
    text = _text(raw)
    match = _NUMBER.search(text)
    if match is None:
        raise DecodeError("not_numeric", repr(text[:40]))
    return float(match.group())


def _packed_float(raw: Any, fmt: str) -> float:
    if not isinstance(raw, bytes) or len(raw) != 4:
        raise DecodeError("bad_packed_float", f"expected 4 bytes, got {raw!r:.40}")
    return float(struct.unpack(fmt, raw)[0])


def _opaque_number(raw: bytes) -> float | bytes:
    """An Opaque-wrapped float/double (net-snmp ASN_OPAQUE_FLOAT/DOUBLE), else raw."""
    if raw.startswith(_OPAQUE_FLOAT) and len(raw) == 7:
        return float(struct.unpack(">f", raw[3:])[0])
    if raw.startswith(_OPAQUE_DOUBLE) and len(raw) == 11:
        return float(struct.unpack(">d", raw[3:])[0])
    return raw


def _text(raw: Any, charset: str | None = None) -> str:
    if isinstance(raw, bytes):
        text = _bytes_text(raw, charset)
    else:
        text = raw if isinstance(raw, str) else str(raw)
    return text.replace("\x00", "").strip()


def _bytes_text(raw: bytes, charset: str | None) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        pass
    if charset is not None:
        try:
            return raw.decode(charset)
        except UnicodeDecodeError:
            pass
    return raw.decode("utf-8", errors="replace")


def _utf16(raw: Any) -> str:
    if not isinstance(raw, bytes):
        return _text(raw)
    if len(raw) % 2:
        raise DecodeError("bad_text", "odd number of bytes for UTF-16")
    # A BOM says the byte order; Hytera sends little-endian without one.
    codec = "utf-16" if raw[:2] in (b"\xff\xfe", b"\xfe\xff") else "utf-16-le"
    text: str = bytes(raw).decode(codec, errors="replace")
    return text.replace("\x00", "").strip()


def _bool(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, int | float) and raw in (0, 1):
        return bool(raw)
    text = _text(raw).lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise DecodeError("bad_bool", repr(text[:40]))


def _enum(spec: ReadingSpec, raw: Any) -> str:
    names = spec.enum or {}
    if isinstance(raw, bytes):
        raw = _text(raw)
    digits = raw.strip().lstrip("-") if isinstance(raw, str) else ""
    if digits.isascii() and digits.isdigit():  # not "²": str.isdigit takes it, int() not
        raw = int(raw)
    if isinstance(raw, int | str) and not isinstance(raw, bool) and raw in names:
        return names[raw]
    if isinstance(raw, str) and raw in names.values():
        return raw
    # Vendors extend enumerations (TrippLite answers upsOutputSource 8): not a crash.
    return "other"
