"""A synthetic province for benchmarks: N villages of six devices each.

Each village has a router, a camera behind it and a UPS over SNMP, and a
genset gateway, a satellite-phone dock and a PDT terminal over MQTT; one
district centre holds the repeater.  SNMP devices are spread over the given
agent endpoints (host, port, community) round-robin, so a few agents on
loopback can stand in for thousands of devices.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

__all__ = ["province", "write_province"]

PROFILES = Path(__file__).resolve().parent.parent.parent / "config" / "profiles"


def province(
    villages: int,
    endpoints: Sequence[tuple[str, int, str]],
    *,
    mqtt_port: int = 1883,
    interval: float = 60.0,
    timeout: float = 2.0,
    profiles_dir: Path = PROFILES,
) -> dict[str, Any]:
    """Configuration data (ready for YAML) of a province of ``villages`` villages.

    Args:
        villages: how many villages (6 devices each, 3 of them SNMP).
        endpoints: SNMP agents to spread the SNMP devices over.
        mqtt_port: the broker's port on 127.0.0.1.
        interval: seconds between polls.
        timeout: seconds per SNMP attempt.
        profiles_dir: the profiles directory.
    """
    turn = iter(range(10**9))

    def snmp() -> dict[str, Any]:
        host, port, community = endpoints[next(turn) % len(endpoints)]
        return {"host": host, "port": port, "community": community}

    curve = {"consumption_lph": {0.5: 1.5, 0.75: 2.0, 1.0: 2.6}, "tank_litres": 200}
    sites: list[dict[str, Any]] = [{
        "id": "centre", "name": "centre", "role": "centre",
        "devices": [{"id": "centre-rpt1", "kind": "pdt_repeater", "profile": "router-mib2",
                     "params": {"uplink_ifindex": 1}, "snmp": snmp()}],
    }]
    for n in range(villages):
        v = f"v{n:05d}"
        feed = f"ups:{v}-ups"
        sites.append({"id": v, "name": f"village {n}", "town": f"town {n % 97}", "devices": [
            {"id": f"{v}-router", "kind": "router", "profile": "router-mib2", "channel": "public",
             "params": {"uplink_ifindex": 1}, "power": feed, "snmp": snmp()},
            {"id": f"{v}-cam1", "kind": "camera", "profile": "router-mib2", "parent": f"{v}-router",
             "params": {"uplink_ifindex": 1}, "power": feed, "snmp": snmp()},
            # The UPS-MIB profile (the core reads its output source for mains loss); net-snmp's
            # agents answer its objects as noSuchObject, so its readings stay unknown.
            {"id": f"{v}-ups", "kind": "ups", "profile": "ups-rfc1628", "parent": f"{v}-router",
             "power": f"generator:{v}-genset", "snmp": snmp()},
            {"id": f"{v}-genset", "kind": "generator", "profile": "genset-gateway",
             "generator": curve, "mqtt": {}},
            {"id": f"{v}-satphone", "kind": "satphone", "profile": "satphone-dock",
             "channel": "satellite", "battery_hours": 60, "mqtt": {}},
            {"id": f"{v}-pdt", "kind": "pdt_terminal", "profile": "pdt-terminal",
             "channel": "pdt370", "depends_on": ["centre-rpt1"], "power": feed, "mqtt": {}},
        ]})
    return {
        "district": "synthetic province",
        "profiles_dir": str(profiles_dir),
        "defaults": {"snmp": {"version": "v2c", "timeout": timeout, "retries": 0,
                              "interval": interval}},
        "mqtt": {"host": "127.0.0.1", "port": mqtt_port, "client_id": "commsmon-bench",
                 "topic_prefix": "province"},
        "http": {"listen": "127.0.0.1", "port": 9470},
        "sites": sites,
    }


def write_province(path: Path, villages: int, endpoints: Sequence[tuple[str, int, str]],
                   **options: Any) -> Path:
    """Write :func:`province` as YAML to ``path``; returns ``path``."""
    with path.open("w", encoding="utf-8") as f:
        YAML().dump(province(villages, endpoints, **options), f)
    return path
