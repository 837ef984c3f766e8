"""What the daemon derives from one configuration, at start and on each reload."""

from __future__ import annotations

from dataclasses import dataclass

from commsmon.config import Config
from commsmon.core.model import Inventory
from commsmon.core.shard import ShardPlan
from commsmon.outputs.metrics import FleetExposition
from commsmon.sources.mqtt import Route, routes_from_config
from commsmon.sources.snmp.poller import PollJob, jobs_from_config

__all__ = ["Setup"]

#: Settings a running daemon cannot change; a reload that changes one says so.
RESTART_ONLY = ("http", "state_dir", "timezone", "defaults.snmp_backend")


@dataclass(frozen=True, slots=True)
class Setup:
    """One configuration, worked out for this instance.

    Attributes:
        settings: the configuration without its ``sites``: the validated YAML
            models cost about 3 KiB a device, the inventory below a fifth of
            that, so only the inventory is kept.
        inventory: every site and device of the file (all shards).
        plan: this instance's shard of it.
        tracked: the part of ``inventory`` whose state this instance keeps.
        jobs: the SNMP devices this instance polls.
        routes: the MQTT topics it reads.
        exposition: the renderer of its /metrics.
    """

    settings: Config
    inventory: Inventory
    plan: ShardPlan
    tracked: Inventory
    jobs: list[PollJob]
    routes: dict[str, Route]
    exposition: FleetExposition

    @classmethod
    def of(cls, config: Config) -> Setup:
        """Derive everything from ``config``; the caller may drop ``config`` afterwards."""
        inventory = config.inventory()
        plan = ShardPlan.build(inventory, config.shard.index, config.shard.count)
        return cls(
            settings=config.model_copy(update={"sites": []}),
            inventory=inventory,
            plan=plan,
            tracked=plan.inventory(inventory),
            jobs=[j for j in jobs_from_config(config) if plan.owns(inventory.devices[j.device])],
            routes=routes_from_config(config, plan),
            exposition=FleetExposition(config, inventory),
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
