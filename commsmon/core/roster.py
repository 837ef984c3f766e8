"""The duty roster (值班表): who holds each role when (pure; time passed in).

Escalation targets roles — ``duty`` (the officer on duty now), ``deputy``,
``leader`` (带班领导) — not people; the roster says who that is at a moment.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["Roster", "Shift"]


@dataclass(frozen=True, slots=True)
class Shift:
    """``name`` (reachable at ``phone``) holds ``role`` from ``start`` to ``end``.

    Attributes:
        start: epoch seconds, inclusive.
        end: epoch seconds, exclusive.
        role: ``duty``, ``deputy``, ``leader`` or any role a policy names.
        name: the person.
        phone: their phone number, ``""`` when not given.
    """

    start: float
    end: float
    role: str
    name: str
    phone: str = ""


@dataclass(frozen=True, slots=True)
class Roster:
    """Shifts, in any order; where two overlap for a role, the one that began last
    holds it (a swap entered on top of the month's plan)."""

    shifts: tuple[Shift, ...] = ()

    def holder(self, role: str, now: float) -> Shift | None:
        """Who holds ``role`` at ``now``, ``None`` when nobody does."""
        found = [s for s in self.shifts if s.role == role and s.start <= now < s.end]
        return max(found, key=lambda s: s.start, default=None)

    def holders(self, now: float) -> dict[str, Shift]:
        """Every role held at ``now``, by role, in the order roles first appear."""
        out: dict[str, Shift] = {}
        for role in dict.fromkeys(s.role for s in self.shifts):
            shift = self.holder(role, now)
            if shift is not None:
                out[role] = shift
        return out

    @classmethod
    def of(cls, shifts: Iterable[Shift]) -> Roster:
        """A roster of ``shifts``, ordered by start."""
        return cls(tuple(sorted(shifts, key=lambda s: (s.start, s.role))))
