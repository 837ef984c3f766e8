"""The ``traps`` section: where commsmon listens for SNMP traps and informs, and whom
it believes.

Example::

    traps:
      listen: ["0.0.0.0:162"]        # port 162 needs CAP_NET_BIND_SERVICE (deploy/)
      communities: ["${env:TRAP_COMMUNITY}"]
      allow: ["10.8.0.0/16"]         # sources outside are dropped (unknown_source)
      users:                         # SNMPv3, as the poller's users
        - {name: ups-trap, auth_password: "${file:/etc/commsmon/ups-auth}",
           priv_password: "${file:/etc/commsmon/ups-priv}",
           engine_id: "800007e5804f6e5c27"}   # the sender's, for v3 traps (informs need none)
      rate: 50                       # traps per second per source, bursts of 5 x that
      queue_size: 10000
"""

from __future__ import annotations

from ipaddress import IPv4Network, IPv6Network
from typing import Annotated

from pydantic import Field, SecretStr, field_validator

from commsmon.config.base import StrictModel
from commsmon.config.devices import SnmpUserSpec

__all__ = ["TrapUserSpec", "TrapsSpec"]


class TrapUserSpec(SnmpUserSpec):
    """An SNMPv3 user traps and informs come from.

    Attributes:
        engine_id: the sending agent's snmpEngineID in hex (``80000…``): a v3 trap
            authenticates only if it is known (RFC 3414 §3.2); informs need none,
            commsmon being their authoritative engine. ``None``: informs only.
    """

    engine_id: Annotated[str, Field(pattern=r"^(0x)?[0-9A-Fa-f]{10,64}$")] | None = None


class TrapsSpec(StrictModel):
    """Where to listen and whom to believe; off unless ``listen`` names an address.

    Attributes:
        listen: ``host:port`` UDP addresses to listen on.
        communities: v1/v2c communities accepted (secrets).
        allow: source networks (CIDR) accepted; empty: any.
        users: SNMPv3 users, each at most once by name (pysnmp keeps one key set
            per user name: senders with other keys need other names).
        rate: traps per second accepted from one source (a token bucket of
            ``5 x rate``); more are dropped as ``rate_limited``.
        queue_size: decoded traps waiting to be applied; more are ``queue_full``.
    """

    listen: list[Annotated[str, Field(pattern=r"^[^\s:]+:\d{1,5}$")]] = []
    communities: list[SecretStr] = []
    allow: list[IPv4Network | IPv6Network] = []
    users: list[TrapUserSpec] = []
    rate: Annotated[float, Field(gt=0)] = 50.0
    queue_size: Annotated[int, Field(ge=1)] = 10_000

    @field_validator("users")
    @classmethod
    def _one_key_set_per_name(cls, users: list[TrapUserSpec]) -> list[TrapUserSpec]:
        names = [u.name for u in users]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"user {twice[0]!r} is given twice: pysnmp keeps one key set per "
                             "user name, so senders with other keys need other names")
        return users
