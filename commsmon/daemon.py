"""Wiring: sources -> core -> outputs in one asyncio TaskGroup.

The daemon owns the one mutable :class:`~commsmon.core.fleet.Fleet`.  Sources
hand observations to it in the event loop; once a second it is evaluated into
a frozen snapshot that the outputs read.  SIGHUP reloads the configuration:
validated first, then applied without losing what is known of devices that
stay (see :meth:`Daemon.reload`).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import ssl
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import structlog
from aiohttp import web
from prometheus_client import REGISTRY, CollectorRegistry, disable_created_metrics

from commsmon.config.compile import Setup, load_setup
from commsmon.config.settings import Config, Settings
from commsmon.core.dispatch import Silence
from commsmon.core.facts import Fact
from commsmon.core.fleet import Fleet, Snapshot
from commsmon.core.outages import Declaration
from commsmon.core.shard import ShardPlan
from commsmon.core.types import CheckIn, Observation, State
from commsmon.errors import CommsmonError, ConfigError
from commsmon.log import LogOnce, know_sites
from commsmon.outputs.alerts.service import AlertService
from commsmon.outputs.api import add_api_routes
from commsmon.outputs.http import build_app
from commsmon.outputs.webauth import ReadGuard, server_ssl_context
from commsmon.outputs.wording import Wording
from commsmon.selfmetrics import (
    CONFIG_RELOAD_SUCCESS,
    CONFIG_RELOAD_TIME,
    EVALUATION_DURATION,
    EVENT_LOOP_TASKS,
)
from commsmon.sources.mqtt import MqttSource
from commsmon.sources.snmp.base import SnmpClient
from commsmon.sources.snmp.poller import SnmpPoller
from commsmon.state.store import Store
from commsmon.systemd import Notifier, watchdog_interval

__all__ = ["Daemon"]

log = structlog.get_logger("commsmon.daemon")

# Logs and systemd's status line are for the operations engineer, in English.
_WORDS = Wording("en")

EVALUATE_EVERY = 1.0  # seconds between evaluations of the fleet, at least
EVALUATE_DUTY = 6.0  # a large fleet waits this many times an evaluation's cost before the next

# Counters' *_created series double the exposition and nobody graphs them.
disable_created_metrics()  # type: ignore[no-untyped-call]


class Daemon:
    """One running commsmon instance.

    Args:
        config: a loaded, validated configuration, or what was derived from one
            (:func:`~commsmon.config.compile.load_setup`); the daemon keeps the derived
            setup, not the configuration's own site and device models.
        snmp_client: the SNMP backend; the configured ``defaults.snmp_backend``
            (gufo unless said otherwise) by default.
        registry: the daemon's own metrics (the global default unless given),
            exposed after the fleet's.
        clock: wall clock, epoch seconds.
    """

    def __init__(
        self,
        config: Config | Setup,
        *,
        snmp_client: SnmpClient | None = None,
        registry: CollectorRegistry = REGISTRY,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.setup = config if isinstance(config, Setup) else Setup.of(config)
        self._clock = clock
        self._registry = registry
        self._snmp_client = snmp_client
        self.tz = ZoneInfo(self.config.timezone)
        self.fleet = Fleet(self.setup.tracked, clock())
        know_sites({d.id: d.site for d in self.setup.inventory.devices.values()})
        self._mqtt: MqttSource | None = None
        self._poller: SnmpPoller | None = None
        self._group: asyncio.TaskGroup | None = None
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._reload_requested = asyncio.Event()
        self.store: Store | None = None
        self.alerts: AlertService | None = None
        self._once = LogOnce()
        self._systemd = Notifier()
        self._evaluated_at = time.monotonic()
        self._status = ""
        self._pending: set[asyncio.Task[bool]] = set()
        self.snapshot: Snapshot | None = None
        self._states: _States | None = None
        self.listening: list[str] = []
        self.ready = asyncio.Event()

    @property
    def config(self) -> Settings:
        """The running configuration's settings (its sites live on as the inventory)."""
        return self.setup.settings

    @property
    def plan(self) -> ShardPlan:
        """This instance's shard of the inventory."""
        return self.setup.plan

    def observe(self, obs: Observation) -> None:
        """Hand one observation to this instance's core."""
        if not self.fleet.observe(obs):
            log.warning("observation for a device not in the inventory", device=obs.device)

    def distribute(self, obs: Observation) -> None:
        """Hand one observation to every shard that tracks its device (the sources' sink)."""
        for shard in self.plan.trackers(obs.device) or (self.plan.index,):
            if shard == self.plan.index:
                self.observe(obs)
            elif self._mqtt is not None:
                self._mqtt.forward(shard, obs)

    @property
    def state_dir(self) -> Path:
        """``state_dir`` from the config, else systemd's ``$STATE_DIRECTORY``, else ``./state``."""
        chosen = self.config.state_dir or os.environ.get("STATE_DIRECTORY", "").split(":")[0]
        return Path(chosen or "state")

    async def record_checkin(self, checkin: CheckIn) -> bool:
        """Persist, then apply a check-in; ``False`` if the device is unknown."""
        if checkin.device not in self.fleet.inventory.devices:
            return False
        if self.store is not None:
            await asyncio.to_thread(self.store.add_checkin, checkin)
        self.fleet.checkin(checkin)
        log.info("check-in recorded", device=checkin.device, ok=checkin.ok, by=checkin.by,
                 site=self.fleet.inventory.devices[checkin.device].site)
        self.evaluate()
        return True

    async def declare(self, declaration: Declaration) -> bool:
        """Persist, then apply a declared outage; ``False`` if the site is not ours."""
        if declaration.site not in self.plan.sites:
            return False
        if self.store is not None:
            await asyncio.to_thread(self.store.put_declaration, declaration)
        self.fleet.declare(declaration)
        log.info("outage declared", site=declaration.site, outage=declaration.kind,
                 until=declaration.until, by=declaration.by)
        self.evaluate()
        return True

    async def clear(self, site: str, kind: str) -> bool:
        """Persist, then clear a declared outage; ``False`` if none was declared."""
        if (site, kind) not in self.fleet.declarations:
            return False
        if self.store is not None:
            await asyncio.to_thread(self.store.delete_declaration, site, kind)
        self.fleet.clear(site, kind)
        log.info("outage cleared", site=site, outage=kind)
        self.evaluate()
        return True

    def _checkin_from_mqtt(self, checkin: CheckIn) -> None:
        trackers = self.plan.trackers(checkin.device)
        if trackers and self.plan.index not in trackers:
            return  # another shard's device: that shard records it
        task = asyncio.create_task(self.record_checkin(checkin))
        self._pending.add(task)
        task.add_done_callback(self._checkin_done)

    def _checkin_done(self, task: asyncio.Task[bool]) -> None:
        self._pending.discard(task)
        if not task.cancelled() and task.exception() is None and not task.result():
            log.warning("check-in for a device not in the inventory")

    def evaluate(self) -> Snapshot:
        """Evaluate the fleet now, log what changed, publish the snapshot."""
        # Let the old snapshot go before the new one is built: at province scale each
        # is tens of MiB, and two at once would set the daemon's resident size.
        # The change log needs only the old states.
        self.snapshot = None
        snap = self.plan.report(self.fleet.evaluate(self._clock()))
        self.snapshot = snap
        previous, self._states = self._states, _States.of(snap)
        if previous is not None:
            _log_changes(previous, snap)
        return snap

    async def run(self) -> None:
        """Run until cancelled; cleans up sockets and the collector on the way out."""
        config = self.config
        if self._snmp_client is None:
            self._snmp_client = _snmp_client(config.defaults.snmp_backend)
        try:
            self.store = await asyncio.to_thread(Store, self.state_dir / "commsmon.db")
            for checkin in await asyncio.to_thread(self.store.latest_checkins):
                self.fleet.checkin(checkin)
            for declaration in await asyncio.to_thread(self.store.declarations):
                self.fleet.declare(declaration)
            self.alerts = await asyncio.to_thread(
                AlertService, config.alerting, self.state_dir / "outbox.db", self.tz,
                self._clock, self.fleet.set_fault,
            )
            await asyncio.to_thread(self.alerts.restore)
        except (OSError, sqlite3.Error) as exc:
            raise CommsmonError(
                f"cannot use the state directory {self.state_dir.resolve()}: {exc}"
                " (set state_dir, or run where it is writable)"
            ) from exc
        app = build_app(self._registry, lambda: self.snapshot,
                        lambda snap: self.setup.exposition.chunks(snap), self._clock,
                        ReadGuard.from_spec(config.http))
        token = config.http.token.get_secret_value() if config.http.token else None
        add_api_routes(app, lambda: self.snapshot, self, token, self._clock, self.tz,
                       config.language)
        runner = web.AppRunner(app)
        try:
            await runner.setup()
            try:
                tls = server_ssl_context(config.http)
            except (OSError, ssl.SSLError) as exc:
                raise CommsmonError(f"cannot use the HTTPS certificate or key: {exc}") from exc
            try:
                await web.TCPSite(runner, config.http.listen, config.http.port,
                                  ssl_context=tls).start()
            except OSError as exc:
                raise CommsmonError(
                    f"cannot listen on {config.http.listen}:{config.http.port}: {exc.strerror}"
                    " (another commsmon running? change http.port or pass --listen-port)"
                ) from exc
            scheme = "https" if tls else "http"
            self.listening = [f"{scheme}://{h}:{p}" for h, p, *_ in runner.addresses]
            self.evaluate()
            CONFIG_RELOAD_SUCCESS.set(1)
            CONFIG_RELOAD_TIME.set(self._clock())
            async with asyncio.TaskGroup() as tg:
                self._group = tg
                self._poller = SnmpPoller(
                    self._snmp_client,
                    self.setup.jobs,
                    self.distribute,
                    concurrency=config.defaults.snmp_concurrency,
                    clock=self._clock,
                )
                self._spawn("snmp", self._poller.run())
                self._start_mqtt()
                self._spawn("evaluate", self._evaluate_forever())
                self._spawn("delivery", self.alerts.deliverer.run())
                self._spawn("reload", self._reload_forever())
                if (interval := watchdog_interval()) is not None:
                    self._spawn("watchdog", self._watchdog(interval))
                _on_signal(signal.SIGHUP, self.request_reload)
                log.info(
                    "commsmon running",
                    sites=len(self.plan.sites),
                    shard=f"{self.plan.index}/{self.plan.count}",
                    devices=len(self.fleet.inventory.devices),
                    snmp_targets=len(self.setup.jobs),
                    mqtt_topics=len(self.setup.routes),
                    listening=self.listening,
                )
                self.ready.set()
                self._systemd.send(READY="1", STATUS=self._status_line())
        finally:
            _on_signal(signal.SIGHUP, None)
            self._systemd.send(STOPPING="1")
            await runner.cleanup()
            await self._snmp_client.close()
            for task in list(self._pending):
                await asyncio.wait([task], timeout=5)
            await self.alerts.close()
            await asyncio.to_thread(self.store.close)

    def _spawn(self, name: str, coro: Coroutine[None, None, None]) -> None:
        assert self._group is not None
        self._tasks[name] = self._group.create_task(coro, name=name)

    async def _stop(self, name: str) -> None:
        task = self._tasks.pop(name, None)
        if task is not None:
            task.cancel()
            await asyncio.wait([task])

    def _start_mqtt(self) -> None:
        config, routes = self.config, self.setup.routes
        if config.mqtt is None or not routes:
            self._mqtt = None
            return
        self.fleet.set_source("mqtt", False, self._clock())
        self._mqtt = MqttSource(
            config.mqtt, routes, self.distribute, self._on_mqtt_link,
            on_checkin=self._checkin_from_mqtt, local_sink=self.observe, clock=self._clock,
            client_id=config.mqtt.identity(config.shard.index), on_fault=self.fleet.set_fault,
        )
        self._spawn("mqtt", self._mqtt.run())

    def request_reload(self) -> None:
        """Ask for :meth:`reload` (the SIGHUP handler); requests made meanwhile merge."""
        self._reload_requested.set()

    async def _reload_forever(self) -> None:
        while True:
            await self._reload_requested.wait()
            self._reload_requested.clear()
            await self.reload()

    async def reload(self) -> bool:
        """Load the configuration file again and apply it; ``False`` if it was rejected.

        The file is validated first, in a child process; a bad one is logged
        with every problem located, ``commsmon_config_last_reload_success``
        drops to 0 and the running configuration stays.  A good one applies
        at once: devices added start ``unknown``, removed ones go, unchanged
        ones keep their state, readings, counters and poll cadence; the MQTT
        session restarts only if the broker or topics changed, alerting only
        if its section changed (its memory comes back from the outbox).
        ``http``, ``state_dir``, ``timezone`` and the SNMP backend take a
        restart; changing them is logged.
        """
        path = self.config.path
        self._systemd.send(RELOADING="1", MONOTONIC_USEC=str(time.monotonic_ns() // 1000))
        try:
            if path is None:
                log.error("configuration reload impossible: it was not read from a file")
                return False
            try:
                new = await asyncio.to_thread(load_setup, path)
            except ConfigError as exc:
                CONFIG_RELOAD_SUCCESS.set(0)
                log.error("configuration rejected; the running one stays", path=str(path),
                          problems=exc.problems)
                return False
            await self._apply(new)
            CONFIG_RELOAD_SUCCESS.set(1)
            CONFIG_RELOAD_TIME.set(self._clock())
            return True
        finally:
            self._systemd.send(READY="1", STATUS=self._status_line())

    async def _apply(self, new: Setup) -> None:
        old = self.setup
        for setting in old.restart_only_changes(new):
            log.warning("setting changed; it takes effect on restart", setting=setting)
        before, after = set(old.tracked.devices), set(new.tracked.devices)
        self.fleet.reconfigure(new.tracked, self._clock())
        self.setup = new
        know_sites({d.id: d.site for d in new.inventory.devices.values()})
        started = stopped = 0
        if self._poller is not None:
            started, stopped = self._poller.replace(new.jobs)
        if new.settings.mqtt != old.settings.mqtt or new.routes != old.routes:
            await self._stop("mqtt")
            previous = self._mqtt
            self._start_mqtt()
            if previous is not None and self._mqtt is not None:
                self._mqtt.take_pending(previous)  # observations owed to other shards
        if new.settings.alerting != old.settings.alerting and self.alerts is not None:
            await self._stop("delivery")
            await self.alerts.close()
            self.alerts = await asyncio.to_thread(
                AlertService, new.settings.alerting, self.state_dir / "outbox.db", self.tz,
                self._clock, self.fleet.set_fault,
            )
            await asyncio.to_thread(self.alerts.restore)
            self._spawn("delivery", self.alerts.deliverer.run())
        self.evaluate()
        log.info("configuration reloaded", path=str(new.settings.path),
                 devices=len(after), added=len(after - before), removed=len(before - after),
                 snmp_started=started, snmp_stopped=stopped)

    def _on_mqtt_link(self, connected: bool) -> None:
        self.fleet.set_source("mqtt", connected, self._clock())

    async def _evaluate_forever(self) -> None:
        cost = 0.0
        while True:
            # Small fleets are evaluated every second; a province's fleet (about 1 s
            # of CPU for 20 000 devices) leaves the pollers most of the core.
            await asyncio.sleep(max(EVALUATE_EVERY, cost * EVALUATE_DUTY))
            started = time.perf_counter()
            await self._evaluate_once()
            cost = time.perf_counter() - started
            EVALUATION_DURATION.observe(cost)
            EVENT_LOOP_TASKS.set(len(asyncio.all_tasks()))
            self._evaluated_at = time.monotonic()
            status = self._status_line()
            if status != self._status:
                self._status = status
                self._systemd.send(STATUS=status)

    async def _evaluate_once(self) -> None:
        """One evaluation and its alerts; a method of its own so that no frame holds the
        snapshot between runs (the next evaluation lets the old one go first)."""
        state = [db.problem for db in (self.store, self.alerts and self.alerts.outbox) if db]
        problem = "; ".join(p for p in state if p)
        self.fleet.set_fault("state_dir",
                             Fact("state_dir", {"detail": problem}) if problem else None)
        snap = self.evaluate()
        if self.alerts is None:
            return
        try:
            await self.alerts.step(snap)
        except sqlite3.Error as exc:  # nothing of the outbox's may stop monitoring
            if self._once.first("outbox", str(exc)):
                log.error("alert outbox failed; alerts wait", error=str(exc),
                          path=str(self.state_dir))
        else:
            if self._once.clear("outbox"):
                log.info("alert outbox writable again")

    def _status_line(self) -> str:
        """``polling 92 devices, 14 sites, 0 isolated`` for systemctl status."""
        snap = self.snapshot
        sites = [s for s in snap.sites.values() if s.site.role == "village"] if snap else []
        isolated = sum(s.reachable is False for s in sites)
        line = f"polling {len(self.fleet.inventory.devices)} devices, {len(sites)} sites, " \
               f"{isolated} isolated"
        cut_off = _WORDS.fact(snap.cut_off) if snap and snap.cut_off else ""
        return line + (f"; {cut_off}" if cut_off else "")

    async def _watchdog(self, interval: float) -> None:
        """Ping systemd's watchdog only while evaluations keep coming and polls keep
        ending: a stuck event loop, evaluation or poller stops the pings and systemd
        restarts us."""
        while True:
            await asyncio.sleep(interval)
            now = time.monotonic()
            evaluating = now - self._evaluated_at < max(30.0, 4 * interval)
            polling = self._poller is None or self._poller.alive(now)
            if evaluating and polling:
                self._systemd.send(WATCHDOG="1")
            elif self._once.first("watchdog", f"{evaluating} {polling}"):
                log.error("watchdog withheld: the daemon is stuck", evaluating=evaluating,
                          polling=polling)

    def silences(self) -> list[Silence]:
        """Every silence the dispatcher knows (config and API)."""
        return list(self.alerts.dispatcher.silences.values()) if self.alerts else []

    async def add_silence(
        self, matchers: dict[str, str], starts_at: float, ends_at: float, by: str, comment: str
    ) -> Silence:
        """Create and persist a silence."""
        assert self.alerts is not None
        silence = await self.alerts.add_silence(matchers, starts_at, ends_at, by, comment)
        log.info("silence added", id=silence.id, matchers=matchers, by=by)
        return silence

    async def delete_silence(self, silence_id: str) -> bool:
        """Expire an API silence now; ``False`` if none by that id."""
        return self.alerts is not None and await self.alerts.delete_silence(silence_id)


def _snmp_client(backend: str) -> SnmpClient:
    """The configured SNMP backend (see README: gufo by default, from measurements)."""
    if backend == "pysnmp":
        from commsmon.sources.snmp.pysnmp_backend import PysnmpClient

        return PysnmpClient()
    from commsmon.sources.snmp.gufo_backend import GufoClient

    return GufoClient()


@dataclass(frozen=True, slots=True)
class _States:
    """The states of one snapshot, all the change log keeps of it."""

    devices: dict[str, State]
    sites: dict[str, State]

    @classmethod
    def of(cls, snap: Snapshot) -> _States:
        return cls({d: s.state for d, s in snap.devices.items()},
                   {s: st.state for s, st in snap.sites.items()})


def _log_changes(before: _States, after: Snapshot) -> None:
    """One line per device or site whose state changed (never one per poll)."""
    for device_id, now in after.devices.items():
        was = before.devices.get(device_id)
        if was is not None and was is not now.state:
            log.info("device state changed", site=now.device.site, device=device_id,
                     old=was.value, new=now.state.value,
                     reason=_WORDS.facts(now.reasons, now.device.site) or None)
    for site_id, site in after.sites.items():
        was_site = before.sites.get(site_id)
        if was_site is not None and was_site is not site.state:
            log.info("site state changed", site=site_id, old=was_site.value,
                     new=site.state.value,
                     channels={c: s.state.value for c, s in site.channels.items()})


def _on_signal(signum: int, handler: Callable[[], None] | None) -> None:
    """Install (or with ``None`` remove) a loop signal handler where signals can be had."""
    loop = asyncio.get_running_loop()
    try:
        if handler is None:
            loop.remove_signal_handler(signum)
        else:
            loop.add_signal_handler(signum, handler)
    except (NotImplementedError, RuntimeError, ValueError):  # not the main thread
        pass
