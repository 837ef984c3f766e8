"""The reply gate's message reader and matching rules, on bytes written out by hand
(BER, X.690) -- no network: the gate's transmit and deliver are lists."""

from __future__ import annotations

import asyncio

import pytest

from commsmon.sources.snmp.wire import Message, ReplyGate, ReplyPolicy, parse_message

SYS_NAME_NULL = bytes.fromhex("300906052b060102010500")  # VarBind { 1.3.6.1.2.1, NULL }


def _tlv(tag: int, content: bytes) -> bytes:
    return bytes([tag, len(content)]) + content


def _v2c(pdu: int, request_id: bytes, varbinds: bytes = SYS_NAME_NULL,
         error_status: int = 0) -> bytes:
    """Message { version 1, community "public", PDU { request-id, error-status,
    error-index 0, variable-bindings } }."""
    body = (_tlv(0x02, request_id) + _tlv(0x02, bytes([error_status])) + _tlv(0x02, b"\0")
            + _tlv(0x30, varbinds))
    return _tlv(0x30, _tlv(0x02, b"\1") + _tlv(0x04, b"public") + _tlv(pdu, body))


GET = _v2c(0xA0, bytes.fromhex("1234abcd"))  # GetRequest, request-id 305441741


def _response(request_id: bytes, varbinds: bytes = SYS_NAME_NULL) -> bytes:
    return _v2c(0xA2, request_id, varbinds)


def test_reads_v2c_and_v3_headers() -> None:
    assert parse_message(GET) == Message(1, 0x1234ABCD, 0xA0, 0, 1)
    # SNMPv3: 30 len, msgVersion 3, msgGlobalData { msgID 7, ... }: the id is the msgID.
    v3 = _tlv(0x30, _tlv(0x02, b"\3") + _tlv(0x30, _tlv(0x02, b"\7") + _tlv(0x02, b"\0\xff\xe3")
                                              + _tlv(0x04, b"\4") + _tlv(0x02, b"\3")))
    assert parse_message(v3) == Message(3, 7)


@pytest.mark.parametrize("data", [b"", b"\x30", b"\x30\x05\x02\x01\x01", b"hello",
                                  bytes.fromhex("3003020102")])
def test_what_is_not_an_snmp_message(data: bytes) -> None:
    with pytest.raises(ValueError):
        parse_message(data)


async def test_matching_rules() -> None:
    gate = ReplyGate("test")
    sent: list[bytes] = []
    got: list[bytes] = []
    dest = ("192.0.2.1", 161)
    gate.send(GET, dest, ReplyPolicy(frozenset({"192.0.2.2"}), 0.05, 1), sent.append, got.append)
    gate.receive(_response(bytes.fromhex("12340000")), dest)  # another request's id
    assert gate.unanswered(dest) is None and not got
    gate.receive(_response(bytes.fromhex("00abcd")), dest)  # 0xABCD: the id cut to 16 bits
    assert gate.unanswered(dest).detail == "request_id_cut"  # type: ignore[union-attr]
    gate.receive(_response(bytes.fromhex("1234abcd")), ("198.51.100.9", 161))
    assert gate.unanswered(dest).detail == "198.51.100.9"  # type: ignore[union-attr]
    gate.receive(_response(bytes.fromhex("1234abcd"), varbinds=b""), dest)
    assert gate.unanswered(dest).detail == "varbind_count"  # type: ignore[union-attr]
    await asyncio.sleep(0.07)  # resent, same bytes
    assert sent == [GET, GET]
    answer = _response(bytes.fromhex("1234abcd"))
    gate.receive(answer, ("192.0.2.2", 161))  # from the allowed other address
    assert got == [answer] and gate.unanswered(dest) is None and gate.in_flight == 0
    gate.receive(answer, dest)  # a duplicate: nothing in flight
    assert got == [answer]
