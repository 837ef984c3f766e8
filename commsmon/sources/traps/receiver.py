"""The trap and inform receiver: pysnmp 7's notification receiver on the event loop.

pysnmp facts this module is built around (7.1, read from its source and tried
against net-snmp's ``snmptrap``/``snmpinform``):

- ``ntfrcv.NotificationReceiver(engine, cb)`` takes v1 traps (converted to the
  v2 form, RFC 3584: snmpTrapOID.0 from enterprise and specific-trap,
  snmpTrapAddress.0 from agent-addr), v2c traps and informs, v3 traps and
  informs; informs are answered by pysnmp itself. The callback gets the
  varbinds; the UDP source and the security model come from the execution
  context ``rfc3412.receiveMessage:request``, a v3 sender's engine ID from the
  execution point ``rfc3414.processIncomingMsg`` (net-snmp's traps do
  not carry it as contextEngineID).
- A v3 trap authenticates only if its sender's engine ID was configured with the
  user (``add_v3_user(..., securityEngineId=...)``); an inform is sent to our
  engine ID (discovered by the sender), so the user is also added without one.
- A wrong community or key is dropped inside pysnmp; the execution points
  ``rfc2576.prepareDataElements:sm-failure`` and
  ``rfc3412.prepareDataElements:sm-failure`` say so, and are counted.

What commsmon adds: an allow-list and a per-source token bucket in front of
the decoder (a storm costs a counter, not a decode), its own reading of v1 and
v2c traps (:mod:`~commsmon.sources.traps.decode`: pysnmp costs a millisecond
of CPU each; informs and SNMPv3 still go through it), a bounded queue between
the decoder and the effects, matching to a device
(:mod:`~commsmon.sources.traps.senders`), the profile's meaning of the trap,
a 5-second dedup of identical traps (UPS-MIB repeats), and a confirming poll.
A trap only raises; clearing is left to that poll. Our engine ID and boot
counter live in the state directory (``traps-engine.json``), boots raised at
every start. pysnmp itself is behind :mod:`~commsmon.sources.traps.engine`,
imported once a listen address is set.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import ipaddress
import json
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from commsmon.aio import run_until
from commsmon.config.profiles import ReadingSpec, TrapSpec
from commsmon.config.traps import TrapsSpec
from commsmon.core.types import Observation, Reading
from commsmon.log import LogOnce
from commsmon.selfmetrics import TRAPS_DROPPED, TRAPS_LISTENING, TRAPS_RECEIVED
from commsmon.sources.base import Source
from commsmon.sources.convert import DecodeError, decode_varbind
from commsmon.sources.snmp.base import SnmpValue
from commsmon.sources.traps.decode import read_trap
from commsmon.sources.traps.senders import Sender

if TYPE_CHECKING:
    from commsmon.config.compile import Setup
    from commsmon.sources.traps.engine import Engine

__all__ = ["SNMP_TRAP_ADDRESS", "SNMP_TRAP_OID", "TrapReceiver"]

log = structlog.get_logger("commsmon.traps")

SNMP_TRAP_OID = "1.3.6.1.6.3.1.1.4.1.0"  # SNMPv2-MIB snmpTrapOID.0
SNMP_TRAP_ADDRESS = "1.3.6.1.6.3.18.1.3.0"  # SNMP-COMMUNITY-MIB snmpTrapAddress.0
SYS_UPTIME = "1.3.6.1.2.1.1.3.0"
DEDUP_SECONDS = 5.0  # RFC 1628 §3.4: a UPS repeats its traps; identical ones within 5 s are one
RECEIVE_BUFFER = 4 << 20  # bytes of socket receive buffer asked for
BURST = 5.0  # a source's token bucket holds this many seconds of its rate
RETRY_BIND = 30.0  # seconds between attempts to bind a listen address that failed
UNKNOWN_KEPT = 100  # unknown trap OIDs remembered for the API
RECENT_KEPT = 500  # traps remembered for the console's village pages
DRAIN_BATCH = 100  # traps applied per turn of the event loop
#: Notifications that say power or the uplink is lost, or an agent restarted: they
#: skip the rate limit and are applied before the rest (v2 OIDs; a v1 trap's
#: enterprise.0.specific form too).
PRIORITY = frozenset({
    "1.3.6.1.2.1.33.2.1", "1.3.6.1.2.1.33.2.0.1",  # UPS-MIB upsTrapOnBattery
    "1.3.6.1.6.3.1.1.5.1", "1.3.6.1.6.3.1.1.5.3",  # SNMPv2-MIB coldStart, IF-MIB linkDown
})
_PRIORITY_BYTES = tuple(  # their BER content octets, looked for in a raw datagram
    bytes([0x06, len(body)]) + body for body in (
        bytes.fromhex("2b0601020121" "0201"), bytes.fromhex("2b0601020121" "02"),
        bytes.fromhex("2b060106030101" "0501"), bytes.fromhex("2b060106030101" "0503")))


_MISSING = object()


@dataclass(frozen=True, slots=True)
class _Effect:
    """What one trap OID from one device means (``spec`` ``None``: its profile does not
    know it), worked out once."""

    device: str
    spec: TrapSpec | None
    varbinds: tuple[tuple[str, str, ReadingSpec], ...]
    counter: Any


@dataclass(frozen=True, slots=True)
class Trap:
    """One decoded notification, as queued for its effects."""

    source: str
    engine_id: bytes | None
    oid: str
    values: dict[str, SnmpValue]


class _Bucket:
    """A token bucket: ``rate`` per second, holding at most ``burst`` tokens."""

    __slots__ = ("at", "burst", "rate", "tokens")

    def __init__(self, rate: float, burst: float, now: float) -> None:
        self.rate, self.burst, self.tokens, self.at = rate, burst, burst, now

    def take(self, now: float) -> bool:
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens < 1.0:
            return False
        self.tokens -= 1.0
        return True


class TrapReceiver(Source):
    """Listens for traps and informs as ``setup.settings.traps`` says (off without
    ``listen``) and hands what they mean to ``sink``.

    Args:
        setup: the setup to start with.
        sink: where observations go.
        poll_now: asks the poller for a confirming poll of a device, saying whether
            its agent restarted (:meth:`SnmpPoller.poll_now`).
        state_dir: where the engine ID and boot counter are kept.
        clock: wall clock, epoch seconds.
        listening: told ``True`` once the addresses are bound, ``False`` when they
            are not (the trap path check judges only while it listens).
    """

    name = "traps"

    def __init__(self, setup: Setup, sink: Callable[[Observation], None],
                 poll_now: Callable[[str, bool], object], state_dir: Path,
                 clock: Callable[[], float] = time.time,
                 listening: Callable[[bool], object] = lambda _: None) -> None:
        self._setup, self._sink, self._poll_now = setup, sink, poll_now
        self._listening = listening
        self._state_dir, self._clock = state_dir, clock
        self._restart = asyncio.Event()
        # Two lanes: what says power or the uplink is lost goes before the rest, and
        # is never rate-limited (the gate lets it through on its OID, PRIORITY).
        self._lanes: tuple[collections.deque[Trap], collections.deque[Trap]] = (
            collections.deque(), collections.deque())
        self._draining = False  # a _drain is scheduled
        self._seen: collections.OrderedDict[tuple[str, str, tuple[tuple[str, Any], ...]],
                                            float] = collections.OrderedDict()
        self._once = LogOnce()
        self.unknown: collections.deque[tuple[float, str, str]] = collections.deque(
            maxlen=UNKNOWN_KEPT)
        #: the latest traps applied: (epoch seconds, device, the profile's name for it,
        #: or the OID for one its profile does not know), oldest first.
        self.recent: collections.deque[tuple[float, str, str]] = collections.deque(
            maxlen=RECENT_KEPT)
        self.listening: list[tuple[str, int]] = []
        self.engine_id: bytes = b""
        self._sender_engine: bytes | None = None
        self._communities: frozenset[bytes] = frozenset()
        self._repeating: dict[tuple[str, str], float] = {}  # (device, trap) -> overdue at
        # The gate as the listening engine was built: the spec's allow-list and rate,
        # and a token bucket per source, shared by every listen address (the rate is
        # per source, however many of our addresses it sends to).
        self._gate = TrapsSpec()
        self._buckets: collections.OrderedDict[str, _Bucket] = collections.OrderedDict()
        self._counters: dict[tuple[str, str, str], Any] = {}
        self._effects: dict[tuple[str, str], _Effect | None] = {}

    async def run(self) -> None:
        """Listen until cancelled, starting over when :meth:`reconfigure` asks."""
        while True:
            spec = self._setup.settings.traps
            await run_until(self._serve(spec) if spec.listen else None, self._restart)

    async def reconfigure(self, setup: Setup) -> bool:
        """Start over if the ``traps`` section changed; senders apply in place."""
        old, self._setup = self._setup, setup
        self._effects.clear()  # profiles, params or devices may have changed
        if setup.settings.traps == old.settings.traps:
            return False
        self._restart.set()
        return True

    async def _serve(self, spec: TrapsSpec) -> None:
        """Listen while the addresses can be bound; a bind that fails (port 162 without
        CAP_NET_BIND_SERVICE, an address in use) is logged with a hint and retried
        every RETRY_BIND seconds: monitoring goes on without traps meanwhile."""
        from commsmon.sources.traps import engine as pysnmp_side  # only when listening

        while True:
            built = self._engine(spec)
            problem = await _bound(built)
            if problem is None:
                break
            built.close()
            self._set_listening(False)
            if self._once.first("bind", problem):
                log.error("cannot listen for snmp traps; retrying", problem=problem,
                          listen=spec.listen, hint="port 162 needs CAP_NET_BIND_SERVICE "
                          "(deploy/systemd/commsmon.service); or the address is in use")
            await asyncio.sleep(RETRY_BIND)
        self._once.clear("bind")
        self._set_listening(True)
        try:
            for shared, devices in self._setup.senders.shared().items():
                log.warning("several devices send traps from one address: their traps "
                            "need snmpTrapAddress.0 or an engine ID", address=shared,
                            devices=list(devices))
            pysnmp_side.receive(built.engine, self._received)
            await asyncio.sleep(0)  # the endpoints open
            log.info("listening for snmp traps", listen=self.listening,
                     engine_id=self.engine_id.hex())
            while True:  # traps are applied by _drain; overdue repeats looked for each second
                await asyncio.sleep(1.0)
                self.overdue(time.monotonic())
        finally:
            self._set_listening(False)
            built.close()
            self._buckets.clear()

    def _set_listening(self, listening: bool) -> None:
        TRAPS_LISTENING.set(1 if listening else 0)
        self._listening(listening)

    def _engine(self, spec: TrapsSpec) -> Engine:
        """A pysnmp engine with our persisted engine ID and boots, its transports,
        communities and users."""
        from commsmon.sources.traps import engine as pysnmp_side

        self._communities = frozenset(c.get_secret_value().encode() for c in spec.communities)
        self._gate = spec
        self._buckets.clear()
        self.engine_id, boots = _engine_identity(self._state_dir / "traps-engine.json")
        built = pysnmp_side.build(spec, self.engine_id, boots, _listen_socket, self._admit,
                                  self._fast, self._drain, self._refused, self._authoritative)
        self.listening = built.listening
        return built

    def _authoritative(self, engine: Any, point: str, context: dict[str, Any],
                       cb_ctx: Any) -> None:
        """pysnmp observer: the msgAuthoritativeEngineID of the v3 message being
        decoded (a trap's sender; the contextEngineID need not be it). The callback
        below runs within the same datagram's processing, so the last one is its own."""
        engine_id = context.get("securityEngineId")
        self._sender_engine = bytes(engine_id) if engine_id else None

    def _refused(self, engine: Any, point: str, context: dict[str, Any], cb_ctx: Any) -> None:
        """pysnmp observer: a notification its security model refused."""
        if point.startswith("rfc2576"):
            TRAPS_DROPPED.labels("bad_community").inc()
            return
        if int(context.get("securityLevel") or 1) == 1:
            return  # an inform sender discovering our engine ID: that is the protocol
        status = context.get("statusInformation") or {}
        # A v3 trap from an engine ID no user is configured with finds no user for
        # it: pysnmp says unknown security name, as for an unknown user name.
        from commsmon.sources.traps.engine import unknown_sender

        unknown = unknown_sender(status.get("errorIndication"))
        TRAPS_DROPPED.labels("v3_unknown_engine" if unknown else "v3_auth").inc()

    def _received(self, engine: Any, state_reference: Any, context_engine_id: Any,
                  context_name: Any, var_binds: Any, cb_ctx: Any) -> None:
        """pysnmp callback: one authenticated notification, decoded; queued."""
        context = engine.observer.get_execution_context("rfc3412.receiveMessage:request")
        source = str(context["transportAddress"][0])
        v3 = int(context["securityModel"]) == 3
        from commsmon.sources.traps.engine import values as read_values

        try:
            values = read_values(var_binds)
        except Exception:  # a value pysnmp decoded but we cannot type
            TRAPS_DROPPED.labels("malformed").inc()
            return
        oid = values.get(SNMP_TRAP_OID)
        if oid is None or not isinstance(oid.value, str):
            TRAPS_DROPPED.labels("malformed").inc()
            return
        trap = Trap(source, self._sender_engine if v3 else None, oid.value, values)
        self._enqueue(trap)

    def _admit(self, datagram: bytes, source: str) -> bool:
        """The gate in front of any decoding: the allow-list, then the source's token
        bucket, which a PRIORITY notification passes even when empty (both as the
        listening engine was built: a reload applies them when it starts over)."""
        spec = self._gate
        if spec.allow and not any(ipaddress.ip_address(source) in net for net in spec.allow):
            TRAPS_DROPPED.labels("unknown_source").inc()
            return False
        now = time.monotonic()
        bucket = self._buckets.get(source)
        if bucket is None:
            bucket = self._buckets[source] = _Bucket(spec.rate, spec.rate * BURST, now)
            if len(self._buckets) > 10_000:  # a spoofed storm must not grow this
                self._buckets.popitem(last=False)
        if not bucket.take(now) and not _urgent(datagram):
            TRAPS_DROPPED.labels("rate_limited").inc()
            return False
        return True

    def _fast(self, datagram: bytes, source: str) -> bool:
        """A v1 or v2c trap read without pysnmp (:mod:`.decode`); ``False`` for what
        pysnmp must handle (informs, SNMPv3)."""
        try:
            raw = read_trap(datagram)
        except ValueError:
            TRAPS_DROPPED.labels("malformed").inc()
            return True
        if raw is None:
            return False
        if raw.community not in self._communities:
            TRAPS_DROPPED.labels("bad_community").inc()
            return True
        self._enqueue(Trap(source, None, raw.oid, raw.values), soon=False)  # the read flushes
        return True

    def _enqueue(self, trap: Trap, soon: bool = True) -> None:
        """Queue ``trap`` in its lane; ``soon``: schedule the drain (pysnmp's callbacks
        come outside a read, whose end drains)."""
        lane = self._lanes[0] if trap.oid in PRIORITY else self._lanes[1]
        if len(lane) >= self._setup.settings.traps.queue_size:
            TRAPS_DROPPED.labels("queue_full").inc()
            return
        lane.append(trap)
        if soon and not self._draining:  # one drain per burst, not a wake-up per trap
            self._draining = True
            asyncio.get_running_loop().call_soon(self._drain)

    def _drain(self) -> None:
        """Apply what is queued, the urgent lane first, at most DRAIN_BATCH before
        letting the loop run other work (a storm's applying never holds it)."""
        try:
            for _ in range(DRAIN_BATCH):
                lane = self._lanes[0] or self._lanes[1]
                if not lane:
                    return
                self._apply(lane.popleft())
        finally:
            if self._lanes[0] or self._lanes[1]:
                asyncio.get_running_loop().call_soon(self._drain)
            else:
                self._draining = False

    def _apply(self, trap: Trap) -> None:
        """Match the trap to its device and apply what its profile says it means."""
        address = trap.values.get(SNMP_TRAP_ADDRESS)
        match = self._setup.senders.match(
            trap.engine_id, str(address.value) if address is not None else None, trap.source)
        if match.sender is None:
            TRAPS_DROPPED.labels("unknown_source").inc()
            if self._once.first(("sender", trap.source), match.ambiguous):
                log.warning("snmp trap from no single known device", source=trap.source,
                            trap=trap.oid, rule=match.rule, devices=list(match.ambiguous))
            return
        effect = self._effect(match.sender, trap.oid)
        if effect is None:  # a device no longer in the inventory
            return
        if effect.spec is None:
            effect.counter.inc()
            self.unknown.append((self._clock(), effect.device, trap.oid))
            self.recent.append((self._clock(), effect.device, trap.oid))
            # Unknown to its profile, yet it came: the site's trap path works.
            self._sink(Observation(effect.device, self._clock(), True, unconfirmed=True))
            return
        spec = effect.spec
        key = (effect.device, trap.oid, tuple(  # in wire order: a repeat keeps its order
            (oid, value.value) for oid, value in trap.values.items() if oid != SYS_UPTIME))
        now = time.monotonic()
        seen = self._seen
        while seen and now - next(iter(seen.values())) >= DEDUP_SECONDS:
            seen.popitem(last=False)  # oldest first: insertion order is time order
        if key in seen:
            return
        seen[key] = now
        effect.counter.inc()
        self.recent.append((self._clock(), effect.device, spec.name))
        readings: dict[str, Reading] = dict(spec.set)
        for name, oid, reading in effect.varbinds:
            value = trap.values.get(oid)
            if value is None:
                continue
            try:
                decoded = decode_varbind(reading, value)
            except DecodeError:
                continue
            if decoded is not None:
                readings[name] = decoded
        for ended in spec.ends:
            self._repeating.pop((effect.device, ended), None)
        if spec.repeats:
            self._repeating[(effect.device, spec.name)] = now + 2 * spec.repeats
        # Unconfirmed: its readings count now, until the poll reads them; it is never a
        # device state. Without readings it still says the site's trap path works.
        self._sink(Observation(effect.device, self._clock(), True, readings, unconfirmed=True))
        if spec.poll or spec.restart:
            self._poll_now(effect.device, spec.restart)

    def _effect(self, sender: Sender, oid: str) -> _Effect | None:
        """What ``oid`` from ``sender`` means, worked out once per setup: its profile's
        spec, the varbind OIDs with the device's params filled in, its counter."""
        key = (sender.device, oid)
        found = self._effects.get(key, _MISSING)
        if found is not _MISSING:
            return found  # type: ignore[return-value]
        site = self._setup.site_of.get(sender.device)
        profile = self._setup.settings.profiles.get(sender.profile)
        effect = None
        if site is not None:
            spec = profile.traps.get(oid) if profile else None
            varbinds = []
            for name, reading in (spec.varbinds.items() if spec else ()):
                with contextlib.suppress(KeyError, IndexError):  # a param it lacks: never
                    varbinds.append((name, (reading.oid or "").format(**sender.params),
                                     reading))
            counter = self._received_counter(site, sender.device,
                                             spec.name if spec else "other")
            effect = _Effect(sender.device, spec, tuple(varbinds), counter)
        if len(self._effects) > 100_000:  # distinct OIDs from every device: keep it bounded
            self._effects.clear()
        self._effects[key] = effect
        return effect

    def _received_counter(self, site: str, device: str, trap: str) -> Any:
        """commsmon_traps_received_total's child for these labels (kept: a storm would
        otherwise look it up each time)."""
        key = (site, device, trap)
        child = self._counters.get(key)
        if child is None:
            child = self._counters[key] = TRAPS_RECEIVED.labels(site, device, trap)
        return child

    def overdue(self, now: float) -> list[str]:
        """Devices whose repeating trap (the UPS on battery) stopped for twice its period
        without a trap that ends it: each gets a poll, which says what is true now
        (back on mains, or dead). ``now`` is monotonic seconds."""
        late = [key for key, at in self._repeating.items() if at <= now]
        for key in late:
            del self._repeating[key]
            log.info("repeating snmp trap stopped; polling", device=key[0], trap=key[1])
            self._poll_now(key[0], False)
        return [device for device, _ in late]


async def _bound(built: Engine) -> str | None:
    """Wait for the engine's endpoints to open; why one did not, else ``None``.
    (pysnmp opens them in futures of its own that nobody awaits.)"""
    if built.problem is not None:
        return built.problem
    for transport in built.transports:
        try:
            await transport._lport
        except OSError as exc:
            return f"{exc.strerror or exc}"
    return None


def _listen_socket(host: str, port: int) -> socket.socket:
    """A bound, non-blocking UDP socket asking for a RECEIVE_BUFFER-byte receive buffer
    (a storm outruns the default 208 KiB in milliseconds; the kernel caps the request
    at net.core.rmem_max: README, "Traps").

    Raises:
        OSError: the address cannot be bound (in use, port 162 without the capability).
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
        sock.bind((host, port))
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


def _urgent(datagram: bytes) -> bool:
    """Whether a datagram names a PRIORITY notification (by the OID's encoding: a v1 or
    v2c trap in the clear; an encrypted v3 one cannot say, and waits its turn)."""
    return any(oid in datagram for oid in _PRIORITY_BYTES)


def _engine_identity(path: Path) -> tuple[bytes, int]:
    """Our snmpEngineID and this start's snmpEngineBoots, kept in ``path``: the ID is made
    once (RFC 3411 format 5: enterprise 0, eight random octets), boots rise by one at
    every start so that informs' senders keep their time window right (RFC 3414 §2.2).
    A file that cannot be written keeps the ID for this run only (logged)."""
    try:
        kept = json.loads(path.read_text())
        engine_id, boots = bytes.fromhex(kept["engine_id"]), int(kept["boots"]) + 1
    except (OSError, ValueError, KeyError, TypeError):
        engine_id, boots = b"\x80\x00\x00\x00\x05" + os.urandom(8), 1
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps({"engine_id": engine_id.hex(), "boots": boots}))
        temporary.replace(path)
    except OSError as exc:
        log.error("snmp engine identity not kept: informs' senders may see old boots",
                  path=str(path), error=str(exc))
    return engine_id, boots
