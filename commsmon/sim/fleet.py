"""The simulated fleet behind a configuration: SNMP agents and MQTT devices.

Every SNMP device of the configuration that points at 127.0.0.1 gets its own
UDP port (a cuttable :class:`~commsmon.sim.links.UdpLink`) in front of one
shared snmpsim process, which picks the device's recording by its community
(the demo uses the device id).  Every MQTT device gets a
:class:`~commsmon.sim.mqttdevices.SimMqttDevice`.  The fleet can take a device
or a whole site down and bring it back.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Collection, Iterable
from types import TracebackType

from commsmon.config import Config
from commsmon.sim.links import LinkSet
from commsmon.sim.mqttdevices import SimMqttDevice, telemetry_for
from commsmon.sim.snmpagents import SnmpSimulator

__all__ = ["RECORDINGS", "SimFleet"]

#: profile -> recordings served for it, used in turn (real devices from
#: snmpsim-data where one exists, our own for the repeater and the router).
RECORDINGS: dict[str, tuple[str, ...]] = {
    "hikvision-camera": ("camera/hikvision",),
    "ups-rfc1628": ("UPS/huawei-gse200m", "UPS/phoenixtec-power"),
    "hytera-repeater": ("hytera-repeater",),
    "router-mib2": ("router",),
}


class SimFleet:
    """Serves the devices of ``config`` on 127.0.0.1 until closed.

    Args:
        config: a loaded configuration whose SNMP hosts are 127.0.0.1 and
            whose ``mqtt`` points at the broker to publish to.
        telemetry_period: seconds between MQTT telemetry messages.
        skip: ids of devices served by something else (a real snmpd).
    """

    def __init__(
        self, config: Config, *, telemetry_period: float = 5.0, skip: Collection[str] = ()
    ) -> None:
        self.config = config
        self.links = LinkSet()
        self.recording: dict[str, str] = {}
        self.mqtt: dict[str, SimMqttDevice] = {}
        self._ports: dict[str, int] = {}
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
                communities[snmp.community.get_secret_value()] = self.recording[device.id]
                self._ports[device.id] = snmp.port
            elif device.mqtt is not None and config.mqtt is not None and device.profile:
                status, telemetry = config.topics(site, device)
                self.mqtt[device.id] = SimMqttDevice(
                    config.mqtt.host,
                    config.mqtt.port,
                    device.id,
                    status,
                    telemetry,
                    telemetry_for(device.profile),
                    telemetry_period,
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
        """Stop everything."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.links.close()
        await self.agents.close()

    async def __aenter__(self) -> SimFleet:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

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
