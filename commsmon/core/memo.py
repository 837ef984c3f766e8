"""Judgements kept from one evaluation to the next while what they read is unchanged.

A judgement (a site's scenarios, a device's endurance) is a pure function of the
device views, outages and mains cuts it looks up, and of the time.  :class:`Reads`
hands it those mappings and notes every key it looks up; the next evaluation gives
back the kept result, the same object (:meth:`Memo.get`), unless one of those keys
changed since (:meth:`Memo.forget`: the caller says which did).
What is not kept: a judgement that walked a whole mapping, and one that moves with
the clock (the caller's ``moves``: one that read a check-in's battery, which decays
by the hour, or a mains cut in progress, as the public network's backup runs down,
and a ``now`` verdict that names clock times, counted from its evaluation).  Views compared must be
values: nothing in them may change after they are made.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
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

    def found(self) -> Iterator[V]:
        """The values its lookups found."""
        return (v for v in self.seen.values() if v is not _MISSING)  # type: ignore[misc]


class Memo(Generic[R]):
    """Results by key (a site id, a device id), each kept until something it looked up
    changes (:meth:`forget`).

    Args:
        moves: whether a result, given what it read, changes with the clock alone
            (then it is judged again at every evaluation).
    """

    def __init__(self, moves: Callable[[R, tuple[Reads[str, object], ...]], bool]) -> None:
        self._moves = moves
        self._kept: dict[str, R] = {}
        # per mapping given to get(): key looked up -> the results that looked it up
        # (one key alone, a few in a tuple, many in a set: most keys have one or two)
        self._readers: list[dict[str, _Owners]] = []
        #: Keys asked for whose result is not kept (judged again at their next get).
        self.unkept: set[str] = set()
        self.judged = 0  # judgements made (not kept) since creation
        self.kept = 0  # judgements given back

    def clear(self) -> None:
        """Forget everything (the inventory changed)."""
        self._kept.clear()
        self._readers.clear()
        self.unkept.clear()

    def forget(self, changed: Sequence[Iterable[str]]) -> None:
        """Drop every result that looked up one of ``changed[i]`` in the ``i``-th
        mapping (a key whose value changed, appeared or went)."""
        for readers, keys in zip(self._readers, changed, strict=False):
            for key in keys:
                owners = readers.pop(key, ())
                for owner in (owners,) if isinstance(owners, str) else owners:
                    if self._kept.pop(owner, _MISSING) is not _MISSING:
                        self.unkept.add(owner)

    def holds(self, key: str) -> bool:
        """Whether a result is kept for ``key``."""
        return key in self._kept

    def get(self, key: str, judge: Callable[..., R], *data: Mapping[str, object]) -> R:
        """The result kept for ``key``, else ``judge(*data)``, kept unless it walked a
        whole mapping or ``moves``."""
        if key in self._kept:
            self.kept += 1
            return self._kept[key]
        reads = tuple(Reads(d) for d in data)
        result = judge(*reads)
        self.judged += 1
        if any(r.whole for r in reads) or self._moves(result, reads):
            self.unkept.add(key)
        else:
            self.unkept.discard(key)
            self._kept[key] = result
            while len(self._readers) < len(reads):
                self._readers.append({})
            for readers, r in zip(self._readers, reads, strict=False):
                for looked in r.seen:
                    readers[looked] = _with(readers.get(looked), key)
        return result


_Owners = str | tuple[str, ...] | set[str]


def _with(owners: _Owners | None, key: str) -> _Owners:
    """``owners`` with ``key`` added (a tuple up to 8, then a set)."""
    if owners is None or owners == key:
        return key
    if isinstance(owners, str):
        return (owners, key)
    if isinstance(owners, tuple):
        if key in owners:
            return owners
        return (*owners, key) if len(owners) < 8 else {*owners, key}
    owners.add(key)
    return owners
