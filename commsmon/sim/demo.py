"""``commsmon demo``: a broker, the simulated fleet and the daemon in one process."""

from __future__ import annotations

import asyncio
import contextlib

import structlog

from commsmon.config import Config, MqttSpec
from commsmon.daemon import Daemon
from commsmon.sim.broker import Mosquitto
from commsmon.sim.fleet import SimFleet

__all__ = ["run_demo"]

log = structlog.get_logger("commsmon.demo")


async def run_demo(config: Config, *, mqtt_port: int | None = None) -> None:
    """Run until cancelled.

    Args:
        config: the demo configuration (devices on 127.0.0.1).
        mqtt_port: a broker already listening on 127.0.0.1:PORT; ``None``
            starts Mosquitto on a free port.
    """
    async with contextlib.AsyncExitStack() as stack:
        if mqtt_port is None:
            broker = await stack.enter_async_context(Mosquitto())
            mqtt_port = broker.port
        mqtt = (config.mqtt or MqttSpec()).model_copy(
            update={"host": "127.0.0.1", "port": mqtt_port}
        )
        config = config.model_copy(update={"mqtt": mqtt})
        fleet = await stack.enter_async_context(SimFleet(config))
        daemon = Daemon(config)
        task = asyncio.create_task(daemon.run())
        await asyncio.wait(
            [task, asyncio.create_task(daemon.ready.wait())], return_when=asyncio.FIRST_COMPLETED
        )
        if daemon.ready.is_set():
            urls = ", ".join(f"{u}/metrics" for u in daemon.listening)
            print(
                f"\ncommsmon demo: {len(config.sites)} sites, {len(fleet.recording)} SNMP "
                f"agents, {len(fleet.mqtt)} MQTT devices on mosquitto 127.0.0.1:{mqtt_port}\n"
                f"metrics: {urls}   (Ctrl-C to stop)\n",
                flush=True,
            )
        await task
