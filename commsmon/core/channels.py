"""Channels and isolation: which paths to the command centre work, and whether a
site is reachable at all.

A channel works while one of its providers and every device that provider
depends on work; a site with no working channel is isolated (``down``), unless
a channel is unknown because the monitor cannot see it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from commsmon.core.model import Device, Inventory
from commsmon.core.power import DeviceView
from commsmon.core.snapshot import ChannelStatus, DeviceStatus
from commsmon.core.types import WORKING, ChannelName, State

__all__ = ["judge_channels", "provider_state", "site_state"]


def judge_channels(
    inventory: Inventory, site: str, views: Mapping[str, DeviceView]
) -> dict[ChannelName, ChannelStatus]:
    """Each channel of ``site``: ``up`` if a provider and everything it depends on
    work, ``down`` if every provider is known to fail, else ``unknown``."""
    providers: dict[ChannelName, list[str]] = {}
    for d in inventory.devices_by_site.get(site, ()):
        channel = inventory.devices[d].channel
        if channel is not None:
            providers.setdefault(channel, []).append(d)
    result: dict[ChannelName, ChannelStatus] = {}
    for channel, provs in providers.items():
        states = [provider_state(inventory.devices[p], views) for p in provs]
        unknown = [p for p, st in zip(provs, states, strict=True) if st is State.UNKNOWN]
        if State.UP in states:
            state = State.UP
        elif unknown:
            state = State.UNKNOWN
        else:
            state = State.DOWN
        checkin_only = bool(unknown) and all(
            inventory.devices[p].source == "checkin" for p in unknown)
        result[channel] = ChannelStatus(channel, state, tuple(provs), checkin_only)
    return result


def provider_state(device: Device, views: Mapping[str, DeviceView]) -> State:
    """UP if the provider and all it depends on work, DOWN if any is down or lost."""
    chain = [views[device.id].state] + [views[d].state for d in device.depends_on]
    if all(s in WORKING for s in chain):
        return State.UP
    if State.DOWN in chain or State.LOST in chain:
        return State.DOWN
    return State.UNKNOWN


def site_state(channels: Iterable[ChannelStatus], members: list[DeviceStatus]) -> State:
    """A site's state from its channels (isolation: ``down`` when none works and no
    channel is unknown for want of sight), or from its devices if it has none."""
    channels = list(channels)
    states = [c.state for c in channels] or [m.state for m in members]
    if not states:
        return State.UNKNOWN
    working = [s in WORKING for s in states]
    if all(working):
        return State.DEGRADED if State.DEGRADED in states else State.UP
    if any(working):
        return State.DEGRADED
    # No channel works.  A channel unknown only because its handhelds have no fresh
    # check-in is no sign the monitor is blind: the village counts as isolated.
    blind = [c for c in channels if c.state is State.UNKNOWN and not c.checkin_only]
    if blind or (not channels and State.UNKNOWN in states):
        return State.UNKNOWN
    return State.DOWN
