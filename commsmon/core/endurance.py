"""Endurance: how many hours something lasts, as an interval of what is known.

Three results stay distinct everywhere (DESIGN.md §3 "Every link counts"):

* **lost** — ``upper == 0``: known to give nothing (a link is down);
* **unknown** — ``lower < upper``: somewhere in between; ``lower`` is what is
  certain ("at least 19 h"), ``upper`` what is possible (``inf`` when nothing
  bounds it);
* **known** — ``lower == upper``: exact hours, or **unbounded** (``inf``).

A chain of stages adds up (UPS runtime, then generator fuel); a channel lasts
as long as its shortest-lived link (:func:`least`); of several providers the
longest-lived one counts (:func:`most`).  That is interval arithmetic, so the
result never depends on the order things are listed in, and an unknown is
never turned into 0 or infinity.  Each endurance keeps the facts behind it:
``stages``, the arithmetic of the figure that binds, and ``unknowns``, what is
not known and could change the answer.  Pure.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from commsmon.core.facts import Fact

__all__ = ["Endurance", "least", "lost", "most", "unbounded", "unknown"]


@dataclass(frozen=True, slots=True)
class Endurance:
    """Hours something lasts: at least ``lower``, at most ``upper``.

    Attributes:
        lower: hours certain (``inf`` when unbounded).
        upper: hours possible (``inf`` when nothing bounds it).
        stages: facts of the figure that binds (the arithmetic).
        unknowns: facts of what is not known and could change it.
    """

    lower: float
    upper: float
    stages: tuple[Fact, ...] = ()
    unknowns: tuple[Fact, ...] = ()

    @property
    def exact(self) -> bool:
        """Known: exact hours, or unbounded."""
        return self.lower == self.upper

    @property
    def unbounded(self) -> bool:
        """Certainly lasts for ever (in the scenario's terms)."""
        return math.isinf(self.lower)

    @property
    def lost(self) -> bool:
        """Known to give nothing."""
        return self.upper == 0

    @property
    def nothing(self) -> bool:
        """No hours and nothing said why: what adds nothing to another."""
        return self.lost and not self.stages and not self.unknowns

    @property
    def hours(self) -> float | None:
        """The hours when known (``inf`` when unbounded), else ``None``."""
        return self.lower if self.exact else None

    def survives(self, target: float) -> bool:
        """Certainly lasts ``target`` hours (72.0 h does, 71.9 h does not)."""
        return self.lower >= target

    def short(self, target: float) -> bool:
        """Certainly does not last ``target`` hours."""
        return self.upper < target

    def __add__(self, other: Endurance) -> Endurance:
        # Nothing added (no hours, no stages, no unknowns: a device with no battery of
        # its own) gives the other one itself, not an equal copy with new numbers.
        if other.nothing:
            return self
        if self.nothing:
            return other
        return Endurance(
            self.lower + other.lower,
            self.upper + other.upper,
            self.stages + other.stages,
            _unique(self.unknowns + other.unknowns),
        )

    def as_fact(self) -> Fact:
        """This endurance as a fact (code ``endurance``), for alerts to keep."""
        return Fact("endurance", {"lower": self.lower, "upper": self.upper,
                                  "stages": self.stages, "unknowns": self.unknowns})

    @classmethod
    def from_fact(cls, fact: Fact) -> Endurance:
        """The endurance :meth:`as_fact` gave (missing bounds read as unknown)."""
        lower, upper = fact.number("lower"), fact.number("upper")
        return cls(0.0 if lower is None else lower, math.inf if upper is None else upper,
                   fact.facts("stages"), fact.facts("unknowns"))


def unbounded(*stages: Fact) -> Endurance:
    """Lasts for ever, because of ``stages``."""
    return Endurance(math.inf, math.inf, stages)


def lost(*stages: Fact) -> Endurance:
    """Gives nothing, because of ``stages``."""
    return Endurance(0.0, 0.0, stages)


def unknown(*unknowns: Fact, lower: float = 0.0, upper: float = math.inf) -> Endurance:
    """Not known (between ``lower`` and ``upper`` hours), because of ``unknowns``."""
    return Endurance(lower, upper, (), unknowns)


def least(items: Iterable[tuple[str, Endurance]]) -> Endurance:
    """The shortest-lived of ``items`` (key, endurance): what a chain of links lasts.

    Its stages are those of the link that certainly binds (the smallest upper
    bound; an exact one before an unknown one, then by key); its unknowns those
    of every link that might still bind.  ``items`` must not be empty.
    """
    pool = sorted(items, key=lambda kv: kv[0])
    if len(pool) == 1:
        return pool[0][1]
    lower = min(e.lower for _, e in pool)
    upper = min(e.upper for _, e in pool)
    binding = min(pool, key=lambda kv: (kv[1].upper, not kv[1].exact))[1]
    unknowns = [f for _, e in pool if e.lower < upper or e is binding for f in e.unknowns]
    return _as(binding, lower, upper, _unique(tuple(unknowns)))


def most(items: Iterable[tuple[str, Endurance]]) -> Endurance:
    """The longest-lived of ``items`` (key, endurance): what several providers give.

    Its stages are those of the provider that certainly carries (the largest
    lower bound; an exact one first, then by key) — or, when every one is lost,
    of all of them; its unknowns those of every provider that might still do
    better.  ``items`` must not be empty.
    """
    pool = sorted(items, key=lambda kv: kv[0])
    if len(pool) == 1:
        return pool[0][1]
    lower = max(e.lower for _, e in pool)
    upper = max(e.upper for _, e in pool)
    if upper == 0:
        return Endurance(0.0, 0.0, tuple(f for _, e in pool for f in e.stages))
    carrier = min(pool, key=lambda kv: (-kv[1].lower, not kv[1].exact))[1]
    unknowns = [f for _, e in pool if e.upper > lower or e is carrier for f in e.unknowns]
    return _as(carrier, lower, upper, _unique(tuple(unknowns)))


def _as(taken: Endurance, lower: float, upper: float, unknowns: tuple[Fact, ...]
        ) -> Endurance:
    """``taken``'s stages with these bounds and unknowns: ``taken`` itself when they are
    its own (a chain of links on mains lasts what its binding link does: one object,
    shared by every chain and scenario through that link, not one per chain)."""
    if lower == taken.lower and upper == taken.upper and unknowns == taken.unknowns:
        return taken
    return Endurance(lower, upper, taken.stages, unknowns)


def _unique(facts: tuple[Fact, ...]) -> tuple[Fact, ...]:
    out: list[Fact] = []
    for f in facts:
        if f not in out:
            out.append(f)
    return tuple(out)
