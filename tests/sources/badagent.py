"""An SNMP v1/v2c agent that misbehaves on purpose, the way field agents do.

It answers GETs (v2c) for a few OIDs on 127.0.0.1 and, by :attr:`BadAgent.mode`:

- ``good``: as an agent should.
- ``other_source``: from its second socket on 127.0.0.2 (a VRRP pair, a router
  answering from another interface: telegraf#11278).
- ``duplicate``: every reply twice.
- ``late``: every reply :attr:`BadAgent.delay` seconds late (an agent always a
  little slower than the timeout).
- ``truncated``: with the request-id cut to 16 bits.
- ``empty``: a zero-length datagram.
- ``no_varbinds``: a Response with error-status 0 and no varbinds.

Built on pysnmp's message API (``pysnmp.proto.api``), not on its engine, so the
wire is whatever this file says.
"""

from __future__ import annotations

import asyncio
import socket
from types import TracebackType
from typing import Any, Literal, Self

from pyasn1.codec.ber import decoder, encoder
from pysnmp.proto import api, rfc1902, rfc1905

Mode = Literal["good", "other_source", "duplicate", "late", "truncated", "empty", "no_varbinds"]

SYS_NAME = "1.3.6.1.2.1.1.5.0"
SYS_LOCATION = "1.3.6.1.2.1.1.6.0"
OTHER_ADDRESS = "127.0.0.2"


class _Socket(asyncio.DatagramProtocol):
    def __init__(self, agent: BadAgent) -> None:
        self.agent = agent
        self.transport: Any = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.agent.answer(data, addr)


class BadAgent:
    """The agent; ``async with BadAgent() as agent`` binds it on ephemeral ports."""

    def __init__(self, mode: Mode = "good", delay: float = 0.45) -> None:
        self.mode: Mode = mode
        self.delay = delay
        self.values = {SYS_NAME: b"bad-agent", SYS_LOCATION: b"loopback"}
        self.request_ids: list[int] = []
        self._main = _Socket(self)
        self._other = _Socket(self)
        self.port = 0

    async def __aenter__(self) -> Self:
        loop = asyncio.get_running_loop()
        await loop.create_datagram_endpoint(lambda: self._main, local_addr=("127.0.0.1", 0))
        await loop.create_datagram_endpoint(lambda: self._other, local_addr=(OTHER_ADDRESS, 0))
        self.port = self._main.transport.get_extra_info("sockname")[1]
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        self._main.transport.close()
        self._other.transport.close()
        await asyncio.sleep(0)

    def answer(self, data: bytes, addr: tuple[str, int]) -> None:
        version = int(api.decodeMessageVersion(data))
        module = api.PROTOCOL_MODULES[version]
        request, _ = decoder.decode(data, asn1Spec=module.Message())
        pdu = module.apiMessage.get_pdu(request)
        request_id = int(module.apiPDU.get_request_id(pdu))
        self.request_ids.append(request_id)
        response = module.apiPDU.get_response(pdu)
        if self.mode == "truncated":
            module.apiPDU.set_request_id(response, request_id & 0xFFFF)
        if self.mode == "no_varbinds":
            module.apiPDU.set_varbinds(response, [])
        else:
            module.apiPDU.set_varbinds(response, [
                (oid, rfc1902.OctetString(self.values[str(oid)]) if str(oid) in self.values
                 else rfc1905.noSuchObject)
                for oid, _ in module.apiPDU.get_varbinds(pdu)
            ])
        message = module.Message()
        module.apiMessage.set_defaults(message)
        module.apiMessage.set_community(message, module.apiMessage.get_community(request))
        module.apiMessage.set_pdu(message, response)
        if self.mode == "empty":  # asyncio's sendto skips empty datagrams
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as raw:
                raw.bind(("127.0.0.1", 0))
                raw.sendto(b"", addr)
            return
        reply = encoder.encode(message)
        out = self._other if self.mode == "other_source" else self._main
        if self.mode == "late":
            asyncio.get_running_loop().call_later(self.delay, out.transport.sendto, reply, addr)
            return
        out.transport.sendto(reply, addr)
        if self.mode == "duplicate":
            out.transport.sendto(reply, addr)
