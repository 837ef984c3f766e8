"""``commsmon demo``: a broker, the simulated fleet and the daemon in one process.

By default the demo also plays a drill of the outages (三断) on a loop so a
person watching the metrics sees them detected and cleared: every cycle is a
quiet step, then the mains is cut at the first village with a UPS (its
generator starts and burns fuel ``DRILL_SPEED`` times faster than real time), a
step later the public network is cut at the first other village with a 4G
camera, and a step later both come back. Each step is logged (``drill``
event) and announced on stdout.
"""

from __future__ import annotations

import asyncio
import contextlib

import structlog

from commsmon.config import Config, MqttSpec
from commsmon.daemon import Daemon
from commsmon.errors import CommsmonError
from commsmon.sim.broker import Mosquitto
from commsmon.sim.fleet import SimFleet

__all__ = ["DRILL_SPEED", "DRILL_STEP", "drill_sites", "run_demo", "run_drill"]

log = structlog.get_logger("commsmon.demo")

DRILL_STEP = 60.0
"""Seconds between the steps of the drill (a whole cycle is three steps)."""

DRILL_SPEED = 60.0
"""Simulated seconds per real second while the drill runs (a minute burns an hour's fuel)."""


async def run_demo(config: Config, *, mqtt_port: int | None = None, drill: bool = True) -> None:
    """Run until cancelled.

    Args:
        config: the demo configuration (devices on 127.0.0.1).
        mqtt_port: a broker already listening on 127.0.0.1:PORT; ``None``
            starts Mosquitto on a free port.
        drill: play the outage drill on a loop (see :func:`run_drill`), with
            outage time running :data:`DRILL_SPEED` times faster; ``False``
            leaves the fleet healthy and in real time.
    """
    async with contextlib.AsyncExitStack() as stack:
        if mqtt_port is None:
            broker = await stack.enter_async_context(Mosquitto())
            mqtt_port = broker.port
        mqtt = (config.mqtt or MqttSpec()).model_copy(
            update={"host": "127.0.0.1", "port": mqtt_port}
        )
        config = config.model_copy(update={"mqtt": mqtt})
        speed = DRILL_SPEED if drill else 1.0
        fleet = await stack.enter_async_context(SimFleet(config, speed=speed))
        daemon = Daemon(config)
        task = asyncio.create_task(daemon.run())
        await asyncio.wait(
            [task, asyncio.create_task(daemon.ready.wait())], return_when=asyncio.FIRST_COMPLETED
        )
        drilling: asyncio.Task[None] | None = None
        if daemon.ready.is_set():
            urls = ", ".join(f"{u}/metrics" for u in daemon.listening)
            print(
                f"\ncommsmon demo: {len(config.sites)} sites, {len(fleet.recording)} SNMP "
                f"agents, {len(fleet.mqtt)} MQTT devices on mosquitto 127.0.0.1:{mqtt_port}\n"
                f"metrics: {urls}   (Ctrl-C to stop)\n",
                flush=True,
            )
            if drill:
                drilling = asyncio.create_task(run_drill(fleet), name="demo:drill")
        try:
            await task
        finally:
            if drilling is not None:
                drilling.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await drilling


def drill_sites(config: Config) -> tuple[str | None, str | None]:
    """The villages the drill uses: (mains cut, network cut).

    The first village with a UPS, and the first other village with a 4G
    camera (profile ``camera-4g-presence``) -- or, lacking one, with any
    ``public``-channel device. ``None`` where no village qualifies.
    """
    villages = [s for s in config.sites if s.role == "village"]
    mains = next((s.id for s in villages if any(d.kind == "ups" for d in s.devices)), None)
    others = [s for s in villages if s.id != mains]
    network = next(
        (s.id for s in others if any(d.profile == "camera-4g-presence" for d in s.devices)),
        next((s.id for s in others if any(d.channel == "public" for d in s.devices)), None),
    )
    return mains, network


async def run_drill(
    fleet: SimFleet, *, step: float = DRILL_STEP, cycles: int | None = None
) -> None:
    """Play the outage drill on ``fleet`` until cancelled (or ``cycles`` are done).

    One cycle, a step apart: quiet; cut the mains at the first village of
    :func:`drill_sites`; cut the network at the second; restore both. When
    cancelled mid-cycle, whatever it cut is restored first.

    Args:
        fleet: a started fleet.
        step: seconds between steps, default :data:`DRILL_STEP`.
        cycles: how many cycles to play; ``None`` loops forever.
    """
    mains_site, network_site = drill_sites(fleet.config)
    if mains_site is None and network_site is None:
        log.warning("drill", step="none", reason="no village with a UPS or a public device")
        return
    done = 0
    try:
        while cycles is None or done < cycles:
            await asyncio.sleep(step)
            if mains_site is not None:
                await _step(fleet, "cut_mains", mains_site)
            await asyncio.sleep(step)
            if network_site is not None:
                await _step(fleet, "cut_network", network_site)
            await asyncio.sleep(step)
            await _restore(fleet)
            done += 1
    finally:
        await asyncio.shield(_restore(fleet))


_NOTICES = {
    "cut_mains": "mains cut at {site} {name}: UPS on battery, generator running",
    "restore_mains": "mains back at {site} {name}",
    "cut_network": "public network cut at {site} {name}: router and cameras silent",
    "restore_network": "public network back at {site} {name}",
}


async def _restore(fleet: SimFleet) -> None:
    for site in sorted(fleet.mains_cut):
        await _step(fleet, "restore_mains", site)
    for site in sorted(fleet.network_cut):
        await _step(fleet, "restore_network", site)


async def _step(fleet: SimFleet, step: str, site: str) -> None:
    """Play one step, log it and tell the person watching; a failure is logged, not raised."""
    try:
        if step == "cut_mains":
            await fleet.cut_mains(site)
        elif step == "restore_mains":
            await fleet.restore_mains(site)
        elif step == "cut_network":
            fleet.cut_network(site)
        else:
            fleet.restore_network(site)
    except (CommsmonError, OSError) as exc:
        log.warning("drill failed", step=step, site=site, error=str(exc))
        return
    log.info("drill", step=step, site=site)
    name = next((s.name for s in fleet.config.sites if s.id == site), "")
    print(f"drill: {_NOTICES[step].format(site=site, name=name)}", flush=True)
