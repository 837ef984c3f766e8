"""Which shard's core an observation goes to: this instance's, or others' over the broker."""

from __future__ import annotations

from collections.abc import Callable

import structlog

from commsmon.core.fleet import Fleet
from commsmon.core.shard import ShardPlan
from commsmon.core.types import Observation

__all__ = ["Distributor"]

log = structlog.get_logger("commsmon.daemon")


class Distributor:
    """Hands each observation to every shard that tracks its device (the sources' sink).

    A device several villages depend on (the district repeater) is tracked by
    every shard with such a village; its owner polls it and forwards what it
    sees. A device nobody else tracks stays here.

    Args:
        plan: this instance's shard plan now (it changes on reload).
        fleet: this shard's core.

    Attributes:
        forward: sends an observation to another shard (the MQTT source's, once
            it exists; until then nothing is forwarded).
    """

    def __init__(self, plan: Callable[[], ShardPlan], fleet: Fleet) -> None:
        self._plan, self._fleet = plan, fleet
        self.forward: Callable[[int, Observation], None] = lambda shard, obs: None

    def local(self, obs: Observation) -> None:
        """Hand ``obs`` to this shard's core (also for what other shards forward)."""
        if not self._fleet.observe(obs):
            log.warning("observation for a device not in the inventory", device=obs.device)

    def __call__(self, obs: Observation) -> None:
        plan = self._plan()
        for shard in plan.trackers(obs.device) or (plan.index,):
            if shard == plan.index:
                self.local(obs)
            else:
                self.forward(shard, obs)
