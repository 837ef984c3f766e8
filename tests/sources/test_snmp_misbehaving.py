"""One verdict whichever backend, against an agent that misbehaves on purpose (issue 13,
findings 3 and 4), with net-snmp's ``snmpget`` as the reference where it has one.

The rule (commsmon/sources/snmp/wire.py, README "Replies from other addresses"): a
reply is matched on request id and accepted from the target's address or one in its
``reply_from``; retries resend the same request id, so a reply to any attempt
answers; anything else is dropped, counted, and named in the device's reason.

Each case: the agent's mode, the target's ``reply_from``, and what both backends must
say. Timeout 0.3 s, 1 retry: the backend waits 0.6 s for one request.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import pytest
from prometheus_client import REGISTRY

from commsmon.config.profiles import ReadingSpec
from commsmon.core.fleet import Fleet
from commsmon.core.model import Device, Inventory, Site
from commsmon.core.types import State
from commsmon.errors import SnmpError, SnmpProtocolError, SnmpUnexpectedSource
from commsmon.outputs.wording.render import Wording
from commsmon.sources.snmp.base import SnmpClient, SnmpTarget, SnmpValue, ValueType
from commsmon.sources.snmp.gufo_backend import GufoClient
from commsmon.sources.snmp.native_backend import NativeClient
from commsmon.sources.snmp.poller import PollJob, SnmpPoller
from commsmon.sources.snmp.pysnmp_backend import PysnmpClient
from tests.sources.badagent import OTHER_ADDRESS, SYS_LOCATION, SYS_NAME, BadAgent, Mode

pytestmark = pytest.mark.integration

BACKENDS = [NativeClient, GufoClient, PysnmpClient]
ANSWER = {SYS_NAME: SnmpValue(ValueType.OCTET_STRING, b"bad-agent")}
NOW = 1_764_400_000.0


@dataclass(frozen=True)
class Case:
    name: str
    mode: Mode
    reply_from: frozenset[str]
    raises: type[SnmpError] | None  # None: the answer is ANSWER
    detail: str = ""  # the error's address or misfit code
    dropped: str = ""  # the commsmon_snmp_replies_dropped_total reason it counts


CASES = [
    Case("a good agent", "good", frozenset(), None),
    # The reply carries our request id but comes from 127.0.0.2: not this target.
    Case("reply from another address", "other_source", frozenset(), SnmpUnexpectedSource,
         OTHER_ADDRESS, "unexpected_source"),
    # The same agent answering from its other interface, allowed by configuration.
    Case("reply from an allowed address", "other_source", frozenset({OTHER_ADDRESS}), None),
    # First reply answers; the second matches nothing in flight and is dropped.
    Case("duplicate replies", "duplicate", frozenset(), None, dropped="unmatched"),
    # Sent at 0, resent (same id) at 0.3; the reply to the first attempt comes at
    # 0.45 < 0.6, so it answers -- as it does for net-snmp.
    Case("reply later than the timeout", "late", frozenset(), None),
    # Request id 0x1234ABCD answered as 0xABCD: not ours, but plainly meant for us.
    Case("request id cut to 16 bits", "truncated", frozenset(), SnmpProtocolError,
         "request_id_cut", "protocol_error"),
    Case("empty datagram", "empty", frozenset(), SnmpProtocolError, "undecodable",
         "protocol_error"),
    # One OID asked, a Response with error-status 0 and no varbinds: not an answer.
    Case("response without varbinds", "no_varbinds", frozenset(), SnmpProtocolError,
         "varbind_count", "protocol_error"),
]


def _dropped(reason: str) -> float:
    return REGISTRY.get_sample_value("commsmon_snmp_replies_dropped_total",
                                     {"reason": reason}) or 0.0


async def _get(client: SnmpClient, agent: BadAgent, target: SnmpTarget) -> dict[str, SnmpValue]:
    """GET sysName; for the truncated case, again while the request id happened to fit
    in 16 bits (then cutting it changes nothing: about 1 in 30 000)."""
    for _ in range(3):
        before = len(agent.request_ids)
        try:
            return await client.get(target, [SYS_NAME])
        except SnmpError:
            if agent.mode != "truncated" or agent.request_ids[before] > 0xFFFF:
                raise
    raise AssertionError("three request ids below 2**16 in a row")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
async def test_one_verdict_whichever_backend(backend: type[SnmpClient], case: Case) -> None:
    async with BadAgent(case.mode) as agent, backend() as client:  # type: ignore[attr-defined]
        target = SnmpTarget("127.0.0.1", agent.port, timeout=0.3, retries=1,
                            reply_from=case.reply_from)
        counted = _dropped(case.dropped) if case.dropped else 0.0
        if case.raises is None:
            assert await _get(client, agent, target) == ANSWER
        else:
            with pytest.raises(case.raises) as raised:
                await _get(client, agent, target)
            error = raised.value
            assert isinstance(error, SnmpUnexpectedSource | SnmpProtocolError)
            assert (error.address if isinstance(error, SnmpUnexpectedSource)
                    else error.detail) == case.detail
        await asyncio.sleep(0.05)  # a duplicate arrives
        if case.dropped:
            assert _dropped(case.dropped) > counted
        # Whatever came before, a well-behaved answer to the next request is its own.
        agent.mode, agent.values[SYS_LOCATION] = "good", b"next"
        got = await client.get(target, [SYS_LOCATION])
        assert got == {SYS_LOCATION: SnmpValue(ValueType.OCTET_STRING, b"next")}


async def test_net_snmp_answers_the_late_agent_too() -> None:
    """The reference: net-snmp's snmpget keeps the request id across retries, so the
    agent that is always 0.15 s slower than the timeout is answered there as here."""
    async with BadAgent("late") as agent:
        proc = await asyncio.create_subprocess_exec(
            "snmpget", "-v2c", "-c", "public", "-t", "0.3", "-r", "1", "-On", "-Oqv",
            f"127.0.0.1:{agent.port}", SYS_NAME,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await proc.communicate()
    assert proc.returncode == 0, err
    assert out.strip().strip(b'"') == b"bad-agent"
    assert len(set(agent.request_ids)) == 1  # two attempts, one request id


@pytest.mark.parametrize("backend", BACKENDS)
async def test_the_device_reason_names_the_address(backend: type[SnmpClient]) -> None:
    """Through the poller and the core: after three polls answered only from 127.0.0.2
    (down_after 3) the router is down, and the duty officer reads, in Chinese, where
    the replies came from and what to do; an agent cutting request ids is named too."""
    spec = ReadingSpec(oid=SYS_NAME, decode="text")
    router = Device("v03-router", "v03", "router", "4G 路由器", "snmp", "router-mib2",
                    channel="public")
    fleet = Fleet(Inventory.build([Site("v03", "占位村03", "山城街道")], [router]), NOW)
    async with BadAgent("other_source") as agent, backend() as client:  # type: ignore[attr-defined]
        target = SnmpTarget("127.0.0.1", agent.port, timeout=0.3, retries=1)
        job = PollJob("v03-router", target, 60.0, {"name": (SYS_NAME, spec)})
        poller = SnmpPoller(client, [job], fleet.observe, clock=lambda: NOW + 1)
        for _ in range(3):
            obs = await poller.poll(job)
        assert (obs.reachable, obs.error, obs.detail) == (
            False, "unexpected_source", OTHER_ADDRESS)
        status = fleet.evaluate(NOW + 2).devices["v03-router"]
        assert status.state is State.DOWN
        zh = Wording("zh").facts(status.reasons)
        assert OTHER_ADDRESS in zh and "reply_from" in zh, zh

        agent.mode = "truncated"
        cut = await poller.poll(job)
        if agent.request_ids[-1] > 0xFFFF:  # else cutting changed nothing (1 in 30 000)
            assert (cut.error, cut.detail) == ("protocol_error", "request_id_cut")
            status = fleet.evaluate(NOW + 3).devices["v03-router"]
            assert "截成了 16 位" in Wording("zh").facts(status.reasons)
