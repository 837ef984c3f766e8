"""Availability accounting: seconds in each state, added at every evaluation."""

from __future__ import annotations

from commsmon.core.types import State

__all__ = ["TimeInState"]


class TimeInState:
    """Seconds spent in each state and the time of the last change, for one device or
    site: the time-weighted accounting availability is computed from (``up / (up +
    degraded + down)``, ``unknown`` apart), never a count of samples."""

    __slots__ = ("seconds", "since", "state")

    def __init__(self, now: float) -> None:
        self.state = State.UNKNOWN
        self.since = now
        self.seconds = dict.fromkeys(State, 0.0)

    def advance(self, elapsed: float, new_state: State, now: float) -> None:
        """Add ``elapsed`` seconds to the state held so far, then take ``new_state``
        (``since`` becomes ``now`` if it changed)."""
        # A clock stepping back must never make a counter go down.
        self.seconds[self.state] += max(elapsed, 0.0)
        if new_state is not self.state:
            self.state = new_state
            self.since = now
