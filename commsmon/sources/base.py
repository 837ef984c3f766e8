"""The one interface every source implements, so the daemon runs and reloads them alike.

A source turns protocol traffic into :class:`~commsmon.core.types.Observation`
values handed to the sink it was built with; the daemon runs each in its task
group and, on a configuration reload, asks each to take the new setup. Adding
a source (the SNMP trap receiver next) is: implement :class:`Source`, add it to
the daemon's list.
"""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from commsmon.config.compile import Setup

__all__ = ["Source"]


class Source(abc.ABC):
    """A producer of observations, run until cancelled.

    Attributes:
        name: the source's task name (``snmp``, ``mqtt``), in logs.
    """

    name: str

    @abc.abstractmethod
    async def run(self) -> None:
        """Produce observations until cancelled; raise only on a bug."""

    @abc.abstractmethod
    async def reconfigure(self, setup: Setup) -> bool:
        """Take a reloaded setup from now on.

        Returns:
            True if the source restarted (closed and reopened its sessions),
            False if it applied the change in place.
        """

    def alive(self, now: float) -> bool:
        """Whether the source shows it is working (monotonic ``now``); the watchdog
        withholds its ping while any source is not. True unless a source can tell."""
        return True
