"""UdpLink and LinkSet: relays that can be cut, delayed and restored."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import cast

import pytest
import pytest_asyncio

from commsmon.sim.links import Address, LinkSet, UdpLink
from commsmon.sim.snmpagents import SnmpSimulator
from tests.sim import octets, snmpget

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

SYS_NAME = "1.3.6.1.2.1.1.5.0"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def agents() -> AsyncIterator[SnmpSimulator]:
    async with SnmpSimulator({"rtr": "router", "rpt": "hytera-repeater"}) as sim:
        yield sim


class _Echo(asyncio.DatagramProtocol):
    """Answers each datagram with b"echo:" + datagram."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.transport.sendto(b"echo:" + data, addr)


@pytest_asyncio.fixture(loop_scope="module")
async def echo() -> AsyncIterator[Address]:
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(_Echo, local_addr=("127.0.0.1", 0))
    yield transport.get_extra_info("sockname")
    transport.close()


class _Client(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.replies: asyncio.Queue[bytes] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.replies.put_nowait(data)


@contextlib.asynccontextmanager
async def _client(port: int) -> AsyncIterator[tuple[asyncio.DatagramTransport, _Client]]:
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(
        _Client, remote_addr=("127.0.0.1", port)
    )
    try:
        yield transport, protocol
    finally:
        transport.close()


async def _ask(port: int, payload: bytes, wait: float = 1.0) -> bytes | None:
    async with _client(port) as (transport, client):
        transport.sendto(payload)
        try:
            return await asyncio.wait_for(client.replies.get(), wait)
        except TimeoutError:
            return None


async def test_get_through_link_cut_and_restore(agents: SnmpSimulator) -> None:
    """An SNMP GET passes the link, times out while it is cut, passes again after restore."""
    async with UdpLink(("127.0.0.1", agents.port)) as link:
        assert link.port != 0
        assert octets(await snmpget(link.port, "rtr", SYS_NAME)) == b"village-router"
        link.cut()
        assert link.is_cut
        assert await snmpget(link.port, "rtr", SYS_NAME, wait=0.3) is None
        assert link.dropped >= 1
        link.restore()
        assert octets(await snmpget(link.port, "rtr", SYS_NAME)) == b"village-router"


async def test_concurrent_clients_get_their_own_replies(agents: SnmpSimulator) -> None:
    """Replies go back to the client that asked, with many clients at once."""
    async with UdpLink(("127.0.0.1", agents.port)) as link:
        answers = await asyncio.gather(
            *(snmpget(link.port, c, SYS_NAME) for c in ["rtr", "rpt"] * 4)
        )
    assert [octets(a) for a in answers] == [b"village-router", b"rpt-district-01"] * 4


async def test_replies_in_flight_are_dropped_when_cut(echo: Address) -> None:
    """A reply held back by the delay is lost if the link is cut before it is relayed."""
    async with UdpLink(echo, delay=0.2) as link, _client(link.port) as (transport, client):
        transport.sendto(b"a")
        async with asyncio.timeout(1.0):
            while link.held < 1:  # noqa: ASYNC110 - polls a relay counter, bounded
                await asyncio.sleep(0.005)
        link.cut()
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(client.replies.get(), 0.4)
        link.restore()
        transport.sendto(b"b")
        assert await asyncio.wait_for(client.replies.get(), 1.0) == b"echo:b"


async def test_delay_holds_replies_back(echo: Address) -> None:
    """delay (seconds) postpones each reply; requests are not delayed."""
    async with UdpLink(echo, delay=0.25) as link:
        started = time.monotonic()
        assert await _ask(link.port, b"x") == b"echo:x"
        assert time.monotonic() - started >= 0.25
        link.delay = 0
        started = time.monotonic()
        assert await _ask(link.port, b"y") == b"echo:y"
        assert time.monotonic() - started < 0.25


async def test_close_releases_port_and_sessions(echo: Address) -> None:
    """After close() the listen port is free again and nothing is relayed."""
    link = UdpLink(echo)
    await link.start()
    port = link.port
    assert await _ask(port, b"x") == b"echo:x"
    await link.close()
    assert await _ask(port, b"x", wait=0.2) is None
    async with UdpLink(echo, listen_port=port) as again:
        assert again.port == port
        assert await _ask(port, b"z") == b"echo:z"


async def test_upstream_must_be_loopback() -> None:
    """The simulated fleet never relays off the host."""
    with pytest.raises(ValueError, match="loopback"):
        UdpLink(("192.0.2.1", 161))


async def test_linkset_cuts_only_the_named_devices(echo: Address) -> None:
    """Cutting one device leaves the others answering; None means every link."""
    async with LinkSet() as links:
        await links.start({"cam-1": (0, echo), "cam-2": (0, echo)})
        assert set(links) == {"cam-1", "cam-2"}
        assert len(links) == 2
        links.cut("cam-1")
        assert await _ask(links["cam-1"].port, b"1", wait=0.2) is None
        assert await _ask(links["cam-2"].port, b"2") == b"echo:2"
        links.cut()
        assert await _ask(links["cam-2"].port, b"2", wait=0.2) is None
        links.restore(["cam-1", "cam-2"])
        replies = await asyncio.gather(*(_ask(link.port, b"r") for link in links.values()))
        assert replies == [b"echo:r", b"echo:r"]
        with pytest.raises(KeyError):
            links.cut(["nope"])
        with pytest.raises(ValueError, match="already exist"):
            await links.start({"cam-1": (0, echo)})


async def test_linkset_start_failure_closes_what_it_opened(echo: Address) -> None:
    """A listen port that cannot be bound leaves no half-started links behind."""
    async with UdpLink(echo) as taken, LinkSet() as links:
        with pytest.raises(OSError):
            await links.start({"a": (0, echo), "b": (taken.port, echo)})
        assert len(links) == 0
