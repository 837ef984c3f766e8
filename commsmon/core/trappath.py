"""Whether a village's traps still reach the monitor (the trap path check).

Kit configured to send a trap or inform every ``Site.trap_every`` seconds anyway
(a periodic test trap) proves the path an on-battery trap would take, from the
village to the centre.  Any trap from any of the site's devices counts.  Silent
for more than twice the period (one missed allowed, as for repeating traps) the
path is ``down`` — the path, not a device: a device that is down is told by its
polls.  Silent for exactly twice the period is still ``up``.  Before anything
was heard, within that grace of the monitor starting to listen, it is
``unknown`` (nothing proves it yet); while the monitor does not listen for
traps it is ``unknown`` too — the monitor's fault, not the village's.
"""

from __future__ import annotations

from dataclasses import dataclass

from commsmon.core.facts import Fact
from commsmon.core.model import Site
from commsmon.core.types import State

__all__ = ["MISSED", "TrapPath", "trap_path"]

MISSED = 2  # periods of silence allowed before the path is down


@dataclass(frozen=True, slots=True)
class TrapPath:
    """A site's trap path at one evaluation.

    Attributes:
        state: ``up``, ``down`` or ``unknown``.
        heard: epoch seconds of the latest trap from the site's kit, ``None`` if none.
        reason: why it is not ``up`` (a fact), ``None`` when up.
    """

    state: State
    heard: float | None
    reason: Fact | None = None


def trap_path(site: Site, heard: float | None, listening_since: float | None,
              now: float) -> TrapPath | None:
    """The trap path of ``site``; ``None`` when it is not checked (no ``trap_every``).

    Args:
        site: the site.
        heard: epoch seconds of the latest trap from any of its devices.
        listening_since: epoch seconds since the monitor listens for traps, ``None``
            while it does not.
        now: epoch seconds.
    """
    if site.trap_every is None:
        return None
    if listening_since is None:
        return TrapPath(State.UNKNOWN, heard, Fact("traps_not_listening"))
    limit = MISSED * site.trap_every
    quiet_since = listening_since if heard is None else max(heard, listening_since)
    age = now - quiet_since
    if age > limit:
        return TrapPath(State.DOWN, heard, Fact("trap_path_silent", {
            "age": age, "limit": limit, "at": heard}))
    if heard is None:
        return TrapPath(State.UNKNOWN, None, Fact("trap_path_waiting", {
            "since": listening_since, "limit": limit}))
    return TrapPath(State.UP, heard)
