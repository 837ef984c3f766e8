"""The simulated fleet behind a configuration: SNMP agents and MQTT devices.

Every SNMP device of the configuration that points at 127.0.0.1 gets its own
UDP port (a cuttable :class:`~commsmon.sim.links.UdpLink`) in front of one
shared snmpsim process, which picks the device's recording by its community
(the demo uses the device id).  Every MQTT device gets a
:class:`~commsmon.sim.mqttdevices.SimMqttDevice`.  The fleet can take a device
or a whole site down and bring it back, and play two of the three outages
(三断) on a site:

* power (:meth:`SimFleet.cut_mains`): RFC 1628 UPSes go on battery
  (upsOutputSource 5, upsSecondsOnBattery counting, upsEstimatedMinutesRemaining
  falling from 30, upsInputLineBads + 1), gensets start and burn fuel
  (:class:`~commsmon.sim.mqttdevices.GensetModel`), a Hytera repeater reports
  rptSupplyPowerType 1 (battery);
* network (:meth:`SimFleet.cut_network`): the site's ``public``-channel devices
  and everything reached through them (``parent`` chains) stop answering.

The third, road, is declared by an operator, not seen on the wire.  Outage time
runs ``speed`` times faster than real time (fuel burnt, seconds on battery).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from commsmon.aio import raise_if_cancel_swallowed
from commsmon.config.settings import Config
from commsmon.sim._process import Service
from commsmon.sim.links import LinkSet
from commsmon.sim.mqttdevices import GensetModel, SimMqttDevice, telemetry_for
from commsmon.sim.snmpagents import SnmprecValue, SnmpSimulator
from commsmon.sim.traps import TrapSender

__all__ = [
    "RECORDINGS",
    "RPT_SUPPLY_POWER_TYPE",
    "UPS_BATTERY_MINUTES",
    "UPS_ESTIMATED_MINUTES_REMAINING",
    "UPS_INPUT_LINE_BADS",
    "UPS_OUTPUT_SOURCE",
    "UPS_SECONDS_ON_BATTERY",
    "SimFleet",
]

#: profile -> recordings served for it, used in turn (real devices from
#: snmpsim-data where one exists, our own for the repeater and the router).
RECORDINGS: dict[str, tuple[str, ...]] = {
    "hikvision-camera": ("camera/hikvision",),
    "ups-rfc1628": ("UPS/huawei-gse200m", "UPS/phoenixtec-power"),
    "hytera-repeater": ("hytera-repeater",),
    "router-mib2": ("router-live",),
}

UPS_OUTPUT_SOURCE = "1.3.6.1.2.1.33.1.4.1.0"
"""UPS-MIB upsOutputSource (RFC 1628), INTEGER: 3 normal, 5 battery."""
UPS_SECONDS_ON_BATTERY = "1.3.6.1.2.1.33.1.2.2.0"
"""UPS-MIB upsSecondsOnBattery, INTEGER seconds, 0 on mains."""
UPS_ESTIMATED_MINUTES_REMAINING = "1.3.6.1.2.1.33.1.2.3.0"
"""UPS-MIB upsEstimatedMinutesRemaining, INTEGER minutes."""
UPS_INPUT_LINE_BADS = "1.3.6.1.2.1.33.1.3.1.0"
"""UPS-MIB upsInputLineBads, Counter32: times the input went out of tolerance."""
RPT_SUPPLY_POWER_TYPE = "1.3.6.1.4.1.40297.1.2.1.2.11.0"
"""HYTERA-REPEATER-MIB rptSupplyPowerType, INTEGER: 0 DC, 1 battery."""

UPS_BATTERY_MINUTES = 30
"""upsEstimatedMinutesRemaining when a simulated UPS goes on battery."""

_CLOSE_WITHIN = 10.0  # seconds the devices get to stop
_BATTERY_TICK = 2.0  # real seconds between updates of the on-battery UPS counters
_UPS_PROFILE = "ups-rfc1628"
_REPEATER_PROFILE = "hytera-repeater"
_ROUTER_PROFILE = "router-mib2"

log = structlog.get_logger("commsmon.sim")


@dataclass
class _MainsCut:
    """A site's mains outage in progress."""

    started: float  # time.monotonic() at the cut
    saved: dict[str, SnmprecValue | None] = field(default_factory=dict)  # UPS -> minutes
    ticker: asyncio.Task[None] | None = None


class SimFleet(Service):
    """Serves the devices of ``config`` on 127.0.0.1 until closed.

    Args:
        config: a loaded configuration whose SNMP hosts are 127.0.0.1 and
            whose ``mqtt`` points at the broker to publish to.
        telemetry_period: seconds between MQTT telemetry messages.
        heartbeat: MQTT devices republish presence every telemetry period
            (a platform re-syncing); ``False``: once per session and on change.
        skip: ids of devices served by something else (a real snmpd).
        speed: simulated seconds per real second during outages (fuel burnt,
            seconds on battery), default 1.0; the demo uses 60, tests 3600.
        fuel: genset id -> initial fuel, ratio 0-1 of its tank; gensets not
            named start at 0.82.

    Attributes:
        gensets: genset id -> its telemetry model (fuel, running).
        speed: as given.

    Raises:
        ValueError: an SNMP device not on 127.0.0.1, ``speed`` not above 0
            or a fuel ratio outside 0-1.
    """

    def __init__(
        self,
        config: Config,
        *,
        telemetry_period: float = 5.0,
        skip: Collection[str] = (),
        speed: float = 1.0,
        fuel: Mapping[str, float] | None = None,
        heartbeat: bool = True,
        traps: TrapSender | None = None,
    ) -> None:
        if not speed > 0:
            raise ValueError(f"speed must be > 0, got {speed}")
        self.config = config
        self.speed = speed
        self.links = LinkSet()
        self.recording: dict[str, str] = {}
        self.mqtt: dict[str, SimMqttDevice] = {}
        self.gensets: dict[str, GensetModel] = {}
        self._ports: dict[str, int] = {}
        self._community: dict[str, str] = {}
        self._mains_cut: dict[str, _MainsCut] = {}
        self._network_cut: set[str] = set()
        self._outage_lock = asyncio.Lock()
        self.traps = traps
        self._trap_address = {
            d.id: str(d.snmp.trap_from[0])
            for _, d in config.devices() if d.snmp is not None and d.snmp.trap_from}
        curves = config.inventory().devices
        fuel = fuel or {}
        communities: dict[str, str] = {}
        turn: dict[str, int] = {}
        for site, device in config.devices():
            if device.id in skip:
                continue
            if device.snmp is not None and device.profile in RECORDINGS:
                if device.snmp.host != "127.0.0.1":
                    raise ValueError(f"{device.id}: the sim serves 127.0.0.1 only")
                options = RECORDINGS[device.profile]
                n = turn[device.profile] = turn.get(device.profile, -1) + 1
                self.recording[device.id] = options[n % len(options)]
                snmp = device.snmp.resolve(config.defaults.snmp)
                community = snmp.community.get_secret_value()
                communities[community] = self.recording[device.id]
                self._community[device.id] = community
                self._ports[device.id] = snmp.port
            elif device.mqtt is not None and config.mqtt is not None and device.profile:
                status, telemetry = config.topics(site, device)
                model = telemetry_for(
                    device.profile,
                    generator=curves[device.id].generator,
                    fuel_ratio=fuel.get(device.id, 0.82),
                    speed=speed,
                )
                if isinstance(model, GensetModel):
                    self.gensets[device.id] = model
                self.mqtt[device.id] = SimMqttDevice(
                    config.mqtt.host,
                    config.mqtt.port,
                    device.id,
                    status,
                    telemetry,
                    model,
                    telemetry_period,
                    heartbeat=heartbeat,
                )
        self.agents = SnmpSimulator(communities)
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        """Start snmpsim, the links and the MQTT devices; on failure stop what started."""
        try:
            await self.agents.start()
            upstream = ("127.0.0.1", self.agents.port)
            await self.links.start({d: (port, upstream) for d, port in self._ports.items()})
        except BaseException:
            await self.close()
            raise
        self._tasks = [
            asyncio.create_task(dev.run(), name=f"sim:{d}") for d, dev in self.mqtt.items()
        ]

    async def close(self) -> None:
        """Stop everything (outages in progress are dropped, not restored)."""
        for cut in self._mains_cut.values():
            await _cancel(cut.ticker)
        self._mains_cut.clear()
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            # Bounded: a device's MQTT client whose broker was killed can sit in its
            # disconnect for ever; the loop's shutdown cancels what is left.
            _, stuck = await asyncio.wait(self._tasks, timeout=_CLOSE_WITHIN)
            if stuck:
                log.warning("simulated devices did not stop in time",
                            devices=sorted(t.get_name() for t in stuck))
        await self.links.close()
        await self.agents.close()

    def site_devices(self, site: str) -> list[str]:
        """Ids of the devices of ``site``."""
        return [d.id for s, d in self.config.devices() if s.id == site]

    def take_down(self, ids: Iterable[str]) -> None:
        """Make devices stop answering (SNMP packets dropped, MQTT offline)."""
        self._set(ids, up=False)

    def bring_up(self, ids: Iterable[str]) -> None:
        """Make devices answer again."""
        self._set(ids, up=True)

    def _set(self, ids: Iterable[str], *, up: bool) -> None:
        for device_id in ids:
            if device_id in self._ports:
                (self.links.restore if up else self.links.cut)([device_id])
            elif device_id in self.mqtt:
                self.mqtt[device_id].set_up(up)

    # --- outages (三断) ---------------------------------------------------------

    @property
    def mains_cut(self) -> frozenset[str]:
        """Sites whose mains is cut."""
        return frozenset(self._mains_cut)

    @property
    def network_cut(self) -> frozenset[str]:
        """Sites whose public network is cut."""
        return frozenset(self._network_cut)

    async def cut_mains(self, site: str) -> None:
        """Cut the mains at ``site``: its kit falls back on batteries and gensets.

        UPSes (profile ``ups-rfc1628``) go on battery: upsOutputSource 5,
        upsSecondsOnBattery from 0 counting up in simulated time,
        upsEstimatedMinutesRemaining from :data:`UPS_BATTERY_MINUTES` down to 0,
        upsInputLineBads one more (added when the recording lacks it).
        Gensets start and burn fuel; a Hytera repeater reports
        rptSupplyPowerType 1 (battery). Returns once snmpsim serves the new
        values. Does nothing when the mains is already cut there.

        Raises:
            KeyError: unknown site.
        """
        self._check_site(site)
        async with self._outage_lock:
            if site in self._mains_cut:
                return
            cut = self._mains_cut[site] = _MainsCut(time.monotonic())
            self._set_gensets(site, mains=False)
            for device in self._served(site, _UPS_PROFILE):
                community = self._community[device]
                recorded = await asyncio.to_thread(
                    _records,
                    self.agents.data_file(community),
                    (UPS_ESTIMATED_MINUTES_REMAINING, UPS_INPUT_LINE_BADS),
                )
                cut.saved[device] = recorded.get(UPS_ESTIMATED_MINUTES_REMAINING)
                _, bads = recorded.get(UPS_INPUT_LINE_BADS, ("65", 0))
                await self.agents.set_values(
                    community,
                    {
                        UPS_OUTPUT_SOURCE: ("2", 5),
                        UPS_SECONDS_ON_BATTERY: ("2", 0),
                        UPS_ESTIMATED_MINUTES_REMAINING: ("2", UPS_BATTERY_MINUTES),
                        UPS_INPUT_LINE_BADS: ("65", (int(bads) + 1) % 2**32),
                    },
                )
                self._trap(device, "on_battery", minutes=UPS_BATTERY_MINUTES, seconds=0)
            for device in self._served(site, _REPEATER_PROFILE):
                await self.agents.set_values(
                    self._community[device], {RPT_SUPPLY_POWER_TYPE: ("2", 1)}
                )
            if cut.saved:
                cut.ticker = asyncio.create_task(
                    self._on_battery(site, cut), name=f"sim:on-battery:{site}"
                )

    async def restore_mains(self, site: str) -> None:
        """Bring the mains back at ``site``: UPSes back to normal, gensets stop.

        upsOutputSource 3, upsSecondsOnBattery 0, upsEstimatedMinutesRemaining
        as recorded (upsInputLineBads keeps its count); gensets stand by
        with the fuel they have left; the repeater reports DC (0). Does
        nothing when the mains is not cut there.

        Raises:
            KeyError: unknown site.
        """
        self._check_site(site)
        async with self._outage_lock:
            cut = self._mains_cut.pop(site, None)
            if cut is None:
                return
            await _cancel(cut.ticker)
            self._set_gensets(site, mains=True)
            for device, minutes in cut.saved.items():
                await self.agents.set_values(
                    self._community[device],
                    {
                        UPS_OUTPUT_SOURCE: ("2", 3),
                        UPS_SECONDS_ON_BATTERY: ("2", 0),
                        UPS_ESTIMATED_MINUTES_REMAINING: minutes,
                    },
                )
                self._trap(device, "alarm_removed")
            for device in self._served(site, _REPEATER_PROFILE):
                await self.agents.set_values(
                    self._community[device], {RPT_SUPPLY_POWER_TYPE: ("2", 0)}
                )

    def refuel(self, genset: str, ratio: float) -> None:
        """Fill ``genset``'s tank to ``ratio`` (0-1) now, as a drill's crew would.

        Raises:
            KeyError: not a simulated genset.
            ValueError: ``ratio`` outside 0-1.
        """
        self.gensets[genset].set_fuel(ratio, time.time())
        self.mqtt[genset].refresh()

    def cut_network(self, site: str) -> list[str]:
        """Cut the public network at ``site``; returns the ids that went silent.

        Its devices on the ``public`` channel stop answering (SNMP packets
        dropped, MQTT presence ``offline``), and so does every device reached
        through one of them (``parent`` chains, e.g. the camera and the UPS
        behind the 4G router). Other channels keep reporting. The router sends no
        linkDown: a real one's could not leave through the uplink that went; it
        sends linkUp (IF-MIB, its ``uplink_ifindex``) when :meth:`restore_network`
        brings the uplink back.

        Raises:
            KeyError: unknown site.
        """
        ids = self._behind_public(site)
        self._network_cut.add(site)
        self.take_down(ids)
        return ids

    def restore_network(self, site: str) -> list[str]:
        """Bring the public network of ``site`` back; returns the ids restored.

        Every device :meth:`cut_network` silences answers again, also one
        taken down on its own with :meth:`take_down`.

        Raises:
            KeyError: unknown site.
        """
        ids = self._behind_public(site)
        self._network_cut.discard(site)
        self.bring_up(ids)
        for _, d in self.config.devices():
            if d.id in ids and d.profile == _ROUTER_PROFILE:
                self._trap(d.id, "link_up", ifindex=int(d.params.get("uplink_ifindex", 1)))
        return ids

    def _check_site(self, site: str) -> None:
        if not any(s.id == site for s in self.config.sites):
            raise KeyError(site)

    def _served(self, site: str, profile: str) -> list[str]:
        """Ids of ``site``'s devices with ``profile`` that snmpsim serves."""
        return [
            d.id
            for s, d in self.config.devices()
            if s.id == site and d.profile == profile and d.id in self._community
        ]

    def _set_gensets(self, site: str, *, mains: bool) -> None:
        now = time.time()
        for device in self.site_devices(site):
            if device in self.gensets:
                self.gensets[device].set_mains(mains, now)
                self.mqtt[device].refresh()

    def _behind_public(self, site: str) -> list[str]:
        self._check_site(site)
        children: dict[str, list[str]] = {}
        for _, d in self.config.devices():
            if d.parent is not None:
                children.setdefault(d.parent, []).append(d.id)
        todo = [d.id for s, d in self.config.devices() if s.id == site and d.channel == "public"]
        found: list[str] = []
        while todo:
            device = todo.pop(0)
            if device not in found:
                found.append(device)
                todo += children.get(device, [])
        return found

    async def _on_battery(self, site: str, cut: _MainsCut) -> None:
        """Count the UPSes' time on battery up, their minutes left down, until cancelled;
        repeat upsTrapOnBattery every 60 s of simulated time (RFC 1628 §3.4)."""
        repeated = 0
        while True:
            # set_values waits for snmpsim's answer with wait_for, which on 3.11 can
            # drop the cancel close() sends: close() would then await this for ever.
            raise_if_cancel_swallowed()
            await asyncio.sleep(_BATTERY_TICK)
            seconds = (time.monotonic() - cut.started) * self.speed
            minutes = max(0, round(UPS_BATTERY_MINUTES - seconds / 60))
            again = int(seconds // 60) > repeated
            repeated = int(seconds // 60)
            for device in cut.saved:
                if again:
                    self._trap(device, "on_battery", minutes=minutes, seconds=int(seconds))
                await self.agents.set_values(
                    self._community[device],
                    {
                        UPS_SECONDS_ON_BATTERY: ("2", int(seconds)),
                        UPS_ESTIMATED_MINUTES_REMAINING: ("2", minutes),
                    },
                )


    def _trap(self, device: str, kind: str, **values: int) -> None:
        """Send ``device``'s trap if traps are on and it has an address to name."""
        address = self._trap_address.get(device)
        if self.traps is None or address is None:
            return
        if kind == "on_battery":
            self.traps.on_battery(address, values["minutes"], values["seconds"])
        elif kind == "link_up":
            self.traps.link_up(address, values["ifindex"])
        else:
            self.traps.alarm_removed(address)


async def _cancel(task: asyncio.Task[None] | None) -> None:
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def _records(path: Path, oids: Collection[str]) -> dict[str, SnmprecValue]:
    """The ``(tag, value)`` of each of ``oids`` found in an snmprec file."""
    found: dict[str, SnmprecValue] = {}
    for line in path.read_text(encoding="ascii", errors="replace").splitlines():
        oid, _, rest = line.strip().partition("|")
        if oid in oids:
            tag, _, value = rest.partition("|")
            found[oid] = (tag, value)
    return found
