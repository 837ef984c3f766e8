"""The poller's scheduling against a real snmpd: cadence, reload, dead targets."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import socket
from collections.abc import Iterator

import pytest

from commsmon.config.profiles import ReadingSpec
from commsmon.core.types import Observation
from commsmon.selfmetrics import SNMP_DURATION
from commsmon.sim.links import UdpLink
from commsmon.sim.ports import free_port
from commsmon.sources.snmp.base import SnmpTarget
from commsmon.sources.snmp.gufo_backend import GufoClient
from commsmon.sources.snmp.poller import PollJob, SnmpPoller
from tests.snmpd import Snmpd

pytestmark = pytest.mark.integration

INTERVAL = 0.4


@pytest.fixture(scope="module")
def agent() -> Iterator[Snmpd]:
    with Snmpd() as snmpd:
        yield snmpd


def _job(device: str, port: int, community: str = "public") -> PollJob:
    target = SnmpTarget("127.0.0.1", port, "v2c", community, timeout=0.2, retries=0)
    name = ReadingSpec(oid="1.3.6.1.2.1.1.5.0", decode="text")
    return PollJob(device, target, INTERVAL, {"name": ("1.3.6.1.2.1.1.5.0", name)})


async def test_cadence_reload_and_dead_targets(agent: Snmpd) -> None:
    """Every job is polled once per interval; a dead target's polls end by their deadline
    and do not delay the others; after replace() a removed job is never polled again,
    an added one starts, and an unchanged one keeps going."""
    seen: collections.Counter[str] = collections.Counter()
    answered: collections.Counter[str] = collections.Counter()

    def sink(obs: Observation) -> None:
        seen[obs.device] += 1
        answered[obs.device] += obs.reachable

    dead_port = free_port(socket.SOCK_DGRAM)  # nothing listens there
    jobs = [_job("a", agent.port), _job("b", agent.port), _job("dead", dead_port)]
    async with GufoClient() as client:
        poller = SnmpPoller(client, jobs, sink, concurrency=4)
        task = asyncio.create_task(poller.run())
        await asyncio.sleep(INTERVAL * 5.5)
        # First poll within the first interval, then one per interval: 5 or 6 each.
        assert 4 <= seen["a"] <= 6 and 4 <= seen["b"] <= 6, seen
        assert answered["a"] == seen["a"] and answered["dead"] == 0
        assert seen["dead"] >= 4  # polled on schedule while failing
        started, stopped = poller.replace([jobs[0], _job("c", agent.port)])
        assert (started, stopped) == (1, 2)
        await asyncio.sleep(0.3)  # a poll in flight at replace() ends by its timeout
        after = dict(seen)
        await asyncio.sleep(INTERVAL * 3.5)
        assert seen["b"] == after["b"] and seen["dead"] == after["dead"]  # stopped
        assert seen["c"] >= 2 and answered["c"] == seen["c"]
        assert seen["a"] - after["a"] >= 3  # kept its cadence across the reload
        assert poller.alive(asyncio.get_running_loop().time())
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def _duration_counts() -> tuple[float, float]:
    """(polls that took at most 0.5 s, all polls) so far, from the duration histogram."""
    le, total = 0.0, 0.0
    for sample in SNMP_DURATION.collect()[0].samples:
        if sample.name.endswith("_bucket") and sample.labels["le"] == "0.5":
            le = sample.value
        elif sample.name.endswith("_count"):
            total = sample.value
    return le, total


async def test_an_agent_that_hangs_after_its_first_answer(agent: Snmpd) -> None:
    """Field input 5: an agent answers once, then never again. Each of its polls ends by its
    timeout, the 30 others keep their schedule, and no task piles up."""
    link = UdpLink(("127.0.0.1", agent.port))
    await link.start()
    seen: collections.Counter[str] = collections.Counter()
    answered: collections.Counter[str] = collections.Counter()

    def sink(obs: Observation) -> None:
        seen[obs.device] += 1
        answered[obs.device] += obs.reachable
        if obs.device == "hang" and obs.reachable:
            link.cut()  # from now on the agent swallows every request

    jobs = [_job("hang", link.port)] + [_job(f"d{i:02d}", agent.port) for i in range(30)]
    fast_before, total_before = _duration_counts()
    async with GufoClient() as client:
        poller = SnmpPoller(client, jobs, sink, concurrency=8)
        task = asyncio.create_task(poller.run())
        await asyncio.sleep(INTERVAL * 2)
        tasks_early = len(asyncio.all_tasks())
        await asyncio.sleep(INTERVAL * 4)
        tasks_late = len(asyncio.all_tasks())
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    await link.close()
    fast, total = _duration_counts()
    assert answered["hang"] == 1 and seen["hang"] >= 4, seen["hang"]
    assert all(seen[f"d{i:02d}"] >= 5 and answered[f"d{i:02d}"] == seen[f"d{i:02d}"]
               for i in range(30)), seen
    assert fast - fast_before == total - total_before  # every poll ended within 0.5 s
    assert tasks_late <= tasks_early + 8  # in-flight polls at most, nothing piles up
