"""Cuttable UDP links: relays on 127.0.0.1 that can drop everything on demand.

Real devices fail by not answering: the radio link, the 4G uplink or the
power is gone and the packets are simply lost. A :class:`UdpLink` sits between
a poller and a simulated agent (usually the one snmpsim process of
:mod:`commsmon.sim.snmpagents`) and relays datagrams both ways until
:meth:`UdpLink.cut`, after which it silently drops them, like a dead link.
:class:`LinkSet` holds one link per simulated device.

Only loopback addresses are accepted: the simulated fleet never sends a packet
off the host.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from collections.abc import Iterable, Iterator, Mapping
from types import TracebackType
from typing import Any, cast

from commsmon.sim._process import Service

__all__ = ["HOST", "Address", "LinkSet", "UdpLink"]

HOST = "127.0.0.1"
"""The address every link listens on."""

Address = tuple[str, int]
"""``(host, port)`` of a UDP endpoint."""

_MAX_DATAGRAM = 65535


def _check_loopback(host: str) -> None:
    try:
        loopback = ipaddress.IPv4Address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ValueError(
            f"upstream {host!r} is not an IPv4 loopback address; the sim stays on this host"
        )


class _Session:
    """The upstream socket of one client address."""

    __slots__ = ("last_used", "sock")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.last_used = time.monotonic()


class UdpLink(Service, asyncio.DatagramProtocol):
    """A UDP relay from 127.0.0.1:``port`` to ``upstream`` that can be cut.

    Each client address gets its own upstream socket, so replies go back to
    the client that asked and concurrent clients do not mix. Sessions idle for
    more than ``idle_timeout`` seconds are closed when a new client arrives;
    all are closed by :meth:`close`.

    Args:
        upstream: where datagrams go, e.g. the snmpsim ``(host, port)``;
            the host must be an IPv4 loopback address such as 127.0.0.1.
        listen_port: UDP port to listen on at 127.0.0.1; 0 (default) picks a
            free one, see :attr:`port` after :meth:`start`.
        delay: seconds each reply is held back before it is relayed
            (slow-agent tests); default 0. May be changed at any time.
        idle_timeout: seconds after which an unused client session is
            dropped, default 60.

    Attributes:
        port: the listening port (``listen_port`` until started).
        upstream: the upstream address.
        delay: reply delay in seconds.
        forwarded: datagrams relayed so far (both directions).
        dropped: datagrams dropped because the link was cut.
        clients: every client address that has sent through the link.

    Raises:
        ValueError: the upstream host is not an IPv4 loopback address.
    """

    def __init__(
        self,
        upstream: Address,
        *,
        listen_port: int = 0,
        delay: float = 0.0,
        idle_timeout: float = 60.0,
    ) -> None:
        _check_loopback(upstream[0])
        self.upstream = upstream
        self.port = listen_port
        self.delay = delay
        self.idle_timeout = idle_timeout
        self.forwarded = 0
        self.dropped = 0
        self.clients: set[Address] = set()
        self._cut = False
        self._transport: asyncio.DatagramTransport | None = None
        self._sessions: dict[Any, _Session] = {}
        self._pending: set[asyncio.TimerHandle] = set()

    @property
    def is_cut(self) -> bool:
        return self._cut

    @property
    def held(self) -> int:
        """Replies currently held back by :attr:`delay`."""
        return len(self._pending)

    async def start(self) -> None:
        """Bind the listening socket. Idempotent.

        Raises:
            OSError: the port cannot be bound.
        """
        if self._transport is not None:
            return
        loop = asyncio.get_running_loop()
        await loop.create_datagram_endpoint(lambda: self, local_addr=(HOST, self.port))

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # Not isinstance(): before Python 3.12 the selector loop's datagram
        # transport does not subclass DatagramTransport.
        self._transport = cast(asyncio.DatagramTransport, transport)
        self.port = transport.get_extra_info("sockname")[1]

    def cut(self) -> None:
        """Silently drop every datagram, both ways, until :meth:`restore`."""
        self._cut = True

    def restore(self) -> None:
        """Relay datagrams again."""
        self._cut = False

    async def close(self) -> None:
        """Stop listening, drop held replies and close every upstream socket."""
        for handle in self._pending:
            handle.cancel()
        self._pending.clear()
        for addr in list(self._sessions):
            self._end_session(addr)
        if self._transport is not None:
            self._transport.close()
            self._transport = None

    # client -> upstream

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        if self._cut:
            self.dropped += 1
            return
        session = self._sessions.get(addr) or self._new_session(addr)
        session.last_used = time.monotonic()
        try:
            session.sock.send(data)
        except OSError:  # buffer full or upstream refused: lost, as UDP may be
            return
        self.forwarded += 1

    def error_received(self, exc: Exception) -> None:
        """A send to a client failed (it went away): nothing to do for UDP."""

    def _new_session(self, addr: Any) -> _Session:
        now = time.monotonic()
        for old, session in list(self._sessions.items()):
            if now - session.last_used > self.idle_timeout:
                self._end_session(old)
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setblocking(False)
        sock.bind((HOST, 0))
        sock.connect(self.upstream)
        self.clients.add(addr)
        session = self._sessions[addr] = _Session(sock)
        asyncio.get_running_loop().add_reader(sock.fileno(), self._upstream_readable, addr, sock)
        return session

    def _end_session(self, addr: Any) -> None:
        session = self._sessions.pop(addr)
        asyncio.get_running_loop().remove_reader(session.sock.fileno())
        session.sock.close()

    # upstream -> client

    def _upstream_readable(self, addr: Any, sock: socket.socket) -> None:
        while True:
            try:
                data = sock.recv(_MAX_DATAGRAM)
            except BlockingIOError:
                return
            except OSError:  # ICMP port unreachable from a stopped upstream
                continue
            if self._cut:
                self.dropped += 1
            elif self.delay > 0:
                self._hold(data, addr)
            else:
                self._reply(data, addr)

    def _hold(self, data: bytes, addr: Any) -> None:
        def fire() -> None:
            self._pending.discard(handle)
            self._reply(data, addr)

        handle = asyncio.get_running_loop().call_later(self.delay, fire)
        self._pending.add(handle)

    def _reply(self, data: bytes, addr: Any) -> None:
        if self._transport is None:
            return
        if self._cut:  # cut while the reply was held back
            self.dropped += 1
            return
        self._transport.sendto(data, addr)
        self.forwarded += 1


class LinkSet(Mapping[str, UdpLink]):
    """One :class:`UdpLink` per simulated device, keyed by device id.

    Usage::

        async with LinkSet() as links:
            await links.start({"cam-1": (0, ("127.0.0.1", sim.port))})
            links.cut(["cam-1"])   # cam-1 stops answering
            links["cam-1"].port    # where to poll it
    """

    def __init__(self) -> None:
        self._links: dict[str, UdpLink] = {}

    def __getitem__(self, device_id: str) -> UdpLink:
        return self._links[device_id]

    def __iter__(self) -> Iterator[str]:
        return iter(self._links)

    def __len__(self) -> int:
        return len(self._links)

    async def start(self, devices: Mapping[str, tuple[int, Address]]) -> None:
        """Open a link per device: device id -> (listen port or 0, upstream).

        May be called again to add devices. If any link fails to start, the
        ones opened by this call are closed again.

        Raises:
            ValueError: a device id already has a link, or an upstream is not
                on loopback.
            OSError: a listen port cannot be bound.
        """
        if clash := sorted(set(devices) & set(self._links)):
            raise ValueError(f"links already exist for {clash}")
        opened: dict[str, UdpLink] = {}
        try:
            for device_id, (listen_port, upstream) in devices.items():
                link = UdpLink(upstream, listen_port=listen_port)
                await link.start()
                opened[device_id] = link
        except BaseException:
            for link in opened.values():
                await link.close()
            raise
        self._links.update(opened)

    def cut(self, ids: str | Iterable[str] | None = None) -> None:
        """Cut the links of ``ids`` (one id, several, or all when ``None``).

        Raises:
            KeyError: an unknown id (no link is cut then).
        """
        for link in self._select(ids):
            link.cut()

    def restore(self, ids: str | Iterable[str] | None = None) -> None:
        """Restore the links of ``ids`` (one id, several, or all when ``None``).

        Raises:
            KeyError: an unknown id (no link is restored then).
        """
        for link in self._select(ids):
            link.restore()

    async def close(self) -> None:
        """Close every link."""
        links, self._links = self._links, {}
        for link in links.values():
            await link.close()

    async def __aenter__(self) -> LinkSet:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def _select(self, ids: str | Iterable[str] | None) -> list[UdpLink]:
        if ids is None:
            return list(self._links.values())
        if isinstance(ids, str):
            ids = [ids]
        return [self._links[i] for i in ids]
