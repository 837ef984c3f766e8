"""What the daemon derives from one configuration, at start and on each reload."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import multiprocessing
import pickle
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import structlog

from commsmon.config.load import load_config
from commsmon.config.settings import Config, Settings
from commsmon.core.model import Inventory
from commsmon.core.shard import ShardPlan
from commsmon.core.shared import Shared
from commsmon.errors import ConfigError
from commsmon.outputs.metrics import FleetExposition
from commsmon.selfmetrics import CONFIG_RELOAD_SUCCESS
from commsmon.sources.mqtt import Route, routes_from_config
from commsmon.sources.snmp.poller import PollJob, jobs_from_config
from commsmon.sources.traps.senders import Senders, senders_from_config

__all__ = ["Setup", "load_setup", "reload_setup"]

log = structlog.get_logger("commsmon.daemon")

#: Settings a running daemon cannot change; a reload that changes one says so.
RESTART_ONLY = ("http", "state_dir", "timezone", "defaults.snmp_backend", "ha")


@dataclass(frozen=True, slots=True)
class Setup:
    """One configuration, worked out for this instance.

    Attributes:
        settings: the configuration without its ``sites``: the validated YAML
            models cost about 3 KiB a device, the inventory below a fifth of
            that, so only the inventory (``tracked``) is kept.
        site_of: every device of the file (all shards): its id -> its site's id,
            for the ``site`` of log lines and trap counters. Only this is kept of
            the devices another shard keeps: a shard's part of a 100 000-device
            province is a fifth of the whole inventory's 42 MiB.
        plan: this instance's shard of the file's inventory.
        tracked: the part of the inventory whose state this instance keeps.
        jobs: the SNMP devices this instance polls.
        routes: the MQTT topics it reads.
        exposition: the renderer of its /metrics.
        senders: the devices traps may come from; none while ``traps.listen`` is
            empty.
    """

    settings: Settings
    site_of: Mapping[str, str]
    plan: ShardPlan
    tracked: Inventory
    jobs: list[PollJob]
    routes: dict[str, Route]
    exposition: FleetExposition
    senders: Senders

    @classmethod
    def of(cls, config: Config) -> Setup:
        """Derive everything from ``config``; the caller may drop ``config`` afterwards."""
        inventory = config.inventory()
        plan = ShardPlan.build(inventory, config.shard.index, config.shard.count)
        return cls(
            settings=config.settings(),
            site_of={d.id: d.site for d in inventory.devices.values()},
            plan=plan,
            tracked=plan.inventory(inventory),
            jobs=[j for j in jobs_from_config(config) if plan.owns(inventory.devices[j.device])],
            routes=routes_from_config(config, plan),
            exposition=FleetExposition(config, inventory, plan),
            # Only a listener matches traps to devices: without one the index (5 MiB
            # at 20 000 devices) is not made; a reload that sets one makes it.
            senders=senders_from_config(config) if config.traps.listen else Senders(),
        )

    def restart_only_changes(self, new: Setup) -> list[str]:
        """Names of the :data:`RESTART_ONLY` settings that ``new`` changes."""
        changed = []
        for name in RESTART_ONLY:
            old_value, new_value = self.settings, new.settings
            for part in name.split("."):
                old_value, new_value = getattr(old_value, part), getattr(new_value, part)
            if old_value != new_value:
                changed.append(name)
        return changed

    def with_http_port(self, port: int | None) -> Setup:
        """This setup listening on ``port`` instead (``None``: unchanged; 0: any free port)."""
        if port is None:
            return self
        # model_copy skips validation on purpose: port 0 asks the OS for a free port.
        http = self.settings.http.model_copy(update={"port": port})
        return dataclasses.replace(self, settings=self.settings.model_copy(update={"http": http}))


def load_setup(path: str | Path) -> Setup:
    """Load, validate and derive the setup of the file at ``path`` in a child process.

    Parsing and validating a province's file peaks at about 10 KiB per device,
    and the validated YAML models keep 3 KiB; in the daemon that heap would
    stay resident, fragmented, for good.  A short-lived child does the work
    and hands back only the :class:`Setup` (about 0.5 KiB per device), so a
    pathological file cannot bloat the daemon either, on start or on reload.
    The child is spawned, never forked from the daemon's threads and sockets.

    Raises:
        ConfigError: as :func:`~commsmon.config.load_config`.
    """
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        packed = pool.submit(_load, Path(path)).result()
    setup: Setup = _NumbersOnce(io.BytesIO(packed)).load()
    return setup


def _load(path: Path) -> bytes:
    packed = io.BytesIO()
    _NumbersByValue(packed, pickle.HIGHEST_PROTOCOL).dump(Setup.of(load_config(path)))
    return packed.getvalue()


# Pickle copies a float, or an int outside the interpreter's small ones, at each reference
# (its memo skips numbers): a province's setup came back with a float for each device
# and field (77 000 at 20 000 devices, 2 MiB), however few the values.  They cross as
# persistent ids instead, and are made one object for each value again on arrival.
class _NumbersByValue(pickle.Pickler):
    def persistent_id(self, obj: object) -> object:
        if type(obj) is float or (type(obj) is int and not -5 <= obj <= 256):
            return obj
        return None


class _NumbersOnce(pickle.Unpickler):
    def __init__(self, file: io.BytesIO) -> None:
        super().__init__(file)
        self._one = Shared()  # keeps 0.0 and -0.0 apart: a config may say either

    def persistent_load(self, pid: float | int) -> float | int:
        return self._one(pid)


async def reload_setup(path: Path | None) -> Setup | None:
    """:func:`load_setup` for a running daemon: ``None`` if the file is rejected, with
    every problem logged located and ``commsmon_config_last_reload_success`` at 0."""
    if path is None:
        log.error("configuration reload impossible: it was not read from a file")
        return None
    try:
        return await asyncio.to_thread(load_setup, path)
    except ConfigError as exc:
        CONFIG_RELOAD_SUCCESS.set(0)
        log.error("configuration rejected; the running one stays", path=str(path),
                  problems=exc.problems)
        return None
