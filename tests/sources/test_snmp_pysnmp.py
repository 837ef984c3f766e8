"""PysnmpClient against a real net-snmp snmpd on 127.0.0.1."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator

import pytest

from commsmon.errors import SnmpError, SnmpTimeout
from commsmon.sources.snmp import pysnmp_backend
from commsmon.sources.snmp.base import SnmpTarget, SnmpValue, SnmpVersion, ValueType
from commsmon.sources.snmp.pysnmp_backend import PysnmpClient
from tests.snmpd import Snmpd, free_udp_port

pytestmark = pytest.mark.integration

SYS_DESCR = "1.3.6.1.2.1.1.1.0"
SYS_OBJECT_ID = "1.3.6.1.2.1.1.2.0"
SYS_UPTIME = "1.3.6.1.2.1.1.3.0"
SYS_NAME = "1.3.6.1.2.1.1.5.0"
SYS_LOCATION = "1.3.6.1.2.1.1.6.0"
MISSING_OBJECT = "1.3.6.1.2.1.1.99.0"  # no such object in SNMPv2-MIB::system
MISSING_INSTANCE = "1.3.6.1.2.1.1.5.1"  # sysName exists, instance .1 does not
IF_INDEX = "1.3.6.1.2.1.2.2.1.1"
IF_OPER_STATUS = "1.3.6.1.2.1.2.2.1.8"
IF_SPEED_1 = "1.3.6.1.2.1.2.2.1.5.1"  # Gauge32
IF_IN_OCTETS_1 = "1.3.6.1.2.1.2.2.1.10.1"  # Counter32
IF_HC_IN_OCTETS_1 = "1.3.6.1.2.1.31.1.1.1.6.1"  # Counter64 (v2c only)
IP_AD_ENT_ADDR_LO = "1.3.6.1.2.1.4.20.1.1.127.0.0.1"  # IpAddress
LA_LOAD_FLOAT_1 = "1.3.6.1.4.1.2021.10.1.6.1"  # UCD-SNMP-MIB laLoadFloat: Opaque float

VERSIONS: list[SnmpVersion] = ["v1", "v2c"]
FAIL_TIMEOUT = 0.5
FAIL_BOUND = FAIL_TIMEOUT * 1 + 2.0  # timeout * (retries + 1) + 2 s slack


@pytest.fixture(scope="module")
def agent() -> Iterator[Snmpd]:
    with Snmpd() as snmpd:
        yield snmpd


@pytest.fixture
async def client() -> AsyncIterator[PysnmpClient]:
    async with PysnmpClient() as snmp:
        yield snmp


def target(
    agent: Snmpd,
    version: SnmpVersion = "v2c",
    *,
    community: str | None = None,
    timeout: float = 2.0,
    retries: int = 1,
) -> SnmpTarget:
    return SnmpTarget(
        agent.host,
        agent.port,
        version,
        community=agent.community if community is None else community,
        timeout=timeout,
        retries=retries,
    )


def failing(agent: Snmpd, version: SnmpVersion = "v2c", community: str | None = None) -> SnmpTarget:
    return target(agent, version, community=community, timeout=FAIL_TIMEOUT, retries=0)


@pytest.mark.parametrize("version", VERSIONS)
async def test_get_system_scalars(agent: Snmpd, client: PysnmpClient, version: SnmpVersion) -> None:
    """sysDescr, sysUpTime and sysName come back typed: bytes, TimeTicks int, bytes."""
    result = await client.get(target(agent, version), [SYS_DESCR, SYS_UPTIME, SYS_NAME])

    assert list(result) == [SYS_DESCR, SYS_UPTIME, SYS_NAME]
    assert result[SYS_DESCR] == SnmpValue(ValueType.OCTET_STRING, agent.sys_descr.encode())
    assert result[SYS_NAME] == SnmpValue(ValueType.OCTET_STRING, agent.sys_name.encode())
    uptime = result[SYS_UPTIME]
    assert uptime.type is ValueType.TIMETICKS
    assert isinstance(uptime.value, int)
    assert uptime.value >= 0
    assert not uptime.is_exception


async def test_get_second_community(agent: Snmpd, client: PysnmpClient) -> None:
    """A second community on the same host and port gets its own answers."""
    result = await client.get(target(agent, community=agent.community2), [SYS_LOCATION])

    assert result[SYS_LOCATION] == SnmpValue(ValueType.OCTET_STRING, agent.sys_location.encode())


async def test_get_value_types(agent: Snmpd, client: PysnmpClient) -> None:
    """OID, Gauge32, Counter32, Counter64, IpAddress and Opaque map to their Python shapes."""
    oids = [
        SYS_OBJECT_ID,
        IF_SPEED_1,
        IF_IN_OCTETS_1,
        IF_HC_IN_OCTETS_1,
        IP_AD_ENT_ADDR_LO,
        LA_LOAD_FLOAT_1,
    ]
    result = await client.get(target(agent), oids)

    object_id = result[SYS_OBJECT_ID]
    assert object_id.type is ValueType.OBJECT_IDENTIFIER
    assert isinstance(object_id.value, str)
    assert object_id.value.startswith("1.3.6.1.4.1.8072.")  # NET-SNMP-MIB
    assert result[IF_SPEED_1].type is ValueType.GAUGE32
    assert result[IF_IN_OCTETS_1].type is ValueType.COUNTER32
    assert result[IF_HC_IN_OCTETS_1].type is ValueType.COUNTER64
    for oid in (IF_SPEED_1, IF_IN_OCTETS_1, IF_HC_IN_OCTETS_1):
        number = result[oid].value
        assert isinstance(number, int)
        assert number >= 0
    assert result[IP_AD_ENT_ADDR_LO] == SnmpValue(ValueType.IP_ADDRESS, "127.0.0.1")
    load = result[LA_LOAD_FLOAT_1]
    assert load.type is ValueType.OPAQUE
    assert isinstance(load.value, bytes)
    assert load.value[:3] == b"\x9f\x78\x04"  # net-snmp's opaque float: tag, length 4


async def test_get_missing_v2c(agent: Snmpd, client: PysnmpClient) -> None:
    """On v2c a missing object or instance is an exception value beside good values."""
    oids = [SYS_NAME, MISSING_OBJECT, SYS_UPTIME, MISSING_INSTANCE]
    result = await client.get(target(agent, "v2c"), oids)

    assert list(result) == oids
    assert result[SYS_NAME].value == agent.sys_name.encode()
    assert result[SYS_UPTIME].type is ValueType.TIMETICKS
    assert result[MISSING_OBJECT] == SnmpValue(ValueType.NO_SUCH_OBJECT, None)
    assert result[MISSING_INSTANCE] == SnmpValue(ValueType.NO_SUCH_INSTANCE, None)
    assert result[MISSING_OBJECT].is_exception
    assert result[MISSING_INSTANCE].is_exception


async def test_get_missing_v1(agent: Snmpd, client: PysnmpClient) -> None:
    """On v1 the whole-PDU noSuchName is resolved: good values return, missing are noSuchObject."""
    oids = [MISSING_OBJECT, SYS_NAME, MISSING_INSTANCE, SYS_DESCR]
    result = await client.get(target(agent, "v1"), oids)

    assert list(result) == oids
    assert result[SYS_NAME].value == agent.sys_name.encode()
    assert result[SYS_DESCR].value == agent.sys_descr.encode()
    assert result[MISSING_OBJECT] == SnmpValue(ValueType.NO_SUCH_OBJECT, None)
    assert result[MISSING_INSTANCE] == SnmpValue(ValueType.NO_SUCH_OBJECT, None)


async def test_get_only_missing_v1(agent: Snmpd, client: PysnmpClient) -> None:
    """On v1 a GET of nothing but missing OIDs still ends, all noSuchObject."""
    result = await client.get(target(agent, "v1"), [MISSING_OBJECT, MISSING_INSTANCE])

    assert {oid: value.type for oid, value in result.items()} == {
        MISSING_OBJECT: ValueType.NO_SUCH_OBJECT,
        MISSING_INSTANCE: ValueType.NO_SUCH_OBJECT,
    }


async def test_get_rejects_non_numeric_oid(agent: Snmpd, client: PysnmpClient) -> None:
    """A MIB name instead of a numeric OID is the caller's bug: ValueError, nothing sent."""
    with pytest.raises(ValueError, match="numeric OID"):
        await client.get(target(agent), ["SNMPv2-MIB::sysName.0"])


@pytest.mark.parametrize("version", VERSIONS)
async def test_wrong_community_times_out(
    agent: Snmpd, client: PysnmpClient, version: SnmpVersion
) -> None:
    """snmpd ignores a wrong community, so the GET ends in SnmpTimeout within the bound."""
    started = time.monotonic()
    with pytest.raises(SnmpTimeout):
        await client.get(failing(agent, version, community="not-the-community"), [SYS_NAME])

    assert time.monotonic() - started < FAIL_BOUND


async def test_paused_agent_times_out(agent: Snmpd, client: PysnmpClient) -> None:
    """A hung (SIGSTOPped) agent ends in SnmpTimeout within the bound, and answers once resumed."""
    snmp_target = failing(agent)
    agent.pause()
    try:
        started = time.monotonic()
        with pytest.raises(SnmpTimeout):
            await client.get(snmp_target, [SYS_NAME])
        elapsed = time.monotonic() - started
    finally:
        agent.resume()

    assert elapsed < FAIL_BOUND
    result = await client.get(target(agent), [SYS_NAME])
    assert result[SYS_NAME].value == agent.sys_name.encode()


async def test_closed_port_times_out(client: PysnmpClient) -> None:
    """Nothing listening on the port: SnmpTimeout within the bound, never a hang."""
    snmp_target = SnmpTarget("127.0.0.1", free_udp_port(), timeout=FAIL_TIMEOUT, retries=0)
    started = time.monotonic()
    with pytest.raises(SnmpTimeout) as caught:
        await client.get(snmp_target, [SYS_NAME])

    assert time.monotonic() - started < FAIL_BOUND
    assert isinstance(caught.value, SnmpError)
    assert caught.value.status == "requestTimedOut"


async def test_concurrent_requests_do_not_wait_for_a_dead_target(
    agent: Snmpd, client: PysnmpClient
) -> None:
    """A GET to a silent target does not delay a concurrent GET to a live one."""
    dead = SnmpTarget("127.0.0.1", free_udp_port(), timeout=FAIL_TIMEOUT, retries=0)

    async def timed_get(snmp_target: SnmpTarget) -> float:
        started = time.monotonic()
        await client.get(snmp_target, [SYS_NAME])
        return time.monotonic() - started

    await timed_get(target(agent))  # warm up: engine creation and MIB imports happen once
    dead_task = asyncio.create_task(timed_get(dead))
    live_elapsed = await timed_get(target(agent))

    assert live_elapsed < FAIL_TIMEOUT  # the dead target takes at least FAIL_TIMEOUT
    with pytest.raises(SnmpTimeout):
        await dead_task


def test_clients_in_two_event_loops(agent: Snmpd) -> None:
    """Two clients in two sequential event loops both work (an engine is bound to one loop)."""

    async def one_get() -> SnmpValue:
        async with PysnmpClient() as snmp:
            return (await snmp.get(target(agent), [SYS_NAME]))[SYS_NAME]

    first = asyncio.run(asyncio.wait_for(one_get(), 10))
    second = asyncio.run(asyncio.wait_for(one_get(), 10))

    assert first == second == SnmpValue(ValueType.OCTET_STRING, agent.sys_name.encode())


def test_one_client_reused_after_close_in_a_new_loop(agent: Snmpd) -> None:
    """A client closed in one loop makes a fresh engine when used in the next."""
    snmp = PysnmpClient()

    async def one_get() -> SnmpValue:
        try:
            return (await snmp.get(target(agent), [SYS_NAME]))[SYS_NAME]
        finally:
            await snmp.close()

    assert asyncio.run(asyncio.wait_for(one_get(), 10)).value == agent.sys_name.encode()
    assert asyncio.run(asyncio.wait_for(one_get(), 10)).value == agent.sys_name.encode()


def test_target_repr_hides_community() -> None:
    """The community is a secret: repr() of a target leaves it out."""
    snmp_target = SnmpTarget("192.0.2.1", community="s3cret-community")

    assert "s3cret" not in repr(snmp_target)


async def test_hung_library_call_is_bounded(
    monkeypatch: pytest.MonkeyPatch, client: PysnmpClient
) -> None:
    """Should a pysnmp call never end, the client still raises SnmpTimeout after the deadline."""

    async def never_answers(*args: object, **kwargs: object) -> None:
        await asyncio.Event().wait()

    monkeypatch.setattr(pysnmp_backend, "get_cmd", never_answers)
    snmp_target = SnmpTarget("127.0.0.1", 9, timeout=0.2, retries=0)
    started = time.monotonic()
    with pytest.raises(SnmpTimeout):
        await client.get(snmp_target, [SYS_NAME])

    assert time.monotonic() - started < snmp_target.deadline + 0.5


async def test_error_status_maps_to_snmp_error(
    monkeypatch: pytest.MonkeyPatch, client: PysnmpClient
) -> None:
    """An error-status other than noSuchName raises SnmpError naming the status and index."""

    async def gen_err(*args: object, **kwargs: object) -> tuple[None, int, int, tuple[()]]:
        return None, 5, 2, ()

    monkeypatch.setattr(pysnmp_backend, "get_cmd", gen_err)
    with pytest.raises(SnmpError) as caught:
        await client.get(SnmpTarget("127.0.0.1", 9), [SYS_NAME, SYS_DESCR])

    assert not isinstance(caught.value, SnmpTimeout)
    assert (caught.value.status, caught.value.index) == ("genErr", 2)
