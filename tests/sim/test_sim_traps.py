"""The simulated kit's traps reach a real receiver: the drill's mains cut sends the UPS's
upsTrapOnBattery, the restore its alarm-removed trap, and a village's network coming back
its router's linkUp (each from 127.0.0.1 naming the device in snmpTrapAddress.0, as
through the village router's NAT)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from pathlib import Path

import pytest
from pydantic import SecretStr

from commsmon.config.compile import Setup
from commsmon.config.load import load_config
from commsmon.config.traps import TrapsSpec
from commsmon.core.types import Observation
from commsmon.sim.broker import Mosquitto
from commsmon.sim.fleet import SimFleet
from commsmon.sim.ports import free_port
from commsmon.sim.traps import TrapSender
from commsmon.sources.traps.receiver import TrapReceiver
from tests.fleetharness import write_config

pytestmark = pytest.mark.integration

WAIT = 10.0  # seconds: a generous bound on each trap's arrival


async def _until(check: object, changed: asyncio.Event) -> None:
    async with asyncio.timeout(WAIT):
        while not check():  # type: ignore[operator]
            changed.clear()
            await changed.wait()


async def test_the_drill_sends_the_ups_and_router_traps(tmp_path: Path) -> None:
    seen: list[Observation] = []
    polled: list[tuple[str, bool]] = []
    changed = asyncio.Event()

    def sink(obs: Observation) -> None:
        seen.append(obs)
        changed.set()

    def poll_now(device: str, restarted: bool) -> None:
        polled.append((device, restarted))
        changed.set()

    port = free_port(socket.SOCK_DGRAM)
    async with Mosquitto() as broker:
        path, _ = write_config(tmp_path, mqtt_port=broker.port)
        config = load_config(path).model_copy(update={"traps": TrapsSpec(
            listen=[f"127.0.0.1:{port}"], communities=[SecretStr("sim-traps")])})
        receiver = TrapReceiver(Setup.of(config), sink, poll_now, tmp_path / "state")
        listening = asyncio.create_task(receiver.run())
        sender = TrapSender("127.0.0.1", port, "sim-traps")
        try:
            async with SimFleet(config, telemetry_period=1.0, traps=sender) as fleet:
                await fleet.cut_mains("v01")
                await _until(lambda: any(o.device == "v01-ups" for o in seen), changed)
                told = next(o for o in seen if o.device == "v01-ups")
                assert told.unconfirmed and told.readings["output_source"] == "battery"
                polled.clear()
                await fleet.restore_mains("v01")
                await _until(lambda: ("v01-ups", False) in polled, changed)
                fleet.cut_network("v01")
                fleet.restore_network("v01")
                await _until(lambda: ("v01-router", False) in polled, changed)
        finally:
            sender.close()
            listening.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listening
