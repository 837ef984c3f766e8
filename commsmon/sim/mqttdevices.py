"""Simulated MQTT devices: presence with a Last Will, and JSON telemetry.

Each device keeps its own session (its own client id), publishes a retained
``online`` on its status topic with a retained ``offline`` Last Will, and
publishes telemetry every ``period`` seconds shaped like its profile's real
counterpart.  Taking it down publishes ``offline`` (as its gateway would) and
stops telemetry; the broker's Will covers a sim that dies.  Sessions survive
broker restarts: the device reconnects and publishes its presence again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections.abc import Callable
from typing import Any

import aiomqtt

__all__ = ["SimMqttDevice", "telemetry_for"]

Model = Callable[[float], dict[str, Any]]


def telemetry_for(profile: str) -> Model | None:
    """A telemetry generator for a profile, or ``None`` for presence-only ones.

    The values are fixed enough to assert on (a genset at 82 % fuel, 41 L) with
    a little noise where a real reading wanders (signal strength).
    """

    def genset(now: float) -> dict[str, Any]:
        return {
            "ts": round(now, 3),
            "running": False,
            "mains": True,
            "fuel_pct": 82,
            "fuel_l": 41.0,
            "load_pct": 0,
            "battery_v": "12.9 V",
            "alarms": 0,
        }

    def satphone(now: float) -> dict[str, Any]:
        return {"ts": round(now, 3), "registered": True, "signal_bars": 4, "battery_pct": 96}

    def pdt(now: float) -> dict[str, Any]:
        return {
            "ts": round(now, 3),
            "registered": True,
            "rssi_dbm": random.randint(-92, -84),
            "battery_pct": 100,
        }

    return {"genset-gateway": genset, "satphone-dock": satphone, "pdt-terminal": pdt}.get(profile)


class SimMqttDevice:
    """One simulated MQTT device.

    Args:
        host: broker address (127.0.0.1).
        port: broker port.
        device: device id (its client id is ``sim-<device>``).
        status_topic: where presence goes, ``None`` for none.
        telemetry_topic: where telemetry goes, ``None`` for none.
        model: telemetry generator (see :func:`telemetry_for`).
        period: seconds between telemetry messages.
    """

    def __init__(
        self,
        host: str,
        port: int,
        device: str,
        status_topic: str | None,
        telemetry_topic: str | None,
        model: Model | None,
        period: float = 5.0,
    ) -> None:
        self.device = device
        self.port = port
        self._host = host
        self._status = status_topic
        self._telemetry = telemetry_topic if model is not None else None
        self._model = model
        self._period = period
        self._up = True
        self._changed = asyncio.Event()
        self.overrides: dict[str, Any] = {}

    @property
    def up(self) -> bool:
        """Whether the device is working."""
        return self._up

    def set_up(self, up: bool) -> None:
        """Take the device down (offline, silent) or bring it back."""
        if up != self._up:
            self._up = up
            self._changed.set()

    async def run(self) -> None:
        """Publish until cancelled, reconnecting after broker loss."""
        while True:
            try:
                await self._session()
            except aiomqtt.MqttError:
                await asyncio.sleep(random.uniform(0.2, 0.6))

    async def _session(self) -> None:
        will = aiomqtt.Will(self._status, b"offline", qos=1, retain=True) if self._status else None
        async with aiomqtt.Client(
            self._host, self.port, identifier=f"sim-{self.device}", will=will, keepalive=10
        ) as client:
            while True:
                if self._status:
                    word = b"online" if self._up else b"offline"
                    await client.publish(self._status, word, qos=1, retain=True)
                if self._up and self._telemetry and self._model:
                    document = {**self._model(time.time()), **self.overrides}
                    await client.publish(self._telemetry, json.dumps(document), qos=1)
                self._changed.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), self._period)
