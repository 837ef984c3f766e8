"""Reading the MQTT session's socket in large chunks.

paho reads a packet with three ``recv`` calls (its type, its length, its body)
and aiomqtt's reader takes one packet per wake of the event loop, so a burst
of QoS 1 telemetry costs an epoll wake, three system calls and a PUBACK write
registration per message.  Behind :class:`BufferedSocket`, one ``recv`` takes
what the kernel holds (up to 64 KiB); aiomqtt's reader drains it while
``pending()`` says bytes are left (the hook it keeps for TLS sockets), so a
wake handles every whole packet that arrived and their PUBACKs are written
together.  Nothing is lost or reordered: paho still asks for every byte, in its
own order, and gets the bytes the socket would have given it.
"""

from __future__ import annotations

from typing import Any

import aiomqtt

__all__ = ["BufferedSocket", "read_in_chunks"]

CHUNK = 65536  # bytes asked of the kernel at once


class BufferedSocket:
    """A socket whose ``recv`` serves from a buffer filled ``CHUNK`` bytes at a time.

    Args:
        sock: the connected socket (plain or TLS) paho made.

    ``recv`` raises what the socket raises when the buffer is empty (BlockingIOError
    when nothing is there, ssl.SSLWantReadError); ``b""`` means the peer closed.
    Everything else is the socket's own.
    """

    def __init__(self, sock: Any) -> None:
        self._sock = sock
        self._buffer = b""
        self._pos = 0

    def recv(self, size: int) -> bytes:
        """Up to ``size`` bytes: from the buffer, or one read of the socket."""
        if self._pos >= len(self._buffer):
            data: bytes = self._sock.recv(max(size, CHUNK))
            if len(data) <= size:
                return data
            self._buffer, self._pos = data, 0
        start = self._pos
        self._pos = min(start + size, len(self._buffer))
        return self._buffer[start:self._pos]

    def pending(self) -> int:
        """Bytes read but not yet taken (and, for TLS, decrypted bytes the socket holds)."""
        inner = self._sock.pending() if hasattr(self._sock, "pending") else 0
        return len(self._buffer) - self._pos + int(inner)

    def send(self, data: bytes | bytearray) -> int:
        return int(self._sock.send(data))

    def close(self) -> None:
        self._sock.close()

    def fileno(self) -> int:
        return int(self._sock.fileno())

    def setblocking(self, flag: bool) -> None:
        self._sock.setblocking(flag)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


def read_in_chunks(client: aiomqtt.Client) -> aiomqtt.Client:
    """Make ``client`` (not yet connected) read its socket through :class:`BufferedSocket`.

    Returns ``client``.  Reaches into paho through aiomqtt's ``_client`` (the way
    aiomqtt's own documentation sets paho-level options) and wraps the socket paho
    creates on each connect.
    """
    paho = client._client
    create = paho._create_socket

    def buffered() -> Any:
        return BufferedSocket(create())

    paho._create_socket = buffered  # type: ignore[method-assign]
    return client
