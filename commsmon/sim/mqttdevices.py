"""Simulated MQTT devices: presence with a Last Will, and JSON telemetry.

Each device keeps its own session (its own client id), publishes a retained
``online`` on its status topic when its session begins (a birth) and, with
``heartbeat``, again every period as a video platform re-syncing its cameras
would (without: once per session and on change, as a lone 4G camera does),
with a retained ``offline`` Last Will, and
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

from commsmon.aio import raise_if_cancel_swallowed
from commsmon.core.model import GeneratorCurve

__all__ = ["DEFAULT_CURVE", "GensetModel", "SimMqttDevice", "telemetry_for"]

Model = Callable[[float], dict[str, Any]]


DEFAULT_CURVE = GeneratorCurve(((0.5, 1.5), (0.75, 2.0), (1.0, 2.6)), 50.0)
"""Fuel curve of a genset configured without one: an 8 kW diesel set, 50 L tank."""


class GensetModel:
    """A genset controller seen through its gateway: idle on mains, burning fuel without.

    Callable as a telemetry :data:`Model`: ``model(now)`` advances the
    simulated tank to ``now`` and returns the gateway's JSON document
    (``ts``, ``running``, ``mains``, ``fuel_pct``, ``fuel_l``, ``load_pct``,
    ``battery_v``, ``alarms``; see ``config/profiles/genset-gateway.yaml``).

    While mains is present the set stands by (not running, no burn). While it
    is cut the set runs at ``load`` and burns ``curve.litres_per_hour(load)``
    litres per simulated hour; ``speed`` simulated seconds pass per second of
    ``now``. An empty tank stops the set and raises one alarm; fuel never goes
    below 0 and is only replenished by :meth:`set_fuel` (a drill topping it up).

    Args:
        curve: consumption curve and tank; :data:`DEFAULT_CURVE` when ``None``.
            A curve without ``tank_litres`` gets a 50 L tank.
        fuel_ratio: initial fuel, ratio 0-1 of the tank, default 0.82.
        load: load ratio 0-1 while running, default 0.4.
        speed: simulated seconds per second of ``now``, default 1.0 (real
            time); e.g. 3600 burns an hour's fuel each second.

    Raises:
        ValueError: ``fuel_ratio`` outside 0-1, negative ``load`` or
            ``speed`` not above 0.
    """

    def __init__(
        self,
        curve: GeneratorCurve | None = None,
        *,
        fuel_ratio: float = 0.82,
        load: float = 0.4,
        speed: float = 1.0,
    ) -> None:
        if not 0.0 <= fuel_ratio <= 1.0:
            raise ValueError(f"fuel_ratio must be 0-1, got {fuel_ratio}")
        if load < 0:
            raise ValueError(f"load must be >= 0, got {load}")
        if not speed > 0:
            raise ValueError(f"speed must be > 0, got {speed}")
        self.curve = curve or DEFAULT_CURVE
        self.tank_litres = self.curve.tank_litres or 50.0
        self.load = load
        self.speed = speed
        self._fuel = fuel_ratio * self.tank_litres
        self._mains = True
        self._at: float | None = None

    @property
    def mains(self) -> bool:
        """Whether mains is present (the set stands by)."""
        return self._mains

    @property
    def fuel_litres(self) -> float:
        """Fuel in the tank at the last update, litres."""
        return self._fuel

    @property
    def running(self) -> bool:
        """Whether the set runs: mains cut and fuel left."""
        return not self._mains and self._fuel > 0

    def set_mains(self, present: bool, now: float) -> None:
        """Mains comes back (``True``) or is lost (``False``) at ``now`` (epoch seconds)."""
        self._advance(now)
        self._mains = present

    def set_fuel(self, ratio: float, now: float) -> None:
        """The tank holds ``ratio`` (0-1) of its capacity from ``now`` on (refuelled).

        Raises:
            ValueError: ``ratio`` outside 0-1.
        """
        if not 0.0 <= ratio <= 1.0:
            raise ValueError(f"fuel ratio must be 0-1, got {ratio}")
        self._advance(now)
        self._fuel = ratio * self.tank_litres

    def _advance(self, now: float) -> None:
        if self._at is not None and self.running:
            hours = max(0.0, now - self._at) * self.speed / 3600.0
            self._fuel = max(0.0, self._fuel - self.curve.litres_per_hour(self.load) * hours)
        self._at = now if self._at is None else max(self._at, now)

    def __call__(self, now: float) -> dict[str, Any]:
        self._advance(now)
        running = self.running
        return {
            "ts": round(now, 3),
            "running": running,
            "mains": self._mains,
            "fuel_pct": round(100.0 * self._fuel / self.tank_litres, 1),
            "fuel_l": round(self._fuel, 3),
            "load_pct": round(100.0 * self.load) if running else 0,
            "battery_v": "12.9 V",
            "alarms": 0 if self._mains or running else 1,  # out of fuel
        }


def telemetry_for(
    profile: str,
    *,
    generator: GeneratorCurve | None = None,
    fuel_ratio: float = 0.82,
    speed: float = 1.0,
) -> Model | None:
    """A telemetry generator for a profile, or ``None`` for presence-only ones.

    The values are fixed enough to assert on (a genset on mains at 82 % fuel,
    12.9 V) with a little noise where a real reading wanders (signal strength).
    A ``genset-gateway`` gets a fresh :class:`GensetModel` of ``generator``
    with ``fuel_ratio`` and ``speed``; the other arguments are ignored for
    other profiles.
    """
    if profile == "genset-gateway":
        return GensetModel(generator, fuel_ratio=fuel_ratio, speed=speed)

    def satphone(now: float) -> dict[str, Any]:
        return {"ts": round(now, 3), "registered": True, "signal_bars": 4, "battery_pct": 96}

    def pdt(now: float) -> dict[str, Any]:
        return {
            "ts": round(now, 3),
            "registered": True,
            "rssi_dbm": random.randint(-92, -84),
            "battery_pct": 100,
        }

    models: dict[str, Model] = {"satphone-dock": satphone, "pdt-terminal": pdt}
    return models.get(profile)


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
        heartbeat: republish presence every period too, not only when the
            session begins or the device changes.
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
        *,
        heartbeat: bool = True,
    ) -> None:
        self.device = device
        self._heartbeat = heartbeat
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

    def refresh(self) -> None:
        """Publish presence and telemetry now rather than at the next period.

        For a state change a real gateway reports at once (mains lost, set started).
        """
        self._changed.set()

    async def run(self) -> None:
        """Publish until cancelled, reconnecting after broker loss."""
        while True:
            raise_if_cancel_swallowed()
            try:
                await self._session()
            except aiomqtt.MqttError:
                await asyncio.sleep(random.uniform(0.2, 0.6))

    async def _session(self) -> None:
        will = aiomqtt.Will(self._status, b"offline", qos=1, retain=True) if self._status else None
        async with aiomqtt.Client(
            self._host, self.port, identifier=f"sim-{self.device}", will=will, keepalive=10
        ) as client:
            try:
                # A device that publishes only on change must still notice its broker
                # going, as a real one does from its socket: wait on the loss too.
                publisher = asyncio.ensure_future(self._publish(client))
                try:
                    await asyncio.wait([publisher, client._disconnected],
                                       return_when=asyncio.FIRST_COMPLETED)
                finally:
                    if not publisher.done():
                        publisher.cancel()
                        await asyncio.wait([publisher])
                if not publisher.cancelled():
                    publisher.result()
                raise aiomqtt.MqttError("disconnected")
            finally:
                # When the broker goes, aiomqtt 2 leaves the exception of its
                # disconnection future unread (its __aexit__ returns early), and asyncio
                # prints "Future exception was never retrieved": read it.
                gone = client._disconnected
                if gone.done() and not gone.cancelled():
                    gone.exception()

    async def _publish(self, client: aiomqtt.Client) -> None:
        announced: bool | None = None  # presence published in this session
        while True:
            raise_if_cancel_swallowed()
            # Cleared before publishing: a change made while a publish is
            # awaited is published in the next round, not a period later.
            self._changed.clear()
            if self._status and (self._heartbeat or announced is not self._up):
                announced = self._up
                word = b"online" if self._up else b"offline"
                await client.publish(self._status, word, qos=1, retain=True)
            if self._up and self._telemetry and self._model:
                document = {**self._model(time.time()), **self.overrides}
                await client.publish(self._telemetry, json.dumps(document), qos=1)
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for swallows
            # a cancellation that arrives as the event is set (a refresh()
            # racing close()), and the device would then publish forever.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._period):
                    await self._changed.wait()
