"""Wiring: sources -> core -> outputs in one asyncio TaskGroup. The daemon owns the one
mutable :class:`~commsmon.core.fleet.Fleet`; sources feed it, the evaluation loop snapshots
it for the outputs, operations persist and apply what people do. SIGHUP reloads the
configuration (:meth:`Daemon.reload`).
"""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import time
from collections.abc import Callable
from zoneinfo import ZoneInfo

import structlog
from prometheus_client import REGISTRY, CollectorRegistry

from commsmon.aio import on_signal
from commsmon.config.compile import Setup, reload_setup
from commsmon.config.settings import Config, Settings
from commsmon.core.fleet import Fleet
from commsmon.core.snapshot import Snapshot
from commsmon.errors import CommsmonError
from commsmon.evaluation import Evaluation
from commsmon.log import know_sites
from commsmon.memory import settle
from commsmon.operations.record import Operations
from commsmon.outputs.alerts.output import AlertOutput
from commsmon.outputs.alerts.service import AlertService
from commsmon.outputs.server import serve
from commsmon.selfmetrics import CONFIG_RELOAD_SUCCESS, CONFIG_RELOAD_TIME
from commsmon.sources.base import Source
from commsmon.sources.mqttfeed import MqttFeed
from commsmon.sources.shards import Distributor
from commsmon.sources.snmp import snmp_client_for
from commsmon.sources.snmp.poller import SnmpPoller
from commsmon.sources.traps.receiver import TrapReceiver
from commsmon.state.store import Store
from commsmon.systemd import Notifier, watchdog, watchdog_interval

__all__ = ["Daemon"]

log = structlog.get_logger("commsmon.daemon")


class Daemon:
    """One running commsmon instance.

    Args:
        config: a loaded configuration, or what was derived from one
            (:func:`~commsmon.config.compile.load_setup`); the daemon keeps the setup.
        registry: the daemon's own metrics, exposed after the fleet's.
        clock: wall clock, epoch seconds.
    """

    def __init__(self, config: Config | Setup, *, registry: CollectorRegistry = REGISTRY,
                 clock: Callable[[], float] = time.time) -> None:
        self.setup = config if isinstance(config, Setup) else Setup.of(config)
        self._clock, self._registry = clock, registry
        self.tz = ZoneInfo(self.config.timezone)
        self.fleet = Fleet(self.setup.tracked, clock())
        know_sites(self.setup.site_of)
        self.store: Store | None = None
        self.alerting = AlertOutput(self.config.state_path() / "outbox.db", self.tz, clock,
                                    self.fleet.set_fault, self.config.ha, self.setup.plan.index)
        self.sources: list[Source] = []
        self._systemd = Notifier()
        plan, store, alerts = (lambda: self.setup.plan), (lambda: self.store), (lambda: self.alerts)
        self.operations = Operations(self.fleet, plan, store, alerts, self.evaluate, clock,
                                     self.tz, lambda: self.config)
        self.evaluation = Evaluation(self.fleet, plan, clock, store, alerts, lambda status:
                                     self._systemd.send(STATUS=status), self.config.history_days,
                                     self.operations.drills)
        self.distribute = Distributor(plan, self.fleet)
        self._reload_requested = asyncio.Event()
        self.listening: list[str] = []  # the URLs served, once running
        self.ready = asyncio.Event()

    @property
    def config(self) -> Settings:
        """The running configuration's settings (its sites live on as the inventory)."""
        return self.setup.settings

    @property
    def alerts(self) -> AlertService | None:
        """The running alert service (``None`` before :meth:`run` opens it)."""
        return self.alerting.service

    @property
    def snapshot(self) -> Snapshot | None:
        """The latest evaluation of the fleet, ``None`` before the first."""
        return self.evaluation.snapshot

    def evaluate(self) -> Snapshot:
        """Evaluate the fleet now (:meth:`Evaluation.evaluate`)."""
        return self.evaluation.evaluate()

    async def run(self) -> None:
        """Run until cancelled; cleans up sockets and files on the way out."""
        config, state = self.config, self.config.state_path()
        client = snmp_client_for(config.defaults.snmp_backend)
        try:
            self.store = await self.operations.restore(state / "commsmon.db")
            await self.alerting.open(config.alerting, config.http.external_url)
        except (OSError, sqlite3.Error) as exc:
            raise CommsmonError(f"cannot use the state directory {state.resolve()}: {exc} "
                                "(set state_dir, or run where it is writable)") from exc
        runner = None
        try:
            runner, self.listening = await serve(
                config.http, self._registry, lambda: self.snapshot,
                lambda snap: self.setup.exposition.chunks(snap), self.operations,
                self._clock, self.tz, config.language,
                lambda: next((s for s in self.sources if isinstance(s, TrapReceiver)), None))
            self.evaluate()
            CONFIG_RELOAD_SUCCESS.set(1)
            CONFIG_RELOAD_TIME.set(self._clock())
            mqtt = MqttFeed(self.setup, self.distribute, self.distribute.local,
                            lambda up: self.fleet.set_source("mqtt", up, self._clock()),
                            self.operations.checkin_heard, self.fleet.set_fault, self._clock)
            poller = SnmpPoller(client, self.setup.jobs, self.distribute,
                                concurrency=config.defaults.snmp_concurrency, clock=self._clock)
            traps = TrapReceiver(self.setup, self.distribute, poller.poll_now, state, self._clock,
                                 lambda up: self.fleet.set_traps_listening(up, self._clock()))
            self.sources = [poller, mqtt, traps]
            self.distribute.forward = mqtt.forward
            settle()  # most of what is made by now is held for good (reloads settle again)
            async with asyncio.TaskGroup() as tg:
                for source in self.sources:
                    tg.create_task(source.run(), name=source.name)
                tg.create_task(self.evaluation.run(), name="evaluate")
                tg.create_task(self._reload_forever(), name="reload")
                tg.create_task(self.alerting.run(lambda: all(self._working(60).values())),
                               name=self.alerting.name)
                if (interval := watchdog_interval()) is not None:
                    tg.create_task(watchdog(self._systemd, interval, self._working))
                on_signal(signal.SIGHUP, self.request_reload)
                log.info("commsmon running", sites=len(self.setup.plan.sites),
                         shard=f"{self.setup.plan.index}/{self.setup.plan.count}",
                         devices=len(self.fleet.inventory.devices), listening=self.listening,
                         snmp_targets=len(self.setup.jobs), mqtt_topics=len(self.setup.routes))
                self.ready.set()
                self._systemd.send(READY="1", STATUS=self.evaluation.status_line())
        finally:
            on_signal(signal.SIGHUP, None)
            self._systemd.send(STOPPING="1")
            if runner is not None:
                await runner.cleanup()
            await client.close()
            await self.operations.drain()
            await self.alerting.close()
            await asyncio.to_thread(self.store.close)

    def _working(self, interval: float) -> dict[str, bool]:  # what the watchdog checks
        now = time.monotonic()
        return {"evaluating": now - self.evaluation.evaluated_at < max(30.0, 4 * interval),
                "polling": all(source.alive(now) for source in self.sources)}

    def request_reload(self) -> None:  # SIGHUP's: requests made meanwhile merge
        self._reload_requested.set()

    async def _reload_forever(self) -> None:
        while True:
            await self._reload_requested.wait()
            self._reload_requested.clear()
            await self.reload()

    async def reload(self) -> bool:
        """Load the file again and apply it; ``False`` if it was rejected (then the
        running configuration stays: :func:`~commsmon.config.compile.reload_setup`).

        Devices added start ``unknown``, removed ones go, unchanged ones keep their state,
        readings, counters and poll cadence; each source and the alerts say whether they
        restarted (MQTT on a new broker or topics, traps on a new ``traps``, alerting on a
        new section). ``http``, ``state_dir``, ``timezone``, the SNMP backend: restart.
        """
        self._systemd.send(RELOADING="1", MONOTONIC_USEC=str(time.monotonic_ns() // 1000))
        try:
            new = await reload_setup(self.config.path)
            if new is not None:
                await self._apply(new)
                settle()  # the old setup let go (its cycles found), the new one frozen
                CONFIG_RELOAD_SUCCESS.set(1)
                CONFIG_RELOAD_TIME.set(self._clock())
            return new is not None
        finally:
            self._systemd.send(READY="1", STATUS=self.evaluation.status_line())

    async def _apply(self, new: Setup) -> None:
        old = self.setup
        for setting in old.restart_only_changes(new):
            log.warning("setting changed; it takes effect on restart", setting=setting)
        before, after = set(old.tracked.devices), set(new.tracked.devices)
        self.fleet.reconfigure(new.tracked, self._clock())
        self.setup = new
        know_sites(new.site_of)
        restarted = [s.name for s in self.sources if await s.reconfigure(new)]
        if await self.alerting.reconfigure(old, new):
            restarted.append(self.alerting.name)
        self.evaluate()
        log.info("configuration reloaded", path=str(new.settings.path), devices=len(after),
                 added=len(after - before), removed=len(before - after), restarted=restarted)
