"""The pure inventory the core works on, compiled from a configuration."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from commsmon.config.devices import DeviceSpec, GeneratorSpec
from commsmon.config.profiles import Profile
from commsmon.core.model import Device, GeneratorCurve, HealthRule, Inventory, PowerFeed, Site
from commsmon.core.readings import CHARGE
from commsmon.core.shared import Shared

if TYPE_CHECKING:
    from commsmon.config.settings import Config

__all__ = ["DEFAULT_CHECKIN_VALIDITY", "MAX_AGE_REPORTS", "build_inventory"]

DEFAULT_CHECKIN_VALIDITY = 7 * 86400.0  # seconds: a weekly roll call
MAX_AGE_REPORTS = 3  # a reading stays true for this many report intervals by default

def build_inventory(config: Config) -> Inventory:
    """The pure inventory the core works on: sites and devices with their health
    rules, power feeds, max ages and check-in validity worked out."""
    sites = [
        Site(s.id, s.name, s.town, s.role, s.latitude, s.longitude,
             s.target_hours or config.defaults.target_hours, s.trap_every,
             s.public_backup_hours if s.public_backup_hours is not None
             else config.defaults.public_backup_hours, s.keeper)
        for s in config.sites
    ]
    devices = []
    health_of: dict[str, tuple[HealthRule, ...]] = {}  # one tuple per profile, shared
    ages_of: dict[tuple[str, float], Mapping[str, float]] = {}  # likewise per cadence
    one = Shared()
    for _, d in config.devices():
        one(d.id)  # first, so that a feed's ref is the very id it names
    for site, d in config.devices():
        profile = config.profiles.get(d.profile) if d.profile else None
        health = health_of.get(d.profile or "")
        if health is None:
            health = health_of[d.profile or ""] = tuple(
                HealthRule(h.reading, h.below, h.above, tuple(h.equals), h.effect,
                           {"zh": h.message.zh, "en": h.message.en})
                for h in (profile.health if profile else [])
            )
        validity = d.checkin_validity or config.defaults.checkin_validity.get(
            d.kind, DEFAULT_CHECKIN_VALIDITY)
        cadence = _cadence(config, d, profile, validity)
        max_age = ages_of.get((d.profile or "", cadence))
        if max_age is None:
            max_age = ages_of[(d.profile or "", cadence)] = _max_ages(
                profile if d.source != "checkin" else None, cadence)
        stale = d.stale_after or (profile.stale_after if profile else None)
        feed = PowerFeed.parse(d.power)
        devices.append(
            Device(
                id=d.id,
                site=site.id,
                kind=d.kind,
                name=d.name or d.id,
                source=d.source,
                profile=one(d.profile or ""),
                channel=d.channel,
                parent=one(d.parent),
                depends_on=tuple(one(needed) for needed in d.depends_on),
                health=health,
                down_after=d.down_after or config.defaults.down_after,
                up_after=d.up_after or config.defaults.up_after,
                stale_after=stale if d.source == "mqtt" else None,
                power=one(PowerFeed(one(feed.kind), one(feed.ref))),
                battery_hours=d.battery_hours,
                generator=one(_curve(d.generator)),
                checkin_validity=validity,
                max_age=max_age,
            )
        )
    return Inventory.build(sites, devices)

def _cadence(config: Config, d: DeviceSpec, profile: Profile | None, validity: float) -> float:
    """Seconds between a device's reports: its poll interval (SNMP), its
    profile's telemetry period (MQTT), its check-in validity (check-ins)."""
    if d.snmp is not None:
        return d.snmp.interval or config.defaults.snmp.interval
    if d.mqtt is not None and profile is not None:
        return profile.telemetry_period
    return validity



def _max_ages(profile: Profile | None, cadence: float) -> Mapping[str, float]:
    """Each reading's ``max_age``: the profile's, else three reports' worth; a check-in's
    charge is true for the check-in's validity (``cadence``)."""
    if profile is None:
        return {CHARGE: cadence}
    return {
        name: spec.max_age if spec.max_age is not None else MAX_AGE_REPORTS * cadence
        for name, spec in profile.readings.items()
    }


def _curve(spec: GeneratorSpec | None) -> GeneratorCurve | None:
    if spec is None:
        return None
    points = tuple(sorted(spec.consumption_lph.items()))
    return GeneratorCurve(points, spec.tank_litres, spec.expected_load)
