"""This server's part in an HA pair: a lease in etcd says which replica sends.

Both replicas of a shard poll, evaluate and push to Alertmanager (an
Alertmanager cluster dedups those).  Receivers that cannot dedup — robots,
webhooks, the escalation steps — are sent to by one replica only, the holder
of the key ``<key>/<shard>/leader``, written under a lease of ``ha.lease``
seconds that the holder refreshes every third of it.  The other holds its own
notifications and drops each one the leader records as told
(``<key>/<shard>/told/<receiver>/<group>``; :mod:`commsmon.core.handover`).

Why etcd, not a lease on the MQTT broker: etcd's transaction makes taking the
key atomic and its lease ends on etcd's clock when refreshes stop; a retained
message with a Last Will has neither compare-and-set nor a server-side expiry
on MQTT 3.1.1, so two replicas could both believe they lead.

Failure modes (README "A pair of servers"):

- the leader dies: its lease lapses within ``lease`` seconds; the standby,
  which tries every third of it, leads within two leases and sends what the
  leader had not told;
- a replica cannot reach etcd: a leader stops sending two thirds of a lease
  after its last refresh (before etcd lets the lease go); after
  ``alone_after`` seconds without etcd a replica sends everything itself
  (``alone``): with etcd down both do, and receivers may hear things twice
  rather than not at all;
- the two replicas cannot reach each other but both reach etcd: nothing
  changes, one leads.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

import structlog

from commsmon.config.services import HaSpec
from commsmon.core.handover import Told
from commsmon.log import LogOnce
from commsmon.selfmetrics import HA_ROLE

if TYPE_CHECKING:
    import aetcd

__all__ = ["ROLES", "Replica", "Role"]

log = structlog.get_logger("commsmon.ha")

Role = Literal["single", "leader", "standby", "alone"]
ROLES: tuple[Role, ...] = ("single", "leader", "standby", "alone")

_TIMEOUT = 2  # seconds per etcd request


def _etcd() -> Any:
    """The etcd client, loaded by a replica of an HA pair only: with gRPC under it, it
    costs a single server about 40 MiB it would never use."""
    import aetcd

    return aetcd


class Replica:
    """Holds or waits for the pair's lease and keeps :attr:`role` up to date.

    Args:
        spec: the ``ha`` section; ``None`` for a single server (role ``single``).
        shard: the shard index (each shard's pair has its own lease).
        on_change: told the new role, on the event loop.
        clock: monotonic seconds.
    """

    def __init__(self, spec: HaSpec | None, shard: int,
                 on_change: Callable[[Role], None] = lambda role: None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.spec = spec
        self._on_change, self._clock = on_change, clock
        prefix = f"{spec.key.rstrip('/')}/{shard}" if spec else ""
        self._leader_key = f"{prefix}/leader".encode()
        self._told_prefix = f"{prefix}/told/".encode()
        self._lease: int | None = None  # our lease's id (it outlives a reconnection)
        self._client: aetcd.Client | None = None
        self._contact = clock()  # the last answer from etcd
        self._refreshed = -float("inf")  # the last refresh of our lease
        self._once = LogOnce()
        self.role: Role = "standby"
        self._published = False
        self.holder = ""  # the leader's replica name, as last read
        self._set("single" if spec is None else "standby")

    def sends_all(self) -> bool:
        """Whether this replica sends to receivers that cannot dedup: not as standby,
        nor as a leader whose last refresh is two thirds of a lease old (etcd may let
        the lease go soon and the standby take over)."""
        if self.role == "leader" and self.spec is not None:
            return self._clock() - self._refreshed < self.spec.lease * 2 / 3
        return self.role != "standby"

    async def run(self) -> None:
        """Take part until cancelled; then let the lease go, so the peer leads at once."""
        if self.spec is None:
            return
        try:
            while True:
                await self._turn()
                await asyncio.sleep(self.spec.lease / 3)
        finally:
            await asyncio.shield(self._let_go())

    async def told(self) -> dict[tuple[str, str], Told]:
        """What the leader recorded as told, by (receiver, group); ``{}`` when etcd
        cannot say (nothing is then dropped)."""
        client = self._client
        if client is None:
            return {}
        try:
            found: dict[tuple[str, str], Told] = {}
            for item in await client.get_prefix(self._told_prefix):
                receiver, _, group = item.key[len(self._told_prefix):].decode().partition("/")
                doc = json.loads(item.value)
                found[(receiver, group)] = Told(str(doc["signature"]), float(doc["begun"]),
                                                float(doc["at"]))
            self._once.clear("told")
            return found
        except (_etcd().ClientError, OSError, TimeoutError, ValueError, KeyError) as exc:
            if self._once.first("told", repr(exc)):
                log.warning("cannot read what the leader told; holding", error=repr(exc))
            return {}

    async def tell(self, receiver: str, group: str, told: Told) -> None:
        """Record that this replica, leading, told ``receiver`` about ``group``."""
        client = self._client
        if client is None or self.spec is None:
            return
        value = json.dumps({"signature": told.signature, "begun": told.begun, "at": told.at,
                            "by": self.spec.replica})
        try:
            await client.put(self._told_prefix + f"{receiver}/{group}".encode(), value.encode())
        except (_etcd().ClientError, OSError, TimeoutError) as exc:
            # the standby may then send it again on takeover: twice, not never
            log.warning("could not record a delivery for the standby", receiver=receiver,
                        group=group, error=repr(exc))

    async def _turn(self) -> None:
        assert self.spec is not None
        try:
            client = await self._connect()
            if self._lease is not None:
                reply = await client.refresh_lease(self._lease)
                if reply is None or reply.TTL <= 0:  # lapsed while we could not refresh it
                    self._lease = None
            if self._lease is None:
                self._lease = (await client.lease(self.spec.lease)).id
            self._refreshed = self._clock()
            tx = client.transactions
            took, answers = await client.transaction(
                compare=[tx.create(self._leader_key) == 0],
                success=[tx.put(self._leader_key, self.spec.replica.encode(),
                                lease=self._lease)],
                failure=[tx.get(self._leader_key)])
            self._contact = self._clock()
            self.holder = self.spec.replica if took else _holder(answers)
            if self._once.clear("etcd"):
                log.info("etcd answers again")
            self._set("leader" if self.holder == self.spec.replica else "standby")
        except (_etcd().ClientError, OSError, TimeoutError) as exc:
            if self._once.first("etcd", repr(exc)):
                log.warning("etcd does not answer", endpoints=self.spec.etcd, error=repr(exc))
            await self._drop_client()
            self._judge_without_etcd()

    def _judge_without_etcd(self) -> None:
        assert self.spec is not None
        now = self._clock()
        if self.role == "leader" and now - self._refreshed >= self.spec.lease * 2 / 3:
            self._set("standby")  # etcd will let our lease go: stop before it does
        if now - self._contact >= self.spec.alone_seconds():
            self._set("alone")

    async def _connect(self) -> aetcd.Client:
        if self._client is not None:
            return self._client
        assert self.spec is not None
        problems = []
        for endpoint in self.spec.etcd:
            host, _, port = endpoint.rpartition(":")
            client = _etcd().Client(host, int(port), timeout=_TIMEOUT)
            try:
                await asyncio.wait_for(client.connect(), _TIMEOUT)
                await asyncio.wait_for(client.status(), _TIMEOUT)
            except (_etcd().ClientError, OSError, TimeoutError) as exc:
                problems.append(f"{endpoint}: {exc!r}")
                await client.close()
                continue
            self._client = client
            return client
        raise OSError("; ".join(problems))

    async def _drop_client(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            # a broken channel may fail to close; it is dropped anyway
            with contextlib.suppress(Exception):
                await client.close()

    async def _let_go(self) -> None:
        lease, self._lease = self._lease, None
        try:
            if lease is not None and self._client is not None:
                await asyncio.wait_for(self._client.revoke_lease(lease), _TIMEOUT)
                log.info("HA lease released", replica=self.spec.replica if self.spec else "")
        except (_etcd().ClientError, OSError, TimeoutError):
            pass
        finally:
            await self._drop_client()

    def _set(self, role: Role) -> None:
        if role == self.role and self._published:
            return
        was = self.role if self._published else None
        self.role, self._published = role, True
        for name in ROLES:
            HA_ROLE.labels(role=name).set(int(name == role))
        if self.spec is not None:
            log.warning("HA role", role=role, was=was, replica=self.spec.replica,
                        leader=self.holder or None)
        self._on_change(role)


def _holder(answers: Any) -> str:
    """The leader's name from a failed transaction's get: ``[[(value, meta)]]`` (aetcd
    1.0); ``""`` if the key is gone."""
    for answer in answers or ():
        for value, _ in answer or ():
            return bytes(value).decode(errors="replace")
    return ""
