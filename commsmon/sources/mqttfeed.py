"""The MQTT source as the daemon runs it: one :class:`MqttSource` per broker
configuration, replaced when a reload changes the broker or the topics."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING

from commsmon.aio import run_until
from commsmon.core.facts import Fact
from commsmon.core.types import CheckIn, Observation
from commsmon.sources.base import Source
from commsmon.sources.mqtt import MqttSource

if TYPE_CHECKING:
    from commsmon.config.compile import Setup

__all__ = ["MqttFeed"]


class MqttFeed(Source):
    """Runs the configured MQTT session, if any, and starts it over on a reload that
    changes ``mqtt`` or the routes; observations owed to other shards carry over.

    Args:
        setup: the setup to start with.
        sink: where observations go (every shard that tracks the device).
        local_sink: this shard's core, for observations other shards forwarded.
        on_link: told whether the broker session is up (False before each start).
        on_checkin: check-ins read from the broker.
        on_fault: a monitor fault raised or cleared (client id taken over).
        clock: wall clock, epoch seconds.
    """

    name = "mqtt"

    def __init__(
        self,
        setup: Setup,
        sink: Callable[[Observation], None],
        local_sink: Callable[[Observation], None],
        on_link: Callable[[bool], None],
        on_checkin: Callable[[CheckIn], None],
        on_fault: Callable[[str, Fact | None], None],
        clock: Callable[[], float],
    ) -> None:
        self._setup = setup
        self._sink, self._local_sink = sink, local_sink
        self._on_link, self._on_checkin, self._on_fault = on_link, on_checkin, on_fault
        self._clock = clock
        self._restart = asyncio.Event()
        # Made now, not in run(): observations other shards are owed queue from the start.
        self.session: MqttSource | None = self._make()

    async def run(self) -> None:
        """Run the session, starting it over each time :meth:`reconfigure` asks."""
        while True:
            await run_until(self.session.run() if self.session else None, self._restart)
            previous, self.session = self.session, self._make()
            if previous is not None and self.session is not None:
                self.session.take_pending(previous)  # observations owed to other shards

    async def reconfigure(self, setup: Setup) -> bool:
        """Start over if the broker settings or the routes changed."""
        old, self._setup = self._setup, setup
        if setup.settings.mqtt == old.settings.mqtt and setup.routes == old.routes:
            return False
        self._restart.set()
        return True

    def forward(self, shard: int, obs: Observation) -> None:
        """Queue ``obs`` for another shard over the broker (dropped if no session)."""
        if self.session is not None:
            self.session.forward(shard, obs)

    def _make(self) -> MqttSource | None:
        settings, routes = self._setup.settings, self._setup.routes
        if settings.mqtt is None or not routes:
            return None
        self._on_link(False)
        return MqttSource(
            settings.mqtt, routes, self._sink, self._on_link,
            on_checkin=self._on_checkin, local_sink=self._local_sink, clock=self._clock,
            client_id=settings.mqtt.identity(settings.shard.index), on_fault=self._on_fault,
        )
