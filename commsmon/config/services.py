"""What the daemon connects to and serves: the MQTT broker, the HTTP listener, shards."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    Field,
    HttpUrl,
    SecretStr,
    model_validator,
)

from commsmon.config.base import Port, Seconds, StrictModel


class TlsClientSpec(StrictModel):
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


class MqttSpec(StrictModel):
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


class HttpTlsSpec(StrictModel):
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


_BCRYPT = ("$2a$", "$2b$", "$2y$")


class ConsoleUserSpec(StrictModel):
    """A duty-desk account.

    Attributes:
        password: bcrypt hash of the password (``htpasswd -nbBC 10 user pass``),
            never the password itself.
        role: ``viewer`` (reads), ``duty`` (records check-ins, declares road
            outages, silences, acknowledges) or ``admin`` (all of that).
        name: how the duty log and pages name the person (``张三``); the account
            name when empty.
    """

    password: SecretStr
    role: Literal["viewer", "duty", "admin"] = "viewer"
    name: str = ""

    @model_validator(mode="after")
    def _bcrypt(self) -> ConsoleUserSpec:
        if not self.password.get_secret_value().startswith(_BCRYPT):
            raise ValueError("password: must be a bcrypt hash ($2y$...), never the password")
        return self


class HttpSpec(StrictModel):
    """Where ``/metrics``, ``/healthz`` and the API listen (loopback by default).

    Attributes:
        token: bearer token that write endpoints require; without one they
            refuse every request.  It also grants reads.
        tls: serve HTTPS instead of HTTP.
        basic_auth_users: user name -> bcrypt hash of the password, as in
            Prometheus' web-config (``htpasswd -nbBC 10 user pass``); when any
            is given, every endpoint but ``/healthz`` needs these credentials
            or the bearer token.
        users: the console's accounts by login name; when any is given, every
            console page needs a login (the wall its ``wall_token`` instead), and
            the duty role may act.  None: the pages are read-only, for anyone
            who may read.
        session_idle: seconds a console session lasts without a request.
        wall_token: the read-only token that opens ``/wall?token=...`` for the
            big screen without an account.
        external_url: the console's address as the officers' phones reach it (through
            a VPN or a reverse proxy), e.g. ``https://yingji.example.gov.cn/commsmon``;
            robot messages carry ack links under it.  ``None``: no ack links.
    """

    listen: str = "127.0.0.1"
    port: Port = 9470
    token: SecretStr | None = None
    tls: HttpTlsSpec | None = None
    basic_auth_users: dict[str, SecretStr] = {}
    users: dict[str, ConsoleUserSpec] = {}
    session_idle: Annotated[float, Field(ge=60)] = 1800.0
    wall_token: SecretStr | None = None
    external_url: HttpUrl | None = None

    @model_validator(mode="after")
    def _bcrypt(self) -> HttpSpec:
        for user, hashed in self.basic_auth_users.items():
            if not hashed.get_secret_value().startswith(_BCRYPT):
                raise ValueError(f"basic_auth_users.{user}: must be a bcrypt hash ($2y$...), "
                                 "never the password itself")
        return self


class ShardSpec(StrictModel):
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


class HaSpec(StrictModel):
    """One of two replicas of a shard on two servers (``ha`` section; README "A pair of
    servers").  Both poll, evaluate and push to Alertmanager; one, the holder of a
    lease in etcd, sends to every other receiver, and the other takes over when the
    lease lapses.

    Attributes:
        replica: this server's name, different on the two (``cc-a``, ``cc-b``).
        etcd: etcd endpoints, ``host:port``, tried in turn.
        lease: seconds the leader's lease lasts without a refresh (whole seconds,
            2 or more): the standby takes over within two of them.
        key: the prefix of the pair's keys in etcd; the shard index is appended.
        alone_after: seconds without any answer from etcd after which a replica
            sends everything itself (both may then send twice, rather than both
            stay silent); default three leases.
    """

    replica: Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")]
    etcd: Annotated[list[Annotated[str, Field(pattern=r"^[^:/\s]+:\d+$")]], Field(min_length=1)]
    lease: Annotated[int, Field(ge=2)] = 10
    key: Annotated[str, Field(min_length=1)] = "commsmon"
    alone_after: Seconds | None = None

    def alone_seconds(self) -> float:
        """``alone_after``, or three leases."""
        return self.alone_after if self.alone_after is not None else 3.0 * self.lease
