"""``commsmon demo``: a broker, the simulated fleet and the daemon in one process.

By default the demo also plays a drill of the outages (三断) on a loop so a
person watching sees them detected, told and cleared: every cycle is a quiet
step, then the mains is cut at the first village with a UPS (its generator
starts and burns fuel ``DRILL_SPEED`` times faster than real time), a step
later the public network is cut at the first other village with a 4G camera,
a step later both come back; then the mains is cut at the district centre —
its UPS on battery, its generator on a low tank (:data:`CENTRE_FUEL`) — for
:data:`CENTRE_STEPS` steps, while the centre's own alert goes out and every
village's PDT channel counts down, and the drill ends by topping the tank
back up to where it was.  Each cut is a real drill (演练) at its site, started before
and stopped after it (the keeper's satellite test call half a step into the mains
cut), so each cycle leaves drill records (the console's reports page,
``commsmon report --drill ID``).  Each step is logged (``drill`` event) and announced;
the Chinese status table is printed half a step after each, and the messages
the duty officers' robot would get are printed by a console robot
(:mod:`commsmon.sim.robot`).
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import socket
import time
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

import structlog
from pydantic import HttpUrl, SecretStr

from commsmon.cli.table import render_status
from commsmon.config.alerting import (
    AlertingSpec,
    DingTalkSpec,
    PolicySpec,
    RouteSpec,
    ShiftSpec,
)
from commsmon.config.services import MqttSpec
from commsmon.config.settings import Config
from commsmon.config.traps import TrapsSpec
from commsmon.core.drills import DrillError
from commsmon.core.types import CheckIn
from commsmon.daemon import Daemon
from commsmon.errors import CommsmonError
from commsmon.operations.record import Operations
from commsmon.outputs.api import site_json
from commsmon.outputs.wording import Wording
from commsmon.sim.broker import Mosquitto
from commsmon.sim.fleet import SimFleet
from commsmon.sim.ports import free_port
from commsmon.sim.robot import ConsoleRobot
from commsmon.sim.traps import TrapSender
from commsmon.state.dutylog import Actor

__all__ = [
    "CENTRE_FUEL",
    "CENTRE_STEPS",
    "DRILL_SPEED",
    "DRILL_STEP",
    "TRAP_COMMUNITY",
    "DrillSites",
    "drill_sites",
    "run_demo",
    "run_drill",
]

log = structlog.get_logger("commsmon.demo")

DRILL_STEP = 60.0
"""Seconds between the steps of the drill."""

TRAP_COMMUNITY = "demo-trap"
"""The community the simulated kit's traps carry."""

DRILL_SPEED = 60.0
"""Simulated seconds per real second while the drill runs (a minute burns an hour's fuel)."""

CENTRE_STEPS = 4
"""Steps the district centre's mains stays cut: long enough to watch ``now`` count down."""

CENTRE_FUEL = 0.04
"""The centre generator's tank in the demo, ratio of its 400 L: 16 L, about 8 h at half
load — what a drill finds when nobody has checked the tank."""


class DrillSites(NamedTuple):
    """The sites the drill uses (``None`` where the configuration has none)."""

    mains: str | None  # first village with a UPS
    network: str | None  # first other village with a 4G camera (or a public device)
    centre: str | None  # first site with a device other sites depend on


def drill_sites(config: Config) -> DrillSites:
    """The sites the drill uses: the first village with a UPS (mains cut), the first
    other village with a 4G camera (profile ``camera-4g-presence``) or, lacking one,
    with any ``public``-channel device (network cut), and the district centre: the
    first site holding a device that devices at other sites depend on (mains cut)."""
    villages = [s for s in config.sites if s.role == "village"]
    mains = next((s.id for s in villages if any(d.kind == "ups" for d in s.devices)), None)
    others = [s for s in villages if s.id != mains]
    network = next(
        (s.id for s in others if any(d.profile == "camera-4g-presence" for d in s.devices)),
        next((s.id for s in others if any(d.channel == "public" for d in s.devices)), None),
    )
    needed = {ref for _, d in config.devices() for ref in d.depends_on}
    centre = next((s.id for s in config.sites if any(d.id in needed for d in s.devices)), None)
    return DrillSites(mains, network, centre)


def _centre_gensets(config: Config, site: str | None) -> list[str]:
    return [d.id for s, d in config.devices() if s.id == site and d.kind == "generator"]


async def run_demo(config: Config, *, mqtt_port: int | None = None, drill: bool = True,
                   drill_step: float = DRILL_STEP) -> None:
    """Run until cancelled.

    Args:
        config: the demo configuration (devices on 127.0.0.1).
        mqtt_port: a broker already listening on 127.0.0.1:PORT; ``None``
            starts Mosquitto on a free port.
        drill: play the outage drill on a loop (see :func:`run_drill`), with
            outage time running :data:`DRILL_SPEED` times faster, the centre's
            generator on a low tank, and the status table printed; ``False``
            leaves the fleet healthy and in real time.
        drill_step: seconds between the drill's steps.
    """
    async with contextlib.AsyncExitStack() as stack:
        if mqtt_port is None:
            broker = await stack.enter_async_context(Mosquitto())
            mqtt_port = broker.port
        mqtt = (config.mqtt or MqttSpec()).model_copy(
            update={"host": "127.0.0.1", "port": mqtt_port}
        )
        robot = await stack.enter_async_context(ConsoleRobot(f"SEC{secrets.token_hex(16)}"))
        # The simulated UPSes send their traps to the daemon on a free port (UDP).
        trap_port = free_port(socket.SOCK_DGRAM)
        traps = TrapsSpec(listen=[f"127.0.0.1:{trap_port}"],
                          communities=[SecretStr(TRAP_COMMUNITY)])
        http = config.http
        if http.external_url is None and http.port:  # ack links lead to this console
            http = http.model_copy(update={"external_url": HttpUrl(
                f"http://{http.listen}:{http.port}")})
        config = config.model_copy(update={"mqtt": mqtt, "alerting": _with_robot(config, robot),
                                           "traps": traps, "http": http})
        speed = DRILL_SPEED if drill else 1.0
        sites = drill_sites(config)
        fuel = dict.fromkeys(_centre_gensets(config, sites.centre), CENTRE_FUEL) if drill else {}
        sender = TrapSender("127.0.0.1", trap_port, TRAP_COMMUNITY)
        stack.callback(sender.close)
        fleet = await stack.enter_async_context(SimFleet(config, speed=speed, fuel=fuel,
                                                         traps=sender))
        daemon = Daemon(config)
        task = asyncio.create_task(daemon.run())
        await asyncio.wait(
            [task, asyncio.create_task(daemon.ready.wait())], return_when=asyncio.FIRST_COMPLETED
        )
        helpers: list[asyncio.Task[None]] = []
        if daemon.ready.is_set():
            urls = ", ".join(f"{u}/metrics" for u in daemon.listening)
            print(
                f"\ncommsmon demo: {len(config.sites)} sites, {len(fleet.recording)} SNMP "
                f"agents, {len(fleet.mqtt)} MQTT devices on mosquitto 127.0.0.1:{mqtt_port}\n"
                f"值班台 console: {daemon.listening[0]}/   {_logins(config)}\n"
                f"wall: {daemon.listening[0]}/wall{_wall_query(config)}\n"
                f"metrics: {urls}   robot: {robot.url}   (Ctrl-C to stop)\n",
                flush=True,
            )
            if drill:
                helpers.append(asyncio.create_task(
                    run_drill(fleet, step=drill_step, ops=daemon.operations), name="demo:drill"))
                helpers.append(asyncio.create_task(_show_status(daemon, step=drill_step),
                                                   name="demo:status"))
        try:
            # Shielded: a Ctrl-C first ends the demo's drills (their records need the
            # daemon's store), then stops the daemon.
            await asyncio.shield(task)
        finally:
            for helper in helpers:
                helper.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await helper
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task


def _logins(config: Config) -> str:
    """The demo's console logins as the README gives them (password = login name)."""
    users = config.http.users
    if not users:
        return "(no accounts: read-only)"
    return "login: " + ", ".join(f"{login}/{login} ({u.role})" for login, u in users.items())


def _wall_query(config: Config) -> str:
    token = config.http.wall_token
    return f"?token={token.get_secret_value()}" if token else ""


#: The demo's escalation: (seconds unacknowledged, role) through the console robot.
DEMO_STEPS = ((0.0, "duty"), (120.0, "deputy"), (300.0, "leader"))
#: The demo's roster: (role, name, phone) for today and tomorrow.
DEMO_ROSTER = (("duty", "值班员（演示）", "13800000001"), ("deputy", "副班（演示）", "13800000002"),
               ("leader", "带班领导（演示）", "13800000003"))


def _with_robot(config: Config, robot: ConsoleRobot) -> AlertingSpec:
    """The alerting section with the console robot added (in Chinese, every alert), and
    quick pacing so a watcher sees messages within a minute or two."""
    spec = config.alerting
    receiver = DingTalkSpec.model_validate({
        "name": "demo-robot", "type": "dingtalk", "url": robot.url, "secret": robot.secret,
        "language": "zh"})
    routes = list(spec.routes)
    if routes:
        routes.append(RouteSpec(receivers=["demo-robot"]))
    update: dict[str, object] = {
        "receivers": [*spec.receivers, receiver], "routes": routes,
        "group_wait": min(spec.group_wait, 10.0), "group_interval": min(spec.group_interval, 30.0),
    }
    if not spec.escalation.policies:  # show escalation: officer, deputy after 2 min, leader
        update["escalation"] = spec.escalation.model_copy(update={"policies": [
            PolicySpec.model_validate({"name": "demo", "match": {"severity": ["critical"]},
                                       "steps": [{"after": s, "notify": r, "via": ["demo-robot"]}
                                                 for s, r in DEMO_STEPS]})]})
    if not spec.roster:  # today's demo shift, so each step names someone
        start = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        update["roster"] = [ShiftSpec(start=start, end=start + timedelta(days=2), role=role,
                                      name=name, phone=phone)
                            for role, name, phone in DEMO_ROSTER]
    return spec.model_copy(update=update)


async def _show_status(daemon: Daemon, *, step: float = DRILL_STEP) -> None:
    """Print the status table in Chinese half a step after each drill step, with the ``now``
    reason of every site with an outage of its own, and of the first village one at
    another site (the centre) bears on."""
    await asyncio.sleep(step / 2)
    while True:
        await asyncio.sleep(step)
        snap = daemon.snapshot
        if snap is None:
            continue
        w = Wording("zh", daemon.tz, snap.at)
        sites = [site_json(s, lambda _: None, w, full=False) for s in snap.sites.values()]
        lines = [render_status(sites, language="zh")]
        shown_remote = False
        for site in snap.sites.values():
            now = site.scenarios.get("now")
            if now is None or not now.outages:
                continue
            if not site.outages:  # only another site's outage bears on it
                if shown_remote:
                    continue
                shown_remote = True
            lines.append(f"  {site.site.name}（{site.site.id}）{w.colon}"
                         f"{w.verdict(now.as_fact(), site.site.id)}")
        print("\n" + "\n".join(lines) + "\n", flush=True)


async def run_drill(
    fleet: SimFleet, *, step: float = DRILL_STEP, cycles: int | None = None,
    ops: Operations | None = None,
) -> None:
    """Play the outage drill on ``fleet`` until cancelled (or ``cycles`` are done).

    One cycle, a step apart: quiet; cut the mains at the village of
    :func:`drill_sites`; cut the network at the second; restore both; cut the
    mains at the district centre and hold it :data:`CENTRE_STEPS` steps; restore
    it and top its generators' tanks back up to where they were.  When cancelled
    mid-cycle, whatever it cut is restored first.

    Args:
        fleet: a started fleet.
        step: seconds between steps, default :data:`DRILL_STEP`.
        cycles: how many cycles to play; ``None`` loops forever.
        ops: the daemon's operations: each cut is then a real drill (演练) at its site,
            started before and stopped after it, with the keeper's satellite test call
            half a step into the mains cut — each leaves a drill record.
    """
    sites = drill_sites(fleet.config)
    if sites.mains is None and sites.network is None and sites.centre is None:
        log.warning("drill", step="none", reason="no village with a UPS or a public device")
        return
    tanks = {g: fleet.gensets[g].fuel_litres / fleet.gensets[g].tank_litres
             for g in _centre_gensets(fleet.config, sites.centre) if g in fleet.gensets}
    done = 0
    try:
        while cycles is None or done < cycles:
            await asyncio.sleep(step)
            drills = []
            if sites.mains is not None:
                drills.append(await _start(ops, sites.mains, "power"))
                await _step(fleet, "cut_mains", sites.mains)
                await asyncio.sleep(step / 2)
                await _test_call(ops, fleet, sites.mains)
                await asyncio.sleep(step / 2)
            else:
                await asyncio.sleep(step)
            if sites.network is not None:
                drills.append(await _start(ops, sites.network, "network"))
                await _step(fleet, "cut_network", sites.network)
            await asyncio.sleep(step)
            await _restore(fleet)
            await _stop(ops, drills)
            if sites.centre is not None:
                await asyncio.sleep(step)
                centre = await _start(ops, sites.centre, "power")
                await _step(fleet, "cut_mains", sites.centre)
                await asyncio.sleep(step * CENTRE_STEPS)
                await _restore(fleet)
                await _stop(ops, [centre])
                for genset, ratio in tanks.items():
                    fleet.refuel(genset, ratio)
            done += 1
    finally:
        await asyncio.shield(_restore(fleet))
        if ops is not None:
            for site in list(ops.running_drills()):
                await asyncio.shield(_stop(ops, [site]))


_DEMO_ACTOR = Actor("demo", "", "演示演练")


async def _start(ops: Operations | None, site: str, scenario: str) -> str | None:
    """A real drill at ``site`` (``None`` without the daemon, or when refused: logged)."""
    if ops is None:
        return None
    try:
        drill = await ops.start_drill(site, scenario, None, "演示系统自动演练", _DEMO_ACTOR)
    except DrillError as exc:
        log.warning("drill not started", site=site, error=str(exc))
        return None
    print(f"演练 drill: {drill.id} 开始 / started", flush=True)
    return drill.id


async def _stop(ops: Operations | None, drills: list[str | None]) -> None:
    for drill_id in drills:
        if ops is None or drill_id is None:
            continue
        try:
            drill = await ops.stop_drill(drill_id, _DEMO_ACTOR)
        except DrillError:
            continue  # ended already
        print(f"演练 drill: {drill.id} 结束，记录已保存 / ended, record kept "
              f"(commsmon report --drill {drill.id})", flush=True)


async def _test_call(ops: Operations | None, fleet: SimFleet, site: str) -> None:
    """The keeper's test call from the site's satellite phone (or any phone or radio)."""
    if ops is None:
        return
    kit = [d for s, d in fleet.config.devices() if s.id == site]
    phone = next((d for d in kit if d.kind == "satphone"),
                 next((d for d in kit if d.kind == "pdt_terminal"), None))
    if phone is not None:
        await ops.record_checkin(CheckIn(phone.id, time.time(), True, "管理员（演示）",
                                         "演练测试通话"), _DEMO_ACTOR, "test_call")


_NOTICES = {
    "cut_mains": "切断 {name}（{site}）市电：UPS 转电池，发电机启动 / "
                 "mains cut at {site}: UPS on battery, generator running",
    "restore_mains": "{name}（{site}）市电恢复 / mains back at {site}",
    "cut_network": "切断 {name}（{site}）公网：路由器和摄像机失联 / "
                   "public network cut at {site}: router and cameras silent",
    "restore_network": "{name}（{site}）公网恢复 / public network back at {site}",
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
    print(f"演练 drill: {_NOTICES[step].format(site=site, name=name)}", flush=True)
