"""Polls every SNMP target on its own interval and emits observations.

One scheduler keeps every target's next slot: the first poll is spread
uniformly over one interval (no thundering herd), later ones keep the cadence
from that start (a late poll is not followed by a burst).  A global semaphore bounds requests
in flight; every request ends within its target's deadline, so a dead target
never delays the others.  A target that keeps failing is polled less often
(twice the interval after ``DEAD_AFTER`` failures in a row, doubling up to
``DEAD_MAX`` intervals) so a province of dead kit costs little; its first
answer restores the cadence.  How late each poll starts against its slot is
measured (``commsmon_snmp_poll_lateness_seconds``).  The poller knows OIDs and
profiles, not sites.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import structlog

from commsmon.aio import raise_if_cancel_swallowed
from commsmon.config.devices import SnmpUserSpec
from commsmon.config.profiles import ReadingSpec
from commsmon.config.settings import Config
from commsmon.core.shared import Shared
from commsmon.core.types import Failure, Observation, Reading
from commsmon.errors import (
    SnmpAuthError,
    SnmpError,
    SnmpProtocolError,
    SnmpTimeout,
    SnmpUnexpectedSource,
)
from commsmon.log import LogOnce
from commsmon.selfmetrics import READING_ERRORS, SNMP_DURATION, SNMP_LATENESS, SNMP_REQUESTS
from commsmon.sources.base import Source
from commsmon.sources.convert import DecodeError, decode_varbind, rate_reading, unsupported
from commsmon.sources.counters import CounterRates, CounterSample
from commsmon.sources.snmp.base import SnmpClient, SnmpTarget, SnmpValue, UsmUser

if TYPE_CHECKING:
    from commsmon.config.compile import Setup

__all__ = ["PollJob", "SnmpPoller", "jobs_from_config"]

log = structlog.get_logger("commsmon.snmp")

Sink = Callable[[Observation], None]

DEAD_AFTER = 6  # failures in a row before a target's polls are spaced out
DEAD_MAX = 8  # at most this many intervals between polls of a dead target
SYS_UPTIME = "1.3.6.1.2.1.1.3.0"  # SNMPv2-MIB sysUpTime.0, TimeTicks (1/100 s)


@dataclass(frozen=True, slots=True)
class PollJob:
    """One device to poll.

    Attributes:
        device: device id put on the observations.
        target: the agent and its timeout/retries.
        interval: seconds between polls.
        readings: reading name -> (concrete OID, spec).
        charset: the agent's text encoding where it is not UTF-8.
        counters: some readings are counters, so each poll also reads
            sysUpTime to time them on the agent's clock (derived from ``readings``).
    """

    device: str
    target: SnmpTarget
    interval: float
    readings: Mapping[str, tuple[str, ReadingSpec]]
    charset: str | None = None
    counters: bool = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        counters = any(spec.counter is not None for _, spec in self.readings.values())
        object.__setattr__(self, "counters", counters)


def jobs_from_config(config: Config) -> list[PollJob]:
    """A poll job for every SNMP device, with the profile's OIDs made concrete.

    ``{name}`` placeholders in a profile OID are filled from the device's
    ``params`` (``1.3.6.1.2.1.2.2.1.8.{uplink_ifindex}``).
    """
    jobs = []
    one = Shared()
    readings_of: dict[tuple[str, tuple[tuple[str, object], ...]],
                      Mapping[str, tuple[str, ReadingSpec]]] = {}
    for _, device in config.devices():
        if device.snmp is None or device.profile is None:
            continue
        snmp = device.snmp.resolve(config.defaults.snmp)
        # Devices of one profile with the same params share one readings map: a
        # province has thousands of each, and the daemon keeps every job.
        key = (device.profile, tuple(sorted(device.params.items())))
        readings = readings_of.get(key)
        if readings is None:
            profile = config.profiles[device.profile]
            readings = readings_of[key] = {
                name: (spec.oid.format(**device.params), spec)
                for name, spec in profile.readings.items()
                if spec.oid is not None
            }
        target = SnmpTarget(
            host=one(device.snmp.host),
            port=snmp.port,
            version=snmp.version,
            community=one(snmp.community.get_secret_value()),
            user=_usm_user(snmp.user) if snmp.version == "v3" else None,
            timeout=snmp.timeout,
            retries=snmp.retries,
            reply_from=one(frozenset(str(address) for address in device.snmp.reply_from)),
        )
        jobs.append(PollJob(device.id, target, snmp.interval, readings, device.snmp.charset))
    return jobs


def _usm_user(spec: SnmpUserSpec | None) -> UsmUser:
    assert spec is not None  # the configuration requires a user for v3
    auth, priv = spec.auth_password, spec.priv_password
    return UsmUser(
        spec.name,
        auth_protocol=spec.auth_protocol if auth else None,
        auth_password=auth.get_secret_value() if auth else "",
        priv_protocol=spec.priv_protocol if priv else None,
        priv_password=priv.get_secret_value() if priv else "",
    )


class _Schedule:
    """Where one job stands: its next slot and its failures in a row."""

    __slots__ = ("failures", "generation", "job")

    def __init__(self, job: PollJob, generation: int) -> None:
        self.job = job
        self.generation = generation  # heap entries of an older generation are stale
        self.failures = 0


class SnmpPoller(Source):
    """Runs the poll jobs until cancelled.

    One scheduler task keeps every job's next slot in a heap and starts a
    short-lived task per due poll: a province of 20 000 targets costs one
    waiting task, not 20 000 (about 16 MiB of sleeping tasks measured).

    Args:
        client: the SNMP backend.
        jobs: what to poll.
        sink: receives each observation, in the event loop.
        concurrency: most requests in flight at once.
        clock: wall clock, epoch seconds (injected for tests).
    """

    name = "snmp"

    def __init__(
        self,
        client: SnmpClient,
        jobs: Sequence[PollJob],
        sink: Sink,
        *,
        concurrency: int = 64,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._client = client
        self._jobs = {job.device: job for job in jobs}
        self._sink = sink
        self._slots = asyncio.Semaphore(concurrency)
        self._clock = clock
        self._once = LogOnce()
        self._rates = CounterRates()  # last sample of every counter reading
        self._engines: dict[bytes, str] = {}  # snmpEngineID -> the device that answered
        self._group: asyncio.TaskGroup | None = None
        self._urgent: set[str] = set()  # devices with a poll_now in flight
        self._schedules: dict[str, _Schedule] = {}
        self._heap: list[tuple[float, int, str]] = []  # (loop time, generation, device)
        self._generation = 0
        self._wake = asyncio.Event()
        self.last_poll = time.monotonic()  # when a poll last ended, for the watchdog

    def alive(self, now: float) -> bool:
        """Whether polls keep ending (the watchdog's proof that the poller works).

        Every poll ends by its deadline, answer or not, and a target is polled
        at least every ``DEAD_MAX`` intervals; so some poll must have ended
        within the smallest such bound over the jobs.
        """
        if not self._jobs:
            return True
        bound = min(j.interval * DEAD_MAX + j.target.deadline for j in self._jobs.values())
        return now - self.last_poll < bound

    async def run(self) -> None:
        """Poll every job forever; returns only by cancellation."""
        loop = asyncio.get_running_loop()
        async with asyncio.TaskGroup() as tg:
            self._group = tg
            for job in self._jobs.values():
                self._start(job, loop.time())
            while True:
                now = loop.time()
                while self._heap and self._heap[0][0] <= now:
                    at, generation, device = heapq.heappop(self._heap)
                    schedule = self._schedules.get(device)
                    if schedule is None or schedule.generation != generation:
                        continue  # removed or replaced by a reload
                    SNMP_LATENESS.observe(now - at)
                    tg.create_task(self._poll_due(schedule, at))
                self._wake.clear()
                delay = self._heap[0][0] - now if self._heap else None
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await self._wake.wait()

    def poll_now(self, device: str, restarted: bool = False) -> bool:
        """Poll ``device`` once now, beside its schedule (a trap asks for confirmation);
        its cadence stays. ``restarted``: its agent said it restarted (coldStart,
        warmStart), so its counters' baselines are dropped first and no rate spans
        the restart. ``False`` if it is not polled here, not running, or such a poll
        is already in flight."""
        if restarted:
            self._rates.forget(device)
        job = self._jobs.get(device)
        if job is None or self._group is None or device in self._urgent:
            return False
        self._urgent.add(device)
        task = self._group.create_task(self.poll(job))
        task.add_done_callback(lambda _: self._urgent.discard(device))
        return True

    async def reconfigure(self, setup: Setup) -> bool:
        """Poll the reloaded setup's jobs, in place: unchanged devices keep their
        cadence, counters and state (:meth:`replace`). Never restarts."""
        started, stopped = self.replace(setup.jobs)
        log.info("snmp jobs replaced", started=started, stopped=stopped, jobs=len(setup.jobs))
        return False

    def replace(self, jobs: Sequence[PollJob]) -> tuple[int, int]:
        """Poll ``jobs`` from now on (a reload); returns (started, stopped).

        A job that is unchanged keeps its cadence; a changed one restarts (its
        first poll spread over its interval again), a removed one stops.
        """
        new = {job.device: job for job in jobs}
        gone = [d for d, job in self._jobs.items() if new.get(d) != job]
        fresh = [job for d, job in new.items() if self._jobs.get(d) != job]
        for device in gone:
            self._schedules.pop(device, None)
            self._rates.forget(device)
        self._jobs = new
        if self._group is not None:
            now = asyncio.get_running_loop().time()
            for job in fresh:
                self._start(job, now)
        return len(fresh), len(gone)

    def _start(self, job: PollJob, now: float) -> None:
        """Schedule a job's first poll, spread uniformly over one interval."""
        self._generation += 1
        self._schedules[job.device] = _Schedule(job, self._generation)
        self._push(now + random.uniform(0, job.interval), self._generation, job.device)

    def _push(self, at: float, generation: int, device: str) -> None:
        heapq.heappush(self._heap, (at, generation, device))
        if self._heap[0][2] == device:
            self._wake.set()  # sooner than what the scheduler waits for

    async def _poll_due(self, schedule: _Schedule, slot: float) -> None:
        obs = await self.poll(schedule.job)
        raise_if_cancel_swallowed()  # gufo waits with wait_for
        job = schedule.job
        schedule.failures = 0 if obs.reachable else schedule.failures + 1
        step = job.interval
        if schedule.failures >= DEAD_AFTER:  # dead: back off, but keep looking
            step *= min(DEAD_MAX, 2 ** (schedule.failures - DEAD_AFTER + 1))
        next_at = slot + step
        now = asyncio.get_running_loop().time()
        if next_at < now:  # overran: skip missed slots, keep the phase
            next_at += ((now - next_at) // job.interval + 1) * job.interval
        if self._schedules.get(job.device) is schedule:  # not replaced meanwhile
            self._push(next_at, schedule.generation, job.device)

    async def poll(self, job: PollJob) -> Observation:
        """Poll one job once, emit and return its observation."""
        wanted = {oid for oid, _ in job.readings.values()}
        if job.counters:
            wanted.add(SYS_UPTIME)
        oids = sorted(wanted)
        async with self._slots:
            started = time.monotonic()
            try:
                values = await self._client.get(job.target, oids)
            except SnmpTimeout:
                obs = self._failed(job, "timeout", "no_answer", "")
            except SnmpUnexpectedSource as exc:
                obs = self._failed(job, "unexpected_source", "unexpected_source", exc.address)
            except SnmpProtocolError as exc:
                obs = self._failed(job, "protocol_error", "protocol_error", exc.detail)
            except SnmpAuthError as exc:  # our credentials: unmonitored, not down
                obs = self._failed(job, "auth_error", "auth_error",
                                   exc.status or "authenticationFailed")
            except SnmpError as exc:
                obs = self._failed(job, "error", "snmp_error", str(exc.status or exc))
            except Exception as exc:  # a backend's bug costs this poll, never the poller
                if self._once.first((job.device, "bug"), type(exc).__name__):
                    log.exception("snmp poll failed unexpectedly", device=job.device)
                obs = self._failed(job, "error", "snmp_error", type(exc).__name__)
            else:
                SNMP_REQUESTS.labels("ok").inc()
                if self._once.clear((job.device, "poll")):
                    log.info("snmp device answers again", device=job.device)
                readings, missing = self._decode(job, values)
                obs = Observation(job.device, self._clock(), True, readings, missing=missing)
                self._check_engine(job)
            finally:
                self.last_poll = time.monotonic()
                SNMP_DURATION.observe(self.last_poll - started)
        self._sink(obs)
        return obs

    def _check_engine(self, job: PollJob) -> None:
        """Two targets answering with one snmpEngineID are one agent, or two cloned
        devices (RFC 3411 wants it unique): USM keys and time windows get mixed up."""
        engine = self._client.engine_id(job.target)
        if not engine:
            return
        other = self._engines.setdefault(engine, job.device)
        if other != job.device and other in self._jobs:
            first = self._jobs[other].target
            if self._once.first(("engine", engine), job.device):
                log.warning("two snmp targets answer with one engineID", engine_id=engine.hex(),
                            device=job.device, target=f"{job.target.host}:{job.target.port}",
                            other_device=other, other_target=f"{first.host}:{first.port}")

    def _failed(self, job: PollJob, result: str, error: Failure, detail: str) -> Observation:
        SNMP_REQUESTS.labels(result).inc()
        if self._once.first((job.device, "poll"), error + detail):
            log.warning(
                "snmp poll failed",
                device=job.device,
                reason=error,
                detail=detail,
                target=f"{job.target.host}:{job.target.port}",
            )
        return Observation(job.device, self._clock(), False, error=error, detail=detail)

    def _decode(
        self, job: PollJob, values: Mapping[str, SnmpValue]
    ) -> tuple[dict[str, Reading], frozenset[str]]:
        """The readings of one answer, and those asked for that gave no usable value
        (a sentinel, noSuchInstance, a value that would not decode): the core must
        forget their last value, not keep it."""
        readings: dict[str, Reading] = {}
        missing: list[str] = []
        at, uptime = time.monotonic(), _uptime(values.get(SYS_UPTIME))
        for name, (oid, spec) in job.readings.items():
            value = values.get(oid)
            if value is None:
                missing.append(name)
                continue
            try:
                decoded = decode_varbind(spec, value, job.charset)
            except DecodeError as exc:
                if spec.optional and exc.reason == "no_such_object":
                    continue
                READING_ERRORS.labels("snmp", exc.reason).inc()
                if self._once.first((job.device, oid), exc.reason):
                    log.warning(
                        "snmp value not decoded", device=job.device, reading=name,
                        oid=oid, problem=str(exc),
                    )
                missing.append(name)
                continue
            self._once.clear((job.device, oid))
            if decoded is None:  # a vendor sentinel ("invalid"): not known now
                self._not_known(job, name, "sentinel")
                missing.append(name)
                continue
            if spec.counter is not None:
                sample = CounterSample(int(decoded), at, uptime)
                decoded = rate_reading(spec, self._rates, job.device, name, sample)
            if decoded is not None:
                readings[name] = decoded
        specs = {name: spec for name, (_, spec) in job.readings.items()}
        for name in unsupported(specs, readings):
            self._not_known(job, name, "unsupported")
            del readings[name]
            missing.append(name)
        for name in readings:
            self._once.clear((job.device, name))
        return readings, frozenset(missing)

    def _not_known(self, job: PollJob, reading: str, reason: str) -> None:
        """Count a value that means "not known", logged once per reading until it is."""
        READING_ERRORS.labels("snmp", reason).inc()
        if self._once.first((job.device, reading), reason):
            log.info("snmp value not known", device=job.device, reading=reading, reason=reason)


def _uptime(value: SnmpValue | None) -> float | None:
    """sysUpTime in seconds, or ``None`` if the agent gave none."""
    if value is None or not isinstance(value.value, int) or isinstance(value.value, bool):
        return None
    return value.value / 100
