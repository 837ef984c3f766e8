"""The whole configuration file: its settings, and its sites."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    Field,
)

from commsmon.config.alerting import AlertingSpec
from commsmon.config.base import Seconds, StrictModel
from commsmon.config.devices import DeviceSpec, SiteSpec, SnmpDefaults
from commsmon.config.inventory import build_inventory
from commsmon.config.profiles import Profile
from commsmon.config.services import HaSpec, HttpSpec, MqttSpec, ShardSpec
from commsmon.config.traps import TrapsSpec
from commsmon.core.accounting import KIT_KINDS
from commsmon.core.drills import Expectations
from commsmon.core.model import DEFAULT_TARGET_HOURS, Inventory
from commsmon.core.types import DeviceKind


class Defaults(StrictModel):
    """Settings devices inherit."""

    snmp: SnmpDefaults = SnmpDefaults()
    down_after: Annotated[int, Field(ge=1)] = 3
    up_after: Annotated[int, Field(ge=1)] = 2
    snmp_concurrency: Annotated[int, Field(ge=1)] = 64
    snmp_backend: Literal["native", "gufo", "pysnmp"] = "native"
    target_hours: Annotated[float, Field(gt=0)] = DEFAULT_TARGET_HOURS
    #: Hours the public network (the operators' base stations) keeps working after
    #: mains is lost; not known by default, so 4G never carries a village through
    #: a power cut unless the operator's figure is written here.
    public_backup_hours: Annotated[float, Field(ge=0)] | None = None
    checkin_validity: dict[DeviceKind, Seconds] = {}


class DrillsSpec(StrictModel):
    """What a drill must show to pass (``drills`` section; see
    :class:`commsmon.core.drills.Expectations`): ``first_contact`` seconds to the first
    test call that gets through, ``survive_hours`` the ``now`` view projects at its end."""

    first_contact: Seconds = 900.0
    survive_hours: Annotated[float, Field(gt=0)] = 72.0

    def expectations(self) -> Expectations:
        """These expectations, for the core."""
        return Expectations(self.first_contact, self.survive_hours)


class KitStandardSpec(StrictModel):
    """The kit every village must have (the "五个一" standard; ``kit_standard``
    section): one device of each of ``kinds`` and, with ``keeper``, a named keeper."""

    kinds: list[DeviceKind] = list(KIT_KINDS)  # type: ignore[arg-type]
    keeper: bool = True


class Settings(StrictModel):
    """Everything in the configuration file but its sites: what a running daemon
    keeps (the sites become the inventory, a fifth of their size).

    Attributes:
        language: what officers read by default — the status table, API
            reasons and messages (receivers may say otherwise): ``zh`` or ``en``.
        profiles_dir: directory of profile YAML files, relative to this file.
        profiles: loaded profiles by name (filled by ``load_config``).
        path: the file it came from (filled by ``load_config``).
        warnings: located warnings about it, ``FILE:LINE: field: message`` (filled
            by ``load_config``; ``commsmon check-config`` prints them).
        history_days: days the timeline (state changes, outages, alerts) and the
            duty log are kept in the state directory (400: the bureau reports by year).
    """

    district: str = ""
    timezone: str = "Asia/Shanghai"
    language: Literal["zh", "en"] = "zh"
    state_dir: str | None = None
    history_days: Annotated[int, Field(ge=1)] = 400
    defaults: Defaults = Defaults()
    mqtt: MqttSpec | None = None
    http: HttpSpec = HttpSpec()
    shard: ShardSpec = ShardSpec()
    ha: HaSpec | None = None
    alerting: AlertingSpec = AlertingSpec()
    traps: TrapsSpec = TrapsSpec()
    drills: DrillsSpec = DrillsSpec()
    kit_standard: KitStandardSpec = KitStandardSpec()
    profiles_dir: str = "profiles"
    profiles: dict[str, Profile] = {}
    path: Path | None = None
    warnings: list[str] = Field(default=[], exclude=True)

    def state_path(self) -> Path:
        """``state_dir``, else systemd's ``$STATE_DIRECTORY``, else ``./state``."""
        chosen = self.state_dir or os.environ.get("STATE_DIRECTORY", "").split(":")[0]
        return Path(chosen or "state")

    def settings(self) -> Settings:
        """These settings alone (a :class:`Config` without its sites)."""
        return Settings.model_construct(**{name: getattr(self, name)
                                           for name in Settings.model_fields})


class Config(Settings):
    """The whole configuration file: its settings and its sites."""

    sites: list[SiteSpec]

    def devices(self) -> Iterator[tuple[SiteSpec, DeviceSpec]]:
        """Every (site, device) pair in file order."""
        for site in self.sites:
            for device in site.devices:
                yield site, device

    def inventory(self) -> Inventory:
        """The pure inventory the core works on (:func:`build_inventory`)."""
        return build_inventory(self)

    def topics(self, site: SiteSpec, device: DeviceSpec) -> tuple[str | None, str | None]:
        """The (status, telemetry) topics of an MQTT device, per its profile."""
        if device.mqtt is None or self.mqtt is None or device.profile is None:
            return None, None
        profile = self.profiles[device.profile]
        base = f"{self.mqtt.topic_prefix}/{site.id}/{device.id}"
        status = device.mqtt.status_topic or f"{base}/status"
        telemetry = device.mqtt.telemetry_topic or f"{base}/telemetry"
        return (status if profile.presence else None, telemetry if profile.telemetry else None)
