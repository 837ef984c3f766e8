"""Which instance of a sharded deployment does what (DESIGN.md §7).

Several instances split a province's inventory.  A village is judged as a
whole (isolation, channels, scenarios need every device at it), so a site and
all its devices belong to one shard, chosen by a stable hash of the site id.
The owner polls a device and reports it (metrics, alerts, API).

Some devices matter to other shards too: the district repeater that every
village's PDT terminals depend on, a parent or a power feed at another site.
Their observations are copied to every shard that tracks them, which keeps
its own state for them (same observations, same hysteresis, same state) but
does not report them.  MQTT telemetry arrives through a shared subscription
at whichever instance the broker picks; that instance decodes it once and
hands the observation to the shards that track the device.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

from commsmon.core.model import Device, Inventory
from commsmon.core.shared import Shared
from commsmon.core.snapshot import Snapshot

__all__ = ["ShardPlan", "shard_of"]


def shard_of(site: str, count: int) -> int:
    """The shard, 0 .. ``count``-1, that owns ``site``.

    Stable across processes, machines and Python versions (BLAKE2b of the id,
    not ``hash()``, which is salted per process).
    """
    digest = hashlib.blake2b(site.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % count


@dataclass(frozen=True, slots=True)
class ShardPlan:
    """One instance's share of the inventory.

    Attributes:
        index: this instance's shard, 0 .. ``count``-1.
        count: number of shards.
        sites: ids of the sites this instance owns: judges and reports.
        destinations: device id -> shards that track the device (its
            owner first); every device of the inventory is a key, except with
            a single shard, where the map stays empty (everything is ours).
    """

    index: int
    count: int
    sites: frozenset[str]
    destinations: Mapping[str, tuple[int, ...]]

    @classmethod
    def build(cls, inventory: Inventory, index: int = 0, count: int = 1) -> ShardPlan:
        """Split ``inventory`` into ``count`` shards and take shard ``index``.

        Raises:
            ValueError: ``index`` is not in 0 .. ``count``-1.
        """
        if not 0 <= index < count:
            raise ValueError(f"shard index {index} not in 0..{count - 1}")
        if count == 1:
            return cls(index=0, count=1, sites=frozenset(inventory.sites), destinations={})
        owner = {s: shard_of(s, count) for s in inventory.sites}
        trackers: dict[str, list[int]] = {
            d.id: [owner[d.site]] for d in inventory.devices.values()
        }
        for shard in range(count):
            for device_id in _needed_by(inventory, [
                d for d in inventory.devices.values() if owner[d.site] == shard
            ]):
                if shard not in trackers[device_id]:
                    trackers[device_id].append(shard)
        # Most devices go to their owner alone: a few distinct tuples serve every device
        # (one each would be 6 MiB of a shard's 100 000-device province).
        one = Shared()
        return cls(
            index=index,
            count=count,
            sites=frozenset(s for s, o in owner.items() if o == index),
            destinations={d: one(tuple(t)) for d, t in trackers.items()},
        )

    def owner(self, site: str) -> int:
        """The shard that owns ``site`` (judges and reports it)."""
        return self.index if self.count == 1 else shard_of(site, self.count)

    def trackers(self, device_id: str) -> tuple[int, ...]:
        """The shards that keep ``device_id``'s state (its owner first); ``()`` for a
        device not in the inventory."""
        if self.count == 1:
            return (self.index,)
        return tuple(self.destinations.get(device_id, ()))

    def owns(self, device: Device) -> bool:
        """Whether this instance polls and reports ``device``."""
        return self.trackers(device.id)[:1] == (self.index,)

    def tracks(self, device_id: str) -> bool:
        """Whether this instance keeps the state of ``device_id``."""
        return self.index in self.trackers(device_id)

    def inventory(self, full: Inventory) -> Inventory:
        """The part of ``full`` this instance keeps state for.

        Polled devices tracked for another shard arrive over the broker, so
        they become ``mqtt``-sourced here: ``unknown`` while the broker is gone.
        A polled one never goes stale here: if its owner stops, it keeps its
        last state (neither fires nor resolves anything) and the owner's
        absence is Prometheus' ``up == 0`` alert, not a village's.
        """
        if self.count == 1:
            return full
        devices = []
        for device in full.devices.values():
            if not self.tracks(device.id):
                continue
            if device.source == "snmp" and not self.owns(device):
                device = dataclasses.replace(device, source="mqtt")
            devices.append(device)
        wanted = self.sites | {d.site for d in devices}
        return Inventory.build([s for s in full.sites.values() if s.id in wanted], devices)

    def report(self, snap: Snapshot) -> Snapshot:
        """``snap`` cut to the sites this instance owns and their devices."""
        if self.count == 1:
            return snap
        return dataclasses.replace(
            snap,
            devices={k: v for k, v in snap.devices.items() if v.device.site in self.sites},
            sites={k: v for k, v in snap.sites.items() if k in self.sites},
        )


def _needed_by(inventory: Inventory, devices: list[Device]) -> set[str]:
    """Ids of ``devices`` and everything their state or endurance depends on."""
    seen: set[str] = set()
    todo = [d.id for d in devices]
    while todo:
        device_id = todo.pop()
        if device_id in seen:
            continue
        seen.add(device_id)
        d = inventory.devices[device_id]
        todo.extend(ref for ref in (d.parent, *d.depends_on, d.power.ref) if ref)
    return seen
