"""NativeClient against PysnmpClient: the same real agents, every value equal.

Both backends keep SMI types (the native one reads BER itself, as the trap
decoder does), so unlike gufo's differential test there is nothing "seen
through" anything: a value is equal, type and all, or the test fails.  Values
that move while we read (sysUpTime, interface counters) are read by pysnmp
before and after; the native one must have the same type and lie between.
SNMPv3 is gufo's inside NativeClient: it must give what GufoClient gives.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Sequence

import pytest
import pytest_asyncio
from structlog.testing import capture_logs

from commsmon.errors import SnmpError, SnmpTimeout
from commsmon.sim.snmpagents import SnmpSimulator
from commsmon.sources.snmp.base import NO_SUCH_OBJECT, SnmpTarget, SnmpValue, ValueType
from commsmon.sources.snmp.gufo_backend import GufoClient
from commsmon.sources.snmp.native_backend import NativeClient, encode_get
from commsmon.sources.snmp.pysnmp_backend import PysnmpClient
from commsmon.sources.snmp.wire import parse_message
from tests.snmpd import Snmpd, free_udp_port
from tests.sources.test_snmp_differential import (
    FAIL_TIMEOUT,
    FLEET,
    HIKVISION,
    IF_TABLE,
    IF_X_TABLE,
    MISSING_INSTANCE,
    MISSING_OBJECT,
    SYS_DESCR,
    SYS_LOCATION,
    SYS_NAME,
    SYSTEM,
    SYSTEM_SCALARS,
    TYPED_OIDS,
    agent,
    at,
    fleet,
    outcome,
    snmp_profiles,
    subtree,
)

pytestmark = pytest.mark.integration
in_module_loop = pytest.mark.asyncio(loop_scope="module")  # the loop of the fleet fixture
__all__ = ["agent", "fleet"]  # fixtures, shared with the differential test


@pytest_asyncio.fixture
async def clients() -> AsyncIterator[tuple[PysnmpClient, NativeClient]]:
    async with PysnmpClient() as pysnmp, NativeClient() as native:
        yield pysnmp, native


async def same_as_pysnmp(pysnmp: PysnmpClient, native: NativeClient, target: SnmpTarget,
                         oids: Sequence[str]) -> dict[str, SnmpValue]:
    """GET through pysnmp, the native client, pysnmp again; assert every value equal (or,
    if it moved, of the same type and between); return the native values."""
    before = await pysnmp.get(target, oids)
    got = await native.get(target, oids)
    after = await pysnmp.get(target, oids)
    assert list(got) == list(before) == list(oids)
    for oid in oids:
        where = f"{target.version} {target.community} GET {oid}"
        if before[oid] == after[oid]:
            assert got[oid] == before[oid], where
        else:
            assert got[oid].type is before[oid].type, where
            low, high, value = before[oid].value, after[oid].value, got[oid].value
            assert isinstance(low, int) and isinstance(high, int), where
            assert isinstance(value, int) and low <= value <= high, where
    return got


async def same_walk(pysnmp: PysnmpClient, native: NativeClient, target: SnmpTarget,
                    root: str) -> int:
    """Every OID under ``root`` (net-snmp's snmpwalk) compared, ten a PDU; the count."""
    oids = await subtree(target, root)
    for start in range(0, len(oids), 10):
        await same_as_pysnmp(pysnmp, native, target, oids[start:start + 10])
    return len(oids)


@pytest.mark.parametrize("version", ["v1", "v2c"])
async def test_system_group_and_if_tables_equal_pysnmps(
        agent: Snmpd, clients: tuple[PysnmpClient, NativeClient], version: str) -> None:
    """sysDescr..sysORLastChange by GET; the system group, ifTable and ifXTable by walk."""
    pysnmp, native = clients
    target = at(agent, version)  # type: ignore[arg-type]
    got = await same_as_pysnmp(pysnmp, native, target, SYSTEM_SCALARS)
    rows = sum([await same_walk(pysnmp, native, target, root)
                for root in (SYSTEM, IF_TABLE, IF_X_TABLE)])

    assert got[SYS_NAME] == SnmpValue(ValueType.OCTET_STRING, agent.sys_name.encode())
    assert rows > 30


@pytest.mark.parametrize("version", ["v1", "v2c"])
async def test_missing_oids_and_every_type_equal_pysnmps(
        agent: Snmpd, clients: tuple[PysnmpClient, NativeClient], version: str) -> None:
    """Missing objects and instances among good OIDs, and one OID of each SMI type snmpd
    serves: v2c keeps noSuchObject and noSuchInstance apart, v1's noSuchName is asked
    again without the blamed OID, as pysnmp's backend does."""
    pysnmp, native = clients
    oids = [MISSING_OBJECT, SYS_NAME, MISSING_INSTANCE, SYS_DESCR, *TYPED_OIDS]
    got = await same_as_pysnmp(pysnmp, native, at(agent, version), oids)  # type: ignore[arg-type]

    if version == "v2c":
        assert got[MISSING_OBJECT].type is ValueType.NO_SUCH_OBJECT
        assert got[MISSING_INSTANCE].type is ValueType.NO_SUCH_INSTANCE
        assert got["1.3.6.1.2.1.31.1.1.1.6.1"].type is ValueType.COUNTER64
    else:
        assert got[MISSING_OBJECT] == got[MISSING_INSTANCE] == NO_SUCH_OBJECT
    assert got["1.3.6.1.2.1.1.3.0"].type is ValueType.TIMETICKS
    assert got["1.3.6.1.2.1.2.2.1.5.1"].type is ValueType.GAUGE32
    assert got["1.3.6.1.2.1.2.2.1.10.1"].type is ValueType.COUNTER32
    assert got["1.3.6.1.2.1.4.20.1.1.127.0.0.1"] == SnmpValue(ValueType.IP_ADDRESS, "127.0.0.1")
    assert got["1.3.6.1.4.1.2021.10.1.6.1"].type is ValueType.OPAQUE


async def test_only_missing_oids_v1(agent: Snmpd,
                                    clients: tuple[PysnmpClient, NativeClient]) -> None:
    """A v1 GET of nothing but missing OIDs ends with all noSuchObject."""
    pysnmp, native = clients
    oids = [MISSING_OBJECT, MISSING_INSTANCE]
    got = await same_as_pysnmp(pysnmp, native, at(agent, "v1"), oids)

    assert got == {oid: NO_SUCH_OBJECT for oid in oids}


async def test_v3_is_gufos(agent: Snmpd) -> None:
    """SNMPv3 (authPriv, SHA-256 + AES-128) goes through gufo: the same values, and the
    agent's engine ID learnt."""
    target = at(agent, "v3")
    async with NativeClient() as native, GufoClient() as gufo:
        got = await native.get(target, [SYS_NAME, SYS_LOCATION])
        expected = await gufo.get(target, [SYS_NAME, SYS_LOCATION])
        engine = native.engine_id(target)

    assert got == expected
    assert engine is not None and engine == gufo.engine_id(target)


@in_module_loop
@pytest.mark.parametrize("version", ["v1", "v2c"])
async def test_profile_oids_and_walks_equal_pysnmps_on_every_recording(
        fleet: SnmpSimulator, version: str) -> None:
    """Every OID of every SNMP profile on every recorded device (snmpsim): equal values and
    equal readings; the ifTable and Hikvision subtrees walked equal."""
    profiles = snmp_profiles()
    readings = 0
    async with PysnmpClient() as pysnmp, NativeClient() as native:
        for community in FLEET:
            target = SnmpTarget(fleet.host, fleet.port, version,  # type: ignore[arg-type]
                                community=community)
            for specs in profiles.values():
                oids = list(dict.fromkeys(spec.oid for spec in specs.values() if spec.oid))
                got = await same_as_pysnmp(pysnmp, native, target, oids)
                for reading, spec in specs.items():
                    assert spec.oid is not None
                    expected = outcome(spec, (await pysnmp.get(target, [spec.oid]))[spec.oid])
                    assert outcome(spec, got[spec.oid]) == expected, (community, reading)
                    readings += 1
            for root in (IF_TABLE, HIKVISION):
                await same_walk(pysnmp, native, target, root)

    assert readings > 100


async def test_bad_oids_are_refused_before_anything_is_sent() -> None:
    """Not numeric, an arc above 2**32-1, a first arc of 3: ValueError, no request."""
    target = SnmpTarget("127.0.0.1", free_udp_port(), timeout=FAIL_TIMEOUT, retries=0)
    async with NativeClient() as native:
        for oid in ("1.3.6.x", "1.3.6.1.4294967296", "3.1.2"):
            with pytest.raises(ValueError):
                await native.get(target, [oid])


def test_the_request_reads_back_as_written() -> None:
    """encode_get's bytes are what the reply gate reads: v2c, the id, a GetRequest of
    two varbinds; a large id and a long community take the long length forms.
    Hand-checked: 1.3.6.1.2.1.1.5.0 is 06 08 2b 06 01 02 01 01 05 00."""
    from commsmon.sources.snmp.native_backend import _oid_tlv

    assert _oid_tlv(SYS_NAME) == bytes.fromhex("06082b06010201010500")
    request = encode_get(1, b"c" * 200, 2**31 - 1, [_oid_tlv(SYS_NAME), _oid_tlv(SYS_DESCR)])
    message = parse_message(request)

    assert (message.version, message.id, message.pdu, message.error_status,
            message.varbinds) == (1, 2**31 - 1, 0xA0, 0, 2)


class StandIn(asyncio.DatagramProtocol):
    """An agent on loopback answering each GetRequest with itself made a Response
    (PDU tag A0 -> A2), error-status and error-index as given, the varbinds' NULLs
    kept, or (``value``) each NULL replaced by that TLV; ``rewrite`` edits the
    reply's bytes last."""

    def __init__(self, status: int = 0, index: int = 0, value: bytes = b"",
                 rewrite: Callable[[bytes], bytes] = lambda reply: reply) -> None:
        self.status, self.index, self.value, self.rewrite = status, index, value, rewrite

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        at_pdu = data.index(b"\xa0", 2)
        reply = bytearray(data)
        reply[at_pdu] = 0xA2
        fields = reply.index(b"\x02\x01\x00\x02\x01\x00", at_pdu)  # the two INTEGER 0
        reply[fields + 2], reply[fields + 5] = self.status, self.index
        answer = bytes(reply)
        if self.value:  # one varbind: its NULL replaced, the three lengths around it grown
            grow = len(self.value) - 2
            answer = answer[:-2] + self.value
            head = bytearray(answer)
            for at in (1, at_pdu + 1, fields + 7, fields + 9):  # Message, PDU, list, VarBind
                head[at] += grow
            answer = bytes(head)
        self.transport.sendto(self.rewrite(answer), addr)  # type: ignore[attr-defined]


@contextlib.asynccontextmanager
async def stand_in(agent: StandIn, host: str = "127.0.0.1") -> AsyncIterator[int]:
    """``agent`` listening on an ephemeral port of ``host``: its port."""
    transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
        lambda: agent, local_addr=(host, 0))
    try:
        yield transport.get_extra_info("sockname")[1]
    finally:
        transport.close()


@pytest.mark.parametrize("value", [
    "06 01 80",           # an OID of one unfinished sub-identifier
    "06 03 2b 06 81",     # its last sub-identifier unfinished
    "06 03 2b 80 01",     # a sub-identifier padded with 0x80
    "02 05 01 00 00 00 00",  # INTEGER 2**32: beyond Integer32
    "02 0a 01 00 00 00 00 00 00 00 00 00",  # a 10-octet INTEGER
    "41 05 01 00 00 00 00",  # Counter32 2**32
    "43 0c" + " 01" * 12,    # a 12-octet TimeTicks (a 200-octet one crashed a poller)
    "46 09 01 00 00 00 00 00 00 00 00",  # Counter64 2**64
    "02 00",              # an INTEGER without content
    "05 01 00",           # NULL with content
    "80 01 00",           # noSuchObject with content
    "01 01 ff",           # BOOLEAN: not an SMI type
])
async def test_a_malformed_value_is_a_decode_error(value: str) -> None:
    """Each value a reply may carry that is not a well-formed SMI value in its range:
    SnmpError decodeError (the device's poll fails), never another exception."""
    async with stand_in(StandIn(value=bytes.fromhex(value))) as port, \
            NativeClient() as native:
        with pytest.raises(SnmpError) as caught:
            await native.get(SnmpTarget("127.0.0.1", port, timeout=1.0), [SYS_NAME])

    assert caught.value.status == "decodeError"


async def test_values_at_the_edges_of_their_ranges_are_read() -> None:
    """Integer32 -2**31, TimeTicks 2**32-1 (with and without its leading zero: net-snmp's
    leniency), Counter64 2**64-1."""
    for value, expected in [
        ("02 04 80 00 00 00", SnmpValue(ValueType.INTEGER, -2**31)),
        ("43 05 00 ff ff ff ff", SnmpValue(ValueType.TIMETICKS, 2**32 - 1)),
        ("43 04 ff ff ff ff", SnmpValue(ValueType.TIMETICKS, 2**32 - 1)),
        ("46 09 00" + " ff" * 8, SnmpValue(ValueType.COUNTER64, 2**64 - 1)),
    ]:
        async with stand_in(StandIn(value=bytes.fromhex(value))) as port, \
                NativeClient() as native:
            got = await native.get(SnmpTarget("127.0.0.1", port, timeout=1.0), [SYS_NAME])
        assert got == {SYS_NAME: expected}, value


@pytest.mark.parametrize("rewrite", [
    lambda reply: reply.replace(b"\x04\x06public", b"\x04\x06PUBLIC"),  # another community
    lambda reply: reply[:4] + b"\x00" + reply[5:],  # version 0 (v1) answering v2c
])
async def test_a_reply_with_another_community_or_version_is_not_an_answer(
        rewrite: Callable[[bytes], bytes]) -> None:
    """Dropped, as pysnmp drops it: the GET times out."""
    async with stand_in(StandIn(rewrite=rewrite)) as port, NativeClient() as native:
        with pytest.raises(SnmpTimeout):
            await native.get(SnmpTarget("127.0.0.1", port, "v2c", timeout=0.3, retries=0),
                             [SYS_NAME])


async def test_an_ipv6_host_written_any_way_is_answered() -> None:
    """0:0:0:0:0:0:0:1 and 0::1 are ::1: the reply from ::1 answers (the address is
    made canonical before the gate compares it with the reply's source)."""
    async with stand_in(StandIn(), "::1") as port, NativeClient() as native:
        for host in ("0:0:0:0:0:0:0:1", "0::1"):
            got = await native.get(SnmpTarget(host, port, timeout=1.0), [SYS_NAME])
            assert got == {SYS_NAME: SnmpValue(ValueType.NULL, None)}, host


async def test_closing_while_a_name_resolves_leaves_the_client_working(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """close() while a GET waits for its host's address: that GET may fail, and every
    GET after it is answered (its socket's reader is removed with it, not left behind
    on a descriptor the next socket reuses)."""
    from commsmon.sources.snmp import native_backend

    release = asyncio.Event()

    async def slow(target: SnmpTarget) -> tuple[str, float]:
        await release.wait()
        return "127.0.0.1", float("inf")

    monkeypatch.setattr(native_backend, "resolve", slow)
    async with stand_in(StandIn()) as port, NativeClient() as native:
        target = SnmpTarget("agent.invalid", port, timeout=0.5)
        first = asyncio.create_task(native.get(target, [SYS_NAME]))
        await asyncio.sleep(0.05)
        await native.close()
        release.set()
        await asyncio.gather(first, return_exceptions=True)
        for _ in range(3):
            got = await native.get(target, [SYS_NAME])
            assert got == {SYS_NAME: SnmpValue(ValueType.NULL, None)}


async def test_an_ipv6_agent_answers() -> None:
    """An agent on ::1: the request leaves from the IPv6 socket and its reply, from the
    agent's own address, answers (NULL values, as the stand-in sends them)."""
    async with stand_in(StandIn(), "::1") as port, NativeClient() as native:
        got = await native.get(SnmpTarget("::1", port, "v2c", timeout=1.0), [SYS_NAME])

    assert got == {SYS_NAME: SnmpValue(ValueType.NULL, None)}


async def test_a_whole_pdu_error_status_reads_every_oid_missing_as_gufo_did(
        clients: tuple[PysnmpClient, NativeClient]) -> None:
    """An agent answering genErr at index 2 (a stand-in on 127.0.0.1): the native backend
    reads both OIDs as missing, as gufo (the default before it) does, and logs the status
    once; pysnmp's backend raises SnmpError genErr, index 2 (a failed poll)."""
    pysnmp, native = clients
    async with stand_in(StandIn(status=5, index=2)) as port:
        target = SnmpTarget("127.0.0.1", port, "v2c", community="public", timeout=1.0)
        with capture_logs() as logs:
            got = await native.get(target, [SYS_NAME, SYS_DESCR])
            again = await native.get(target, [SYS_NAME, SYS_DESCR])
        async with GufoClient() as gufo:
            assert await gufo.get(target, [SYS_NAME, SYS_DESCR]) == got
        with pytest.raises(SnmpError) as caught:
            await pysnmp.get(target, [SYS_NAME, SYS_DESCR])

    assert got == again == {SYS_NAME: NO_SUCH_OBJECT, SYS_DESCR: NO_SUCH_OBJECT}
    assert [(e["status"], e["index"]) for e in logs if "error status" in e["event"]] == \
        [("genErr", 2)]
    assert (caught.value.status, caught.value.index) == ("genErr", 2)


async def test_a_resolver_that_hangs_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """Should name resolution never return, the GET still ends in SnmpTimeout once the
    target's deadline (timeout x (retries + 1) + 1 s) has passed."""
    from commsmon.sources.snmp import native_backend

    async def never_answers(*args: object) -> None:
        await asyncio.Event().wait()

    monkeypatch.setattr(native_backend, "resolve", never_answers)
    target = SnmpTarget("ups.village.invalid", 161, "v2c", timeout=0.2, retries=0)
    async with NativeClient() as native:
        started = time.monotonic()
        with pytest.raises(SnmpTimeout):
            await native.get(target, [SYS_NAME])

    assert target.deadline - 0.05 <= time.monotonic() - started < target.deadline + 2.0
