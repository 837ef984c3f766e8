"""One object for each distinct value: of a compiled configuration, of maps the core
derives from it."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any, TypeVar

__all__ = ["Shared"]

T = TypeVar("T", bound=Hashable)


class Shared:
    """Hands back the first object it was given equal to ``value``.

    A province's setup lives in the daemon for its whole run, and thousands of
    devices hold values alike that parsing made each anew: a host, a community, a
    profile's name, a generator's curve, an empty set of addresses.  Passed
    through one ``Shared``, each is kept once (about 9 MiB of 26 at 20 000
    devices).  Keyed by type, value and ``repr``, so values equal but written
    apart stay apart, inside a curve too: ``1``, ``1.0`` and ``True``; ``0.0`` and
    ``-0.0``.
    """

    __slots__ = ("_seen",)

    def __init__(self) -> None:
        self._seen: dict[tuple[type, Hashable, str], Any] = {}

    def __call__(self, value: T) -> T:
        """``value``, or the equal one of the same type given first.

        Raises:
            TypeError: ``value`` is not hashable.
        """
        kept: T = self._seen.setdefault((type(value), value, repr(value)), value)
        return kept
