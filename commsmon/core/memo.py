"""Judgements kept from one evaluation to the next while what they read is unchanged.

A judgement (a site's scenarios, a device's endurance) is a pure function of the
device views, outages and mains cuts it looks up, and of the time.  :class:`Reads`
hands it those mappings and notes every key it looks up and what it found; the
next evaluation gives back the kept result (:meth:`Memo.get`, stamped with the
evaluation's time) when each of those keys holds an equal value and the result
does not move with the clock.  What cannot be kept (the caller's ``moves``): a
judgement that walked a whole mapping, one that read a check-in's battery (it
decays by the hour) or a mains cut in progress (the public network's backup runs
down), and a ``now`` verdict with a clock time (``until``).  Views compared must
be values: nothing in them may change after they are made.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = ["Memo", "Reads"]

K = TypeVar("K")
V = TypeVar("V")
R = TypeVar("R")

_MISSING: object = object()


class Reads(Mapping[K, V]):
    """``data`` as a read-only mapping that notes each key looked up (:attr:`seen`:
    key -> the value found, or a marker for none) and whether all of it was walked."""

    __slots__ = ("_data", "seen", "whole")

    def __init__(self, data: Mapping[K, V]) -> None:
        self._data = data
        self.seen: dict[K, object] = {}
        self.whole = False

    def __getitem__(self, key: K) -> V:
        value = self._look(key)
        if value is _MISSING:
            raise KeyError(key)
        return value  # type: ignore[return-value]

    def get(self, key: K, default: object = None) -> V | object:  # type: ignore[override]
        value = self._look(key)
        return default if value is _MISSING else value

    def __contains__(self, key: object) -> bool:
        return self._look(key) is not _MISSING  # type: ignore[arg-type]

    def __iter__(self) -> Iterator[K]:
        self.whole = True
        return iter(self._data)

    def __len__(self) -> int:
        self.whole = True
        return len(self._data)

    def _look(self, key: K) -> object:
        value = self._data.get(key, _MISSING)
        self.seen[key] = value
        return value

    def still(self, data: Mapping[K, V]) -> bool:
        """Whether ``data`` gives the same answer to every lookup made through this."""
        if self.whole:
            return False
        for key, was in self.seen.items():
            value = data.get(key, _MISSING)
            if value is not was and value != was:
                return False
        return True

    def found(self) -> Iterator[V]:
        """The values its lookups found."""
        return (v for v in self.seen.values() if v is not _MISSING)  # type: ignore[misc]


@dataclass(slots=True)
class _Kept(Generic[R]):
    reads: tuple[Reads[str, object], ...]
    result: R


class Memo(Generic[R]):
    """Results by key (a site id, a device id), each with what it read.

    Args:
        moves: whether a result, given what it read, changes with the clock alone
            (then it is judged again at every evaluation).
    """

    def __init__(self, moves: Callable[[R, tuple[Reads[str, object], ...]], bool]) -> None:
        self._moves = moves
        self._kept: dict[str, _Kept[R]] = {}
        self.judged = 0  # judgements made (not kept) since creation
        self.kept = 0  # judgements given back

    def clear(self) -> None:
        """Forget everything (the inventory changed)."""
        self._kept.clear()

    def get(self, key: str, judge: Callable[..., R], *data: Mapping[str, object],
            restamp: Callable[[R], R] | None = None) -> R:
        """``judge(*data)``, or the result kept for ``key`` if every lookup it made into
        each of ``data`` (in the same order) still finds the same value — passed through
        ``restamp`` (which gives it the evaluation's time)."""
        kept = self._kept.get(key)
        if kept is not None and all(r.still(d) for r, d in zip(kept.reads, data, strict=True)):
            self.kept += 1
            if restamp is not None:
                kept.result = restamp(kept.result)
            return kept.result
        reads = tuple(Reads(d) for d in data)
        result = judge(*reads)
        self.judged += 1
        if self._moves(result, reads):
            self._kept.pop(key, None)
        else:
            self._kept[key] = _Kept(reads, result)
        return result
