"""Typed configuration, loaded from YAML and validated with pydantic.

A configuration file holds the sites and their devices, how each device is
observed (SNMP target or MQTT topics) and which profile decodes it; profiles
live as separate YAML files in ``profiles_dir`` (data, not code: DESIGN.md §6).
Every problem is reported as ``FILE:LINE: field.path: message`` so the operator
can go straight to it.
"""

from __future__ import annotations

import codecs
import os
import re
import socket
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    IPvAnyAddress,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.reader import ReaderError

from commsmon.alertconfig import AlertingSpec
from commsmon.core.model import Device, GeneratorCurve, HealthRule, Inventory, PowerFeed, Site
from commsmon.core.readings import CHARGE
from commsmon.core.types import ChannelName, DeviceKind
from commsmon.errors import ConfigError

_M = TypeVar("_M", bound=BaseModel)

__all__ = [
    "Config",
    "DeviceSpec",
    "HttpSpec",
    "MqttSpec",
    "Profile",
    "ReadingSpec",
    "SiteSpec",
    "SnmpSpec",
    "SnmpUserSpec",
    "load_config",
]


def _port(value: int) -> int:
    if not 1 <= value <= 65535:
        raise ValueError("must be 1..65535")
    return value


def _oid(value: str) -> str:
    if not re.fullmatch(r"\d+(\.(\d+|\{[a-z_]+\}))+", value):
        raise ValueError(f"{value!r} is not a numeric OID (dotted digits, no leading dot)")
    return value


Port = Annotated[int, AfterValidator(_port)]
Oid = Annotated[str, AfterValidator(_oid)]
Identifier = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=64)]
MetricName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]
Seconds = Annotated[float, Field(gt=0)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- profiles -------------------------------------------------------------------------

Decode = Literal[
    "number", "text_number", "float32_le", "float32_be", "utf16", "text", "enum", "bool"
]


class UnsupportedWhen(_Model):
    """When a value the agent answers means "not supported", not the value itself.

    The reading is not known (as a sentinel) when it decodes to ``value`` and every
    other reading of the same answer named in ``readings`` has the value given
    there (decoded: enum member names, SI numbers).  E.g. an RFC 1628 UPS
    answering upsEstimatedMinutesRemaining 0 while on mains at 100 % charge.
    """

    value: float | str | bool
    readings: dict[Identifier, float | str | bool] = Field(min_length=1)


class ReadingSpec(_Model):
    """How to get one reading out of a varbind or a JSON field.

    ``value = raw * scale + offset`` for numbers, after ``decode``:
    ``number`` (INTEGER/Gauge/Counter, or a JSON number, or a string holding
    one), ``text_number`` (the first number in a text such as ``"52 PERCENT"``
    or ``"12.6 V"``), ``float32_le``/``float32_be`` (an IEEE-754 single packed
    in a 4-byte OCTET STRING), ``utf16`` (UTF-16LE text), ``text``, ``enum``
    (integer or string mapped through ``enum``), ``bool``.
    Raw values listed in ``invalid`` (vendor sentinels such as -1) give no
    sample, and make the last one not known at once.
    ``counter: 32`` or ``counter: 64`` makes the reading the rate per second
    of a Counter32/Counter64 (times ``scale``: 8 turns octets into bits), see
    :mod:`commsmon.sources.counters` for wraps and agent restarts; the width
    comes from here because not every SNMP backend reports the SMI type.
    An ``optional`` reading that the agent does not implement (noSuchObject)
    is skipped quietly: some firmware lacks it.
    ``max_age`` is how many seconds a reading stays true; an older one counts
    as not known (default: three poll intervals for SNMP, three
    ``telemetry_period`` for MQTT).
    ``unsupported_when`` names a value that means "not supported" given other
    readings of the same answer (:class:`UnsupportedWhen`).
    """

    oid: Oid | None = None
    field: str | None = None
    decode: Decode = "number"
    enum: dict[int | str, str] | None = None
    scale: float = 1.0
    offset: float = 0.0
    invalid: list[float | str] = []
    metric: MetricName | None = None
    help: str = ""
    optional: bool = False
    counter: Literal[32, 64] | None = None
    max_age: Seconds | None = None
    unsupported_when: UnsupportedWhen | None = None

    @model_validator(mode="after")
    def _check(self) -> ReadingSpec:
        if (self.oid is None) == (self.field is None):
            raise ValueError("give exactly one of 'oid' (SNMP) or 'field' (MQTT JSON)")
        if self.counter is not None and (self.decode != "number" or self.offset or self.invalid):
            raise ValueError("a counter is a plain number: no 'decode', 'offset' or 'invalid'")
        if (self.decode == "enum") != (self.enum is not None):
            raise ValueError("decode 'enum' and an 'enum' map go together")
        if self.metric and self.decode in ("text", "utf16", "enum"):
            raise ValueError("only numeric readings can be exposed as a metric")
        return self


class Bilingual(_Model):
    """A text in each language the product speaks (Chinese first)."""

    zh: str = Field(min_length=1)
    en: str = Field(min_length=1)


class HealthSpec(_Model):
    """A rule on an answering device (see ``HealthRule``).

    ``effect: degraded`` (default) means it still carries its channel but
    needs attention (low battery, an alarm); ``effect: lost`` means it answers
    but cannot carry its channel (not registered, no signal, no SIM), which
    counts as not working everywhere.  ``message`` says what is wrong in
    Chinese and English: ``{zh: 卫星电话未注册, en: satellite phone not registered}``.
    """

    reading: str
    message: Bilingual
    effect: Literal["degraded", "lost"] = "degraded"
    below: float | None = None
    above: float | None = None
    equals: list[float | str | bool] = []

    @model_validator(mode="after")
    def _one(self) -> HealthSpec:
        given = [self.below is not None, self.above is not None, bool(self.equals)]
        if sum(given) != 1:
            raise ValueError("give exactly one of 'below', 'above' or 'equals'")
        return self


#: Prefixes of the metric families commsmon writes itself (``commsmon_<prefix>...``:
#: the exposition's device/site/reading families and the daemon's own metrics); a
#: profile reading exposed under one of them would shadow or collide with a built-in
#: family.  tests/test_config.py checks every built-in family is covered.
RESERVED_METRIC_PREFIXES = (
    "device_", "site_", "reading_", "mqtt_", "snmp_", "alert_", "outbox_", "config_",
    "evaluation_", "event_loop_", "state_file_", "shard_", "receiver_",
)


class Profile(_Model):
    """A device model: where its readings are and what makes it unhealthy.

    Attributes:
        source: ``snmp`` (readings by OID) or ``mqtt`` (readings by JSON field).
        presence: the device publishes ``online``/``offline`` on a status topic.
        telemetry: the device publishes JSON telemetry.
        telemetry_period: seconds expected between telemetry messages (MQTT);
            a reading is true for three of them unless it sets ``max_age``.
        stale_after: seconds of silence before a pushed device counts as
            failed; ``None`` to rely on presence (Last Will) alone.
    """

    name: Identifier
    description: str = ""
    source: Literal["snmp", "mqtt"]
    presence: bool = False
    telemetry: bool = True
    telemetry_period: Seconds = 60.0
    stale_after: Seconds | None = None
    readings: dict[Identifier, ReadingSpec] = {}
    health: list[HealthSpec] = []

    @model_validator(mode="after")
    def _consistent(self) -> Profile:
        key = "oid" if self.source == "snmp" else "field"
        for name, spec in self.readings.items():
            if getattr(spec, key) is None:
                raise ValueError(f"reading {name}: a {self.source} profile needs '{key}'")
        for rule in self.health:
            if rule.reading not in self.readings:
                raise ValueError(f"health rule names unknown reading {rule.reading!r}")
        for name, spec in self.readings.items():
            when = spec.unsupported_when
            for other in when.readings if when else ():
                if other not in self.readings or other == name:
                    raise ValueError(f"reading {name}: unsupported_when names "
                                     f"{other!r}, not another reading of this profile")
        # Every reading of a device carries the same labels: one metric name, one reading,
        # or /metrics has two series Prometheus cannot tell apart (it keeps one).
        exposed: dict[str, str] = {}
        for name, spec in self.readings.items():
            if spec.metric is None:
                continue
            if spec.metric.startswith(RESERVED_METRIC_PREFIXES):
                raise ValueError(f"reading {name}: metric {spec.metric!r} would shadow a "
                                 f"built-in family (commsmon_{spec.metric}); names starting "
                                 f"with {', '.join(RESERVED_METRIC_PREFIXES)} are reserved")
            if spec.metric in exposed:
                raise ValueError(f"readings {exposed[spec.metric]} and {name} are both "
                                 f"exposed as metric {spec.metric!r} with the same labels")
            exposed[spec.metric] = name
        return self


# --- inventory ------------------------------------------------------------------------


class SnmpUserSpec(_Model):
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


class SnmpDefaults(_Model):
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


class SnmpSpec(_Model):
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
    """

    host: str
    port: Port | None = None
    charset: str | None = None
    reply_from: list[IPvAnyAddress] = []
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
        given = {k: getattr(self, k)
                 for k in self.model_fields_set - {"host", "charset", "reply_from"}
                 if getattr(self, k) is not None}
        return defaults.model_validate({**dict(defaults), **given})


class MqttDeviceSpec(_Model):
    """A device's MQTT topics.

    ``None`` means ``<topic_prefix>/<site>/<device>/status`` and ``.../telemetry``.
    """

    status_topic: str | None = None
    telemetry_topic: str | None = None


def _power(value: str) -> str:
    PowerFeed.parse(value)
    return value


class GeneratorSpec(_Model):
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


class DeviceSpec(_Model):
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


class SiteSpec(_Model):
    """A village or the district centre, with its devices."""

    id: Identifier
    name: str
    town: str = ""
    role: Literal["centre", "village"] = "village"
    latitude: Annotated[float, Field(ge=-90, le=90)] | None = None
    longitude: Annotated[float, Field(ge=-180, le=180)] | None = None
    target_hours: Annotated[float, Field(gt=0)] | None = None
    devices: list[DeviceSpec] = []


class TlsClientSpec(_Model):
    """TLS towards a server (the MQTT broker): whom to trust and who we are.

    Attributes:
        ca_file: PEM file of the CA(s) that sign the server's certificate;
            ``None`` trusts the system's CAs.
        cert_file: PEM client certificate, for brokers that require one.
        key_file: its PEM private key (a secret: mode 0600, or a
            ``LoadCredential=`` path).
        key_password: the key's passphrase, if it is encrypted.
        insecure: skip checking the server's name against its certificate;
            only for a broker reached by an address its certificate lacks.
    """

    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    key_password: SecretStr | None = None
    insecure: bool = False

    @model_validator(mode="after")
    def _check(self) -> TlsClientSpec:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file go together")
        for name in ("ca_file", "cert_file", "key_file"):
            value = getattr(self, name)
            if value is not None and not Path(value).is_file():
                raise ValueError(f"{name}: no such file {value}")
        return self


class MqttSpec(_Model):
    """The MQTT broker and how to use it.

    Attributes:
        client_id: must be unique per running instance (a duplicate makes the
            broker drop the older session); the session is persistent, so the
            broker keeps QoS 1 messages for it while it reconnects.  Default
            ``commsmon-<hostname>-<shard index>`` (:meth:`identity`).
        keepalive: seconds.
        reconnect_max: longest wait between reconnect attempts, seconds.
        queue_size: messages the daemon holds before handling; beyond it they
            are dropped and counted (``commsmon_mqtt_messages_total{result="dropped"}``).
        share_group: consume telemetry through ``$share/<group>/...`` so the
            instances of one group (an HA pair) split it, each message once.
        tls: connect over TLS (MQTT over TLS is usually port 8883).
        will_grace: seconds a live presence ``offline`` is held before it is
            applied; dropped if our own session ends meanwhile (a broker shutting
            down publishes every client's Last Will, then closes).
    """

    host: str = "127.0.0.1"
    port: Port = 1883
    client_id: Annotated[str, Field(min_length=1)] | None = None
    username: str | None = None
    password: SecretStr | None = None
    keepalive: Annotated[int, Field(ge=5, le=3600)] = 30
    topic_prefix: str = "commsmon"
    checkin_topic: str | None = None
    reconnect_max: Seconds = 30.0
    queue_size: Annotated[int, Field(ge=100)] = 200_000
    share_group: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]+$")] | None = None
    tls: TlsClientSpec | None = None
    will_grace: Annotated[float, Field(ge=0, le=60)] = 5.0

    def identity(self, shard: int) -> str:
        """The MQTT client id: ``client_id``, else ``commsmon-<hostname>-<shard>``."""
        return self.client_id or f"commsmon-{socket.gethostname()}-{shard}"

    @property
    def checkins(self) -> str:
        """Topic where check-ins arrive (default ``<topic_prefix>/checkins``)."""
        return self.checkin_topic or f"{self.topic_prefix}/checkins"


class HttpTlsSpec(_Model):
    """HTTPS for the listener, as Prometheus' web-config ``tls_server_config``.

    Attributes:
        cert_file: PEM server certificate (chain).
        key_file: its PEM private key.
        client_ca_file: if given, clients must present a certificate signed by
            one of these CAs (``RequireAndVerifyClientCert``).
    """

    cert_file: str
    key_file: str
    client_ca_file: str | None = None

    @model_validator(mode="after")
    def _files(self) -> HttpTlsSpec:
        for name in ("cert_file", "key_file", "client_ca_file"):
            value = getattr(self, name)
            if value is not None and not Path(value).is_file():
                raise ValueError(f"{name}: no such file {value}")
        return self


class HttpSpec(_Model):
    """Where ``/metrics``, ``/healthz`` and the API listen (loopback by default).

    Attributes:
        token: bearer token that write endpoints require; without one they
            refuse every request.  It also grants reads.
        tls: serve HTTPS instead of HTTP.
        basic_auth_users: user name -> bcrypt hash of the password, as in
            Prometheus' web-config (``htpasswd -nbBC 10 user pass``); when any
            is given, every endpoint but ``/healthz`` needs these credentials
            or the bearer token.
    """

    listen: str = "127.0.0.1"
    port: Port = 9470
    token: SecretStr | None = None
    tls: HttpTlsSpec | None = None
    basic_auth_users: dict[str, SecretStr] = {}

    @model_validator(mode="after")
    def _bcrypt(self) -> HttpSpec:
        for user, hashed in self.basic_auth_users.items():
            if not hashed.get_secret_value().startswith(("$2a$", "$2b$", "$2y$")):
                raise ValueError(f"basic_auth_users.{user}: must be a bcrypt hash ($2y$...), "
                                 "never the password itself")
        return self


class ShardSpec(_Model):
    """This instance's place among several that split the inventory (DESIGN.md §7).

    Attributes:
        index: this instance's shard, 0 .. ``count``-1.
        count: how many instances share the inventory; every one runs the
            same configuration file with its own ``index``, ``http.port`` (if
            on one host) and ``mqtt.client_id``, and the same
            ``mqtt.share_group``.
    """

    index: Annotated[int, Field(ge=0)] = 0
    count: Annotated[int, Field(ge=1)] = 1

    @model_validator(mode="after")
    def _check(self) -> ShardSpec:
        if self.index >= self.count:
            raise ValueError(f"index must be below count ({self.count})")
        return self


class Defaults(_Model):
    """Settings devices inherit."""

    snmp: SnmpDefaults = SnmpDefaults()
    down_after: Annotated[int, Field(ge=1)] = 3
    up_after: Annotated[int, Field(ge=1)] = 2
    snmp_concurrency: Annotated[int, Field(ge=1)] = 64
    snmp_backend: Literal["gufo", "pysnmp"] = "gufo"
    target_hours: Annotated[float, Field(gt=0)] = 72.0
    checkin_validity: dict[DeviceKind, Seconds] = {}


DEFAULT_CHECKIN_VALIDITY = 7 * 86400.0  # seconds: a weekly roll call
MAX_AGE_REPORTS = 3  # a reading stays true for this many report intervals by default


class Config(_Model):
    """The whole configuration file.

    Attributes:
        language: what officers read by default — the status table, API
            reasons and messages (receivers may say otherwise): ``zh`` or ``en``.
        profiles_dir: directory of profile YAML files, relative to this file.
        profiles: loaded profiles by name (filled by ``load_config``).
        path: the file it came from (filled by ``load_config``).
    """

    district: str = ""
    timezone: str = "Asia/Shanghai"
    language: Literal["zh", "en"] = "zh"
    state_dir: str | None = None
    defaults: Defaults = Defaults()
    mqtt: MqttSpec | None = None
    http: HttpSpec = HttpSpec()
    shard: ShardSpec = ShardSpec()
    alerting: AlertingSpec = AlertingSpec()
    profiles_dir: str = "profiles"
    sites: list[SiteSpec]
    profiles: dict[str, Profile] = {}
    path: Path | None = None

    def devices(self) -> Iterator[tuple[SiteSpec, DeviceSpec]]:
        """Every (site, device) pair in file order."""
        for site in self.sites:
            for device in site.devices:
                yield site, device

    def topics(self, site: SiteSpec, device: DeviceSpec) -> tuple[str | None, str | None]:
        """The (status, telemetry) topics of an MQTT device, per its profile."""
        if device.mqtt is None or self.mqtt is None or device.profile is None:
            return None, None
        profile = self.profiles[device.profile]
        base = f"{self.mqtt.topic_prefix}/{site.id}/{device.id}"
        status = device.mqtt.status_topic or f"{base}/status"
        telemetry = device.mqtt.telemetry_topic or f"{base}/telemetry"
        return (status if profile.presence else None, telemetry if profile.telemetry else None)

    def inventory(self) -> Inventory:
        """The pure inventory the core works on."""
        sites = [
            Site(s.id, s.name, s.town, s.role, s.latitude, s.longitude,
                 s.target_hours or self.defaults.target_hours)
            for s in self.sites
        ]
        devices = []
        health_of: dict[str, tuple[HealthRule, ...]] = {}  # one tuple per profile, shared
        ages_of: dict[tuple[str, float], Mapping[str, float]] = {}  # likewise per cadence
        for site, d in self.devices():
            profile = self.profiles.get(d.profile) if d.profile else None
            health = health_of.get(d.profile or "")
            if health is None:
                health = health_of[d.profile or ""] = tuple(
                    HealthRule(h.reading, h.below, h.above, tuple(h.equals), h.effect,
                               {"zh": h.message.zh, "en": h.message.en})
                    for h in (profile.health if profile else [])
                )
            validity = d.checkin_validity or self.defaults.checkin_validity.get(
                d.kind, DEFAULT_CHECKIN_VALIDITY)
            cadence = self._cadence(d, profile, validity)
            max_age = ages_of.get((d.profile or "", cadence))
            if max_age is None:
                max_age = ages_of[(d.profile or "", cadence)] = _max_ages(
                    profile if d.source != "checkin" else None, cadence)
            stale = d.stale_after or (profile.stale_after if profile else None)
            devices.append(
                Device(
                    id=d.id,
                    site=site.id,
                    kind=d.kind,
                    name=d.name or d.id,
                    source=d.source,
                    profile=d.profile or "",
                    channel=d.channel,
                    parent=d.parent,
                    depends_on=tuple(d.depends_on),
                    health=health,
                    down_after=d.down_after or self.defaults.down_after,
                    up_after=d.up_after or self.defaults.up_after,
                    stale_after=stale if d.source == "mqtt" else None,
                    power=PowerFeed.parse(d.power),
                    battery_hours=d.battery_hours,
                    generator=_curve(d.generator),
                    checkin_validity=validity,
                    max_age=max_age,
                )
            )
        return Inventory.build(sites, devices)

    def _cadence(self, d: DeviceSpec, profile: Profile | None, validity: float) -> float:
        """Seconds between a device's reports: its poll interval (SNMP), its
        profile's telemetry period (MQTT), its check-in validity (check-ins)."""
        if d.snmp is not None:
            return d.snmp.interval or self.defaults.snmp.interval
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


# --- loading --------------------------------------------------------------------------


def load_config(path: str | Path) -> Config:
    """Read, validate and cross-check a configuration file and its profiles.

    Raises:
        ConfigError: with one ``FILE:LINE: field.path: message`` per problem.
    """
    path = Path(path)
    doc = _Document.read(path)
    problems: list[str] = []
    _resolve_references(doc, problems)
    if problems:
        raise ConfigError(problems)
    config = _validate(Config, doc, problems)
    if config is None:
        raise ConfigError(problems)
    profiles_dir = (path.parent / config.profiles_dir).resolve()
    if not profiles_dir.is_dir():
        raise ConfigError([doc.at(("profiles_dir",), f"directory {profiles_dir} not found")])
    profiles = _load_profiles(profiles_dir, problems)
    problems.extend(_cross_check(config, profiles, doc))
    if problems:
        raise ConfigError(problems)
    return config.model_copy(update={"profiles": profiles, "path": path})


class _Document:
    """A YAML file's data, and the line of any field in it when a problem needs one.

    The data comes from the fast C loader (``ruamel.yaml.clib``); lines come from
    the round-trip loader, five times slower and far larger for a province's
    file, so it only runs once something is wrong.
    """

    def __init__(self, path: Path, text: str, data: Any) -> None:
        self.path = path
        self.data = data
        self._text = text
        self._tree: Any = None

    @classmethod
    def read(cls, path: Path) -> _Document:
        """Read and parse ``path``; a syntax error is a located :class:`ConfigError`."""
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError([f"{path}: cannot read: {exc}"]) from exc
        try:
            return cls(path, text, YAML(typ="safe").load(text))
        except MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = mark.line + 1 if mark is not None else 0
            raise ConfigError([f"{path}:{line}: not valid YAML: {exc.problem}"]) from exc
        except ReaderError as exc:  # a character YAML forbids (control characters)
            line = text[: max(exc.position, 0)].count("\n") + 1
            raise ConfigError([f"{path}:{line}: not valid YAML: {exc.reason} "
                               f"(character {exc.character!r})"]) from exc
        except YAMLError as exc:  # anything else the parser refuses, still located
            raise ConfigError([f"{path}:1: not valid YAML: {exc}"]) from exc

    def line(self, loc: tuple[str | int, ...]) -> int:
        """1-based line of the deepest node of ``loc`` that exists in the YAML."""
        if self._tree is None:
            self._tree = YAML(typ="rt").load(self._text)
        node, line = self._tree, 1
        for part in loc:
            if isinstance(node, CommentedMap) and part in node:
                line = node.lc.key(part)[0] + 1
                node = node[part]
            elif isinstance(node, CommentedSeq) and isinstance(part, int) and part < len(node):
                line = node.lc.item(part)[0] + 1
                node = node[part]
            else:
                break
        return line

    def at(self, loc: tuple[str | int, ...], msg: str) -> str:
        """``FILE:LINE: field.path: msg``."""
        return f"{self.path}:{self.line(loc)}: {_dotted(loc) or '(top)'}: {msg}"


_REFERENCE = re.compile(r"\$\{(env|file|credential):([^}]+)\}")


def _resolve_references(doc: _Document, problems: list[str]) -> None:
    """Replace ``${env:NAME}``, ``${file:/path}`` and ``${credential:name}`` (systemd's
    ``$CREDENTIALS_DIRECTORY``) in string values, in place, so secrets need not be
    inline.  The values are never logged; a missing one is a located problem."""

    def walk(node: Any, loc: tuple[str | int, ...]) -> None:
        items: list[tuple[Any, Any]]
        if isinstance(node, dict):
            items = list(node.items())
        elif isinstance(node, list):
            items = list(enumerate(node))
        else:
            return
        for key, value in items:
            here = (*loc, key)
            if isinstance(value, str) and "${" in value:
                try:
                    node[key] = _REFERENCE.sub(_dereference, value)
                except LookupError as exc:
                    problems.append(doc.at(here, exc.args[0]))
            else:
                walk(value, here)

    walk(doc.data, ())


def _dereference(match: re.Match[str]) -> str:
    kind, name = match.group(1), match.group(2).strip()
    if kind == "env":
        if name not in os.environ:
            raise LookupError(f"environment variable {name} is not set")
        return os.environ[name]
    if kind == "credential":
        directory = os.environ.get("CREDENTIALS_DIRECTORY")
        if not directory:
            raise LookupError(f"credential {name}: no $CREDENTIALS_DIRECTORY (LoadCredential=)")
        name = str(Path(directory) / name)
    try:
        return Path(name).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise LookupError(f"cannot read secret file {name}: {exc.strerror}") from None


def _validate(model: type[_M], doc: _Document, problems: list[str]) -> _M | None:
    try:
        return model.model_validate(doc.data)
    except ValidationError as exc:
        for err in exc.errors():
            problems.append(doc.at(tuple(err["loc"]), err["msg"].removeprefix("Value error, ")))
        return None


def _load_profiles(directory: Path, problems: list[str]) -> dict[str, Profile]:
    profiles: dict[str, Profile] = {}
    for file in sorted(directory.glob("*.yaml")):
        try:
            doc = _Document.read(file)
        except ConfigError as exc:
            problems.extend(exc.problems)
            continue
        profile = _validate(Profile, doc, problems)
        if profile is None:
            continue
        if profile.name != file.stem:
            problems.append(f"{file}:1: name: must match the file name {file.stem!r}")
        profiles[profile.name] = profile
    return profiles


def _cross_check(config: Config, profiles: dict[str, Profile], doc: _Document) -> Iterator[str]:
    """References between entries: unique ids, known parents, matching profiles."""
    site_ids: set[str] = set()
    device_ids = {d.id for _, d in config.devices()}
    kinds = {d.id: d.kind for _, d in config.devices()}
    parents = {d.id: d.parent for _, d in config.devices() if d.parent}
    seen: set[str] = set()
    if config.shard.count > 1 and (config.mqtt is None or not config.mqtt.share_group):
        # Instances hand each other observations over the broker, and must split telemetry.
        yield doc.at(("shard",), "several shards need 'mqtt' with a 'share_group'")
    for i, site in enumerate(config.sites):
        if site.id in site_ids:
            yield doc.at(("sites", i, "id"), f"duplicate site id {site.id!r}")
        site_ids.add(site.id)
        for j, d in enumerate(site.devices):
            here = ("sites", i, "devices", j)
            if d.id in seen:
                yield doc.at((*here, "id"), f"duplicate device id {d.id!r}")
            seen.add(d.id)
            for k, ref in enumerate([d.parent, *d.depends_on]):
                if ref is not None and ref not in device_ids:
                    loc = (*here, "parent") if k == 0 else (*here, "depends_on", k - 1)
                    yield doc.at(loc, f"unknown device {ref!r}")
            if _parent_loop(d.id, parents):
                yield doc.at((*here, "parent"), "parents form a loop")
            feed = PowerFeed.parse(d.power)
            if feed.ref is not None:
                source = kinds.get(feed.ref)
                wanted = "ups" if feed.kind == "ups" else "generator"
                if source is None:
                    yield doc.at((*here, "power"), f"unknown device {feed.ref!r}")
                elif source != wanted:
                    yield doc.at((*here, "power"), f"{feed.ref!r} is a {source}, "
                              f"not a {wanted}")
            if d.snmp is not None:
                try:
                    d.snmp.resolve(config.defaults.snmp)
                except ValidationError as exc:
                    msg = exc.errors()[0]["msg"].removeprefix("Value error, ")
                    yield doc.at((*here, "snmp"), msg)
            if d.profile is None:
                continue
            profile = profiles.get(d.profile)
            if profile is None:
                yield doc.at((*here, "profile"), f"unknown profile {d.profile!r}")
            elif profile.source != d.source:
                yield doc.at((*here, "profile"),
                    f"profile {d.profile!r} is read over {profile.source}, device over {d.source}",
                )
            elif d.source == "mqtt" and config.mqtt is None:
                yield doc.at((*here, "mqtt"), "an MQTT device needs a top-level 'mqtt'")


def _parent_loop(device: str, parents: dict[str, str]) -> bool:
    seen, node = {device}, parents.get(device)
    while node is not None:
        if node in seen:
            return node == device
        seen.add(node)
        node = parents.get(node)
    return False


def _dotted(loc: tuple[str | int, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out
