"""One replica against a real etcd: it leads, stops sending before etcd can let its
lease go when etcd stops answering, sends everything itself after ``alone_after``,
and a second replica waits while the first holds the lease."""

from __future__ import annotations

import asyncio
import contextlib
import time

from commsmon.config.services import HaSpec
from commsmon.ha import Replica
from commsmon.sim.hapeers import Etcd


async def _until(what: str, check: object, within: float) -> float:
    start = time.monotonic()
    while not check():  # type: ignore[operator]
        assert time.monotonic() - start < within, what
        await asyncio.sleep(0.05)
    return time.monotonic() - start


def test_a_single_server_sends_everything() -> None:
    replica = Replica(None, 0)
    assert replica.role == "single" and replica.sends_all()


async def test_lease_standby_and_etcd_lost() -> None:
    async with Etcd() as etcd:
        a = Replica(HaSpec(replica="cc-a", etcd=[etcd.endpoint], lease=2, alone_after=4), 0)
        b = Replica(HaSpec(replica="cc-b", etcd=[etcd.endpoint], lease=2, alone_after=4), 0)
        ta = asyncio.create_task(a.run())
        await _until("a leads", lambda: a.role == "leader", 10)
        tb = asyncio.create_task(b.run())
        await _until("b stands by", lambda: b.role == "standby" and b.holder == "cc-a", 10)
        assert a.sends_all() and not b.sends_all()
        await etcd.stop()  # etcd gone: a must stop sending within 2/3 of its lease
        lost = time.monotonic()
        await _until("a stops sending", lambda: not a.sends_all(), 3)
        assert time.monotonic() - lost <= 2 * 2 / 3 + 0.2
        await _until("both alone", lambda: a.role == b.role == "alone", 8)
        assert a.sends_all() and b.sends_all()  # twice rather than never
        await etcd.start()  # back: one leads again, through new connections
        await _until("one leader again", lambda: {a.role, b.role} == {"leader", "standby"}, 20)
        assert a.sends_all() != b.sends_all()
        for task in (ta, tb):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def test_a_released_lease_passes_at_once() -> None:
    async with Etcd() as etcd:
        a = Replica(HaSpec(replica="cc-a", etcd=[etcd.endpoint], lease=6), 0)
        b = Replica(HaSpec(replica="cc-b", etcd=[etcd.endpoint], lease=6), 0)
        ta = asyncio.create_task(a.run())
        await _until("a leads", lambda: a.role == "leader", 10)
        tb = asyncio.create_task(b.run())
        await _until("b stands by", lambda: b.role == "standby", 10)
        ta.cancel()  # a clean stop revokes the lease
        with contextlib.suppress(asyncio.CancelledError):
            await ta
        took = await _until("b leads", lambda: b.role == "leader", 6)
        assert took < 6 / 3 + 1  # its next try, not the lease's lapse
        tb.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await tb
