"""The sites and devices of the inventory file, and how each device is observed."""

from __future__ import annotations

import codecs
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    Field,
    IPvAnyAddress,
    SecretStr,
    field_validator,
    model_validator,
)

from commsmon.config.base import Identifier, Port, Seconds, StrictModel
from commsmon.core.model import PowerFeed
from commsmon.core.types import ChannelName, DeviceKind


class SnmpUserSpec(StrictModel):
    """An SNMPv3 (USM, RFC 3414 / RFC 7860 / RFC 3826) user.

    The security level follows from what is given: both passwords authPriv,
    ``auth_password`` alone authNoPriv, neither noAuthNoPriv.  Passwords are
    secrets: give them as ``${file:...}``, ``${env:...}`` or
    ``${credential:...}`` references, never inline in a shared file.

    Attributes:
        name: the USM user name (securityName).
        auth_protocol: HMAC for authentication; SHA-2 (``sha256`` and up) unless
            the agent only knows older ones.
        auth_password: at least 8 characters (RFC 3414 §11.2).
        priv_protocol: cipher for privacy; ``aes`` is AES-128 (RFC 3826).
        priv_password: at least 8 characters.
    """

    name: str = Field(min_length=1)
    auth_protocol: Literal["md5", "sha", "sha224", "sha256", "sha384", "sha512"] = "sha256"
    auth_password: SecretStr | None = None
    priv_protocol: Literal["des", "aes", "aes192", "aes256"] = "aes"
    priv_password: SecretStr | None = None

    @model_validator(mode="after")
    def _check(self) -> SnmpUserSpec:
        for field_name in ("auth_password", "priv_password"):
            secret = getattr(self, field_name)
            if secret is not None and len(secret.get_secret_value()) < 8:
                raise ValueError(f"{field_name} must be at least 8 characters (RFC 3414)")
        if self.priv_password is not None and self.auth_password is None:
            raise ValueError("privacy needs authentication: give auth_password too")
        return self


class SnmpDefaults(StrictModel):
    """SNMP settings every target inherits unless it says otherwise.

    Attributes:
        user: the SNMPv3 user, for ``version: v3``.
    """

    port: Port = 161
    version: Literal["v1", "v2c", "v3"] = "v2c"
    community: SecretStr = SecretStr("public")
    user: SnmpUserSpec | None = None
    timeout: Seconds = 2.0
    retries: Annotated[int, Field(ge=0, le=10)] = 1
    interval: Seconds = 60.0

    @model_validator(mode="after")
    def _v3_user(self) -> SnmpDefaults:
        if self.version == "v3" and self.user is None:
            raise ValueError("version v3 needs a 'user'")
        return self


#: SnmpSpec fields of the target alone, not in ``defaults.snmp``.
_TARGET_ONLY = frozenset({"host", "charset", "reply_from", "trap_from", "engine_id"})


class SnmpSpec(StrictModel):
    """A device's SNMP agent; unset fields come from ``defaults.snmp``.

    Attributes:
        host: IPv4 address or host name of the agent.
        timeout: seconds per attempt.
        retries: attempts after the first.
        interval: seconds between polls.
        charset: how the agent's non-UTF-8 text is encoded (``gbk``,
            ``latin-1`` ...): text that is not valid UTF-8 is read in it.
        reply_from: IP addresses besides ``host``'s the agent may answer from
            (a VRRP pair, a router answering from another interface). A reply
            from any other address is dropped and the device's reason says so.
        trap_from: IP addresses besides ``host``'s its traps name (``snmpTrapAddress.0``,
            the v1 agent-addr) or come from (a NAT'd village router).
        engine_id: its snmpEngineID in hex, to match its v3 traps.
    """

    host: str
    port: Port | None = None
    charset: str | None = None
    reply_from: list[IPvAnyAddress] = []
    trap_from: list[IPvAnyAddress] = []
    engine_id: Annotated[str, Field(pattern=r"^(0x)?[0-9A-Fa-f]{10,64}$")] | None = None
    version: Literal["v1", "v2c", "v3"] | None = None
    community: SecretStr | None = None
    user: SnmpUserSpec | None = None
    timeout: Seconds | None = None
    retries: Annotated[int, Field(ge=0, le=10)] | None = None
    interval: Seconds | None = None

    @field_validator("charset")
    @classmethod
    def _known_charset(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                codecs.lookup(value)
            except LookupError:
                raise ValueError(f"unknown charset {value!r} (gbk, gb18030, latin-1 ...)"
                                 ) from None
        return value

    def resolve(self, defaults: SnmpDefaults) -> SnmpDefaults:
        """This target's settings with the defaults filled in (host and charset apart)."""
        given = {k: getattr(self, k) for k in self.model_fields_set - _TARGET_ONLY
                 if getattr(self, k) is not None}
        return defaults.model_validate({**dict(defaults), **given})


class MqttDeviceSpec(StrictModel):
    """A device's MQTT topics.

    ``None`` means ``<topic_prefix>/<site>/<device>/status`` and ``.../telemetry``.
    """

    status_topic: str | None = None
    telemetry_topic: str | None = None


def _power(value: str) -> str:
    PowerFeed.parse(value)
    return value


class GeneratorSpec(StrictModel):
    """A generator's fuel use (see ``commsmon.core.model.GeneratorCurve``).

    Attributes:
        consumption_lph: load ratio 0-1 -> litres per hour, e.g. an 8 kW diesel
            set ``{0.5: 1.5, 0.75: 2.0, 1.0: 2.6}``.
        tank_litres: tank capacity, to turn a fuel ratio into litres.
        expected_load: load ratio assumed while it is not running.
    """

    consumption_lph: dict[Annotated[float, Field(ge=0, le=1.5)], Annotated[float, Field(gt=0)]]
    tank_litres: Annotated[float, Field(gt=0)] | None = None
    expected_load: Annotated[float, Field(ge=0, le=1.5)] = 0.5

    @model_validator(mode="after")
    def _some(self) -> GeneratorSpec:
        if not self.consumption_lph:
            raise ValueError("consumption_lph needs at least one load: litres-per-hour point")
        return self


class DeviceSpec(StrictModel):
    """One device in the inventory (see ``commsmon.core.model.Device``).

    ``power`` is ``mains`` (default), ``none`` (a handheld), ``ups:<id>`` or
    ``generator:<id>``; ``battery_hours`` is how long its own battery lasts
    at full charge, in hours; ``checkin_validity`` is in seconds.
    """

    id: Identifier
    kind: DeviceKind
    name: str = ""
    profile: Identifier | None = None
    channel: ChannelName | None = None
    parent: Identifier | None = None
    depends_on: list[Identifier] = []
    snmp: SnmpSpec | None = None
    mqtt: MqttDeviceSpec | None = None
    params: dict[str, int | str] = {}
    down_after: Annotated[int, Field(ge=1)] | None = None
    up_after: Annotated[int, Field(ge=1)] | None = None
    stale_after: Seconds | None = None
    power: Annotated[str, AfterValidator(_power)] = "mains"
    battery_hours: Annotated[float, Field(gt=0)] | None = None
    generator: GeneratorSpec | None = None
    checkin_validity: Seconds | None = None

    @model_validator(mode="after")
    def _one_source(self) -> DeviceSpec:
        if self.snmp is not None and self.mqtt is not None:
            raise ValueError("a device is observed over 'snmp' or 'mqtt', not both")
        if (self.snmp is not None or self.mqtt is not None) and self.profile is None:
            raise ValueError("a polled or subscribed device needs a 'profile'")
        return self

    @property
    def source(self) -> Literal["snmp", "mqtt", "checkin"]:
        """How the device is observed."""
        if self.snmp is not None:
            return "snmp"
        return "mqtt" if self.mqtt is not None else "checkin"


class SiteSpec(StrictModel):
    """A village or the district centre, with its devices."""

    id: Identifier
    name: str
    town: str = ""
    role: Literal["centre", "village"] = "village"
    latitude: Annotated[float, Field(ge=-90, le=90)] | None = None
    longitude: Annotated[float, Field(ge=-180, le=180)] | None = None
    target_hours: Annotated[float, Field(gt=0)] | None = None
    #: Seconds between the traps or informs the site's kit is configured to send
    #: anyway (a periodic test trap or inform); nothing from any of its devices for
    #: twice that is "trap path down". ``None``: not checked.
    trap_every: Annotated[float, Field(gt=0)] | None = None
    #: Hours the public network serving this site keeps working after mains is lost
    #: (the operator's base-station backup); defaults.public_backup_hours if unset.
    public_backup_hours: Annotated[float, Field(ge=0)] | None = None
    #: The village's keeper (管理员): name, and a phone to reach them ("" when none).
    keeper: str = ""
    keeper_phone: str = ""
    devices: list[DeviceSpec] = []
