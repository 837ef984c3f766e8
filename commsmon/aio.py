"""Small asyncio helpers the daemon's loops share."""

from __future__ import annotations

import asyncio

__all__ = ["raise_if_cancel_swallowed"]


def raise_if_cancel_swallowed() -> None:
    """Raise CancelledError when this task was cancelled and the cancel got lost.

    On Python 3.11 ``asyncio.wait_for`` drops a cancellation that arrives as
    the awaited future completes.  gufo_snmp waits for every reply that way and
    aiomqtt 2.5 for every QoS 1 PUBACK, so a loop cancelled just then would run
    on forever and hold the daemon's shutdown (seen with 10 000 targets: one
    SIGTERM in a hundred polls lands there).  The task still counts the request
    (``Task.cancelling()``); nothing in commsmon calls ``uncancel()`` outside
    ``asyncio.timeout``, which balances its own.  Call it after each await of
    such a library in a loop that runs until cancelled.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
