"""Prometheus exposition of fleet state: one custom collector over the snapshot.

``collect()`` builds metric families fresh from the latest frozen
:class:`~commsmon.core.fleet.Snapshot` on each scrape; it never awaits and
never mutates.  Label values come from the configuration only (ids, kinds,
names, profile reading names), so cardinality is bounded by the inventory.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from commsmon.config import Config
from commsmon.core.fleet import Snapshot
from commsmon.core.outages import OUTAGE_KINDS
from commsmon.core.types import State

__all__ = ["FleetCollector"]

_DEVICE = ["site", "device", "kind"]
_WORKING = (State.UP, State.DEGRADED)


class FleetCollector(Collector):
    """Exposes devices, readings, channels and sites from the latest snapshot.

    Args:
        config: the loaded configuration (profiles give reading metric names).
        snapshot: returns the latest snapshot, or ``None`` before the first.
    """

    def __init__(self, config: Config, snapshot: Callable[[], Snapshot | None]) -> None:
        self._snapshot = snapshot
        # metric name -> help, and per profile: reading -> metric name / enum states
        self._reading_help: dict[str, str] = {}
        self._metric_of: dict[str, dict[str, str]] = {}
        self._enums: dict[str, dict[str, tuple[str, ...]]] = {}
        for name, profile in config.profiles.items():
            metrics = self._metric_of.setdefault(name, {})
            enums = self._enums.setdefault(name, {})
            for reading, spec in profile.readings.items():
                if spec.metric:
                    metrics[reading] = spec.metric
                    self._reading_help.setdefault(spec.metric, spec.help or reading)
                if spec.enum:
                    enums[reading] = tuple(dict.fromkeys([*spec.enum.values(), "other"]))

    def describe(self) -> list[Metric]:
        """Nothing up front: families depend on the inventory, built per scrape."""
        return []

    def collect(self) -> Iterator[Metric]:
        """Build every family from the current snapshot."""
        snap = self._snapshot()
        if snap is None:
            return
        yield from self._devices(snap)
        yield from self._readings(snap)
        yield from self._sites(snap)

    def _devices(self, snap: Snapshot) -> Iterator[Metric]:
        info = GaugeMetricFamily(
            "commsmon_device_info",
            "Inventory of devices (value 1): name, profile and channel from the config.",
            labels=[*_DEVICE, "name", "profile", "channel"],
        )
        up = GaugeMetricFamily(
            "commsmon_device_up",
            "1 if the device works (up or degraded), 0 if down; absent while unknown "
            "(never seen, behind a down parent, or the monitor is cut off).",
            labels=_DEVICE,
        )
        state = GaugeMetricFamily(
            "commsmon_device_state",
            "1 for the device's current state, 0 for the others.",
            labels=[*_DEVICE, "state"],
        )
        seconds = CounterMetricFamily(
            "commsmon_device_state_seconds",
            "Seconds the device spent in each state since the daemon started.",
            labels=[*_DEVICE, "state"],
        )
        since = GaugeMetricFamily(
            "commsmon_device_state_since_timestamp_seconds",
            "When the device entered its current state, Unix epoch seconds.",
            labels=_DEVICE,
        )
        seen = GaugeMetricFamily(
            "commsmon_device_last_seen_timestamp_seconds",
            "When the device last answered, Unix epoch seconds.",
            labels=_DEVICE,
        )
        endurance = GaugeMetricFamily(
            "commsmon_device_endurance_hours",
            "Hours the device keeps power if mains is lost now (own battery plus UPS "
            "runtime plus generator fuel); +Inf if unbounded, absent if unknown.",
            labels=_DEVICE,
        )
        checkin_age = GaugeMetricFamily(
            "commsmon_device_checkin_age_seconds",
            "Seconds since the device's last check-in (test call, roll call).",
            labels=_DEVICE,
        )
        for status in snap.devices.values():
            d = status.device
            labels = [d.site, d.id, d.kind]
            info.add_metric([*labels, d.name, d.profile, d.channel or ""], 1)
            if status.state is not State.UNKNOWN:
                up.add_metric(labels, 1 if status.state in _WORKING else 0)
            since.add_metric(labels, status.since)
            if status.last_seen is not None:
                seen.add_metric(labels, status.last_seen)
            hours = status.endurance.hours if status.endurance else None
            if hours is not None:
                endurance.add_metric(labels, hours)
            if status.checkin is not None:
                checkin_age.add_metric(labels, max(0.0, snap.at - status.checkin.at))
            for s in State:
                state.add_metric([*labels, s.value], 1 if status.state is s else 0)
                seconds.add_metric([*labels, s.value], status.seconds[s])
        yield from (info, up, state, seconds, since, seen, endurance, checkin_age)

    def _readings(self, snap: Snapshot) -> Iterator[Metric]:
        families: dict[str, GaugeMetricFamily] = {}
        enum_family = GaugeMetricFamily(
            "commsmon_reading_state",
            "1 for an enumerated reading's current value (from the device profile), "
            "0 for its other values.",
            labels=[*_DEVICE, "reading", "state"],
        )
        for status in snap.devices.values():
            d = status.device
            labels = [d.site, d.id, d.kind]
            metrics = self._metric_of.get(d.profile, {})
            for reading, value in status.readings.items():
                metric = metrics.get(reading)
                if metric is None or isinstance(value, str):
                    continue
                number = float(value)
                if not math.isfinite(number):
                    continue
                family = families.get(metric)
                if family is None:
                    family = families[metric] = GaugeMetricFamily(
                        f"commsmon_{metric}", self._reading_help[metric], labels=_DEVICE
                    )
                family.add_metric(labels, number)
            for reading, states in self._enums.get(d.profile, {}).items():
                current = status.readings.get(reading)
                if not isinstance(current, str):
                    continue
                for s in states:
                    enum_family.add_metric([*labels, reading, s], 1 if current == s else 0)
        yield from families.values()
        yield enum_family

    def _sites(self, snap: Snapshot) -> Iterator[Metric]:
        info = GaugeMetricFamily(
            "commsmon_site_info",
            "Inventory of sites (value 1): name, town, role and coordinates from the config.",
            labels=["site", "name", "town", "role", "latitude", "longitude"],
        )
        reachable = GaugeMetricFamily(
            "commsmon_site_reachable",
            "1 if at least one channel to the command centre works, 0 if none does "
            "(isolated); absent while unknown.",
            labels=["site"],
        )
        state = GaugeMetricFamily(
            "commsmon_site_state",
            "1 for the site's current state, 0 for the others.",
            labels=["site", "state"],
        )
        seconds = CounterMetricFamily(
            "commsmon_site_state_seconds",
            "Seconds the site spent in each state since the daemon started.",
            labels=["site", "state"],
        )
        channel_up = GaugeMetricFamily(
            "commsmon_site_channel_up",
            "1 if the channel works, 0 if every provider fails; absent while unknown.",
            labels=["site", "channel"],
        )
        channel_state = GaugeMetricFamily(
            "commsmon_site_channel_state",
            "1 for the channel's current state (up, down, unknown), 0 for the others.",
            labels=["site", "channel", "state"],
        )
        ready = GaugeMetricFamily(
            "commsmon_site_scenario_ready",
            "1 if the site keeps a channel for its target hours in the scenario "
            "(network, road, power, all), else 0.",
            labels=["site", "scenario"],
        )
        scenario_hours = GaugeMetricFamily(
            "commsmon_site_scenario_endurance_hours",
            "Hours the site's longest-lasting channel lasts in the scenario; +Inf if "
            "unbounded, absent if no channel works or it is unknown.",
            labels=["site", "scenario"],
        )
        surviving = GaugeMetricFamily(
            "commsmon_site_channels_surviving",
            "Number of channels that last the target hours in the scenario.",
            labels=["site", "scenario"],
        )
        target = GaugeMetricFamily(
            "commsmon_site_target_hours",
            "Hours the site must last on its own in each scenario.",
            labels=["site"],
        )
        outage = GaugeMetricFamily(
            "commsmon_site_outage_active",
            "1 while an outage (power, network, road) is detected or declared at the site.",
            labels=["site", "outage"],
        )
        outage_since = GaugeMetricFamily(
            "commsmon_site_outage_since_timestamp_seconds",
            "When the active outage was first seen or declared, Unix epoch seconds.",
            labels=["site", "outage"],
        )
        for status in snap.sites.values():
            site = status.site
            target.add_metric([site.id], site.target_hours)
            for name, result in status.scenarios.items():
                ready.add_metric([site.id, name], 1 if result.ready else 0)
                surviving.add_metric([site.id, name], len(result.surviving))
                if result.endurance_hours is not None:
                    scenario_hours.add_metric([site.id, name], result.endurance_hours)
            for kind in OUTAGE_KINDS:
                active = status.outages.get(kind)
                outage.add_metric([site.id, kind], 1 if active else 0)
                if active is not None:
                    outage_since.add_metric([site.id, kind], active.since)
            coords = ["" if c is None else f"{c:.5f}" for c in (site.latitude, site.longitude)]
            info.add_metric([site.id, site.name, site.town, site.role, *coords], 1)
            if status.reachable is not None:
                reachable.add_metric([site.id], 1 if status.reachable else 0)
            for s in State:
                state.add_metric([site.id, s.value], 1 if status.state is s else 0)
                seconds.add_metric([site.id, s.value], status.seconds[s])
            for name, channel in status.channels.items():
                if channel.state is not State.UNKNOWN:
                    channel_up.add_metric([site.id, name], 1 if channel.state is State.UP else 0)
                for s in (State.UP, State.DOWN, State.UNKNOWN):
                    channel_state.add_metric(
                        [site.id, name, s.value], 1 if channel.state is s else 0
                    )
        yield from (info, reachable, state, seconds, channel_up, channel_state)
        yield from (ready, scenario_hours, surviving, target, outage, outage_since)
