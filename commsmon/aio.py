"""Small asyncio helpers the daemon's loops share."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine
from typing import Any

__all__ = ["on_signal", "raise_if_cancel_swallowed", "run_until"]


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


def on_signal(signum: int, handler: Callable[[], None] | None) -> None:
    """Install (or with ``None`` remove) a loop signal handler where signals can be had."""
    loop = asyncio.get_running_loop()
    try:
        if handler is None:
            loop.remove_signal_handler(signum)
        else:
            loop.add_signal_handler(signum, handler)
    except (NotImplementedError, RuntimeError, ValueError):  # not the main thread
        pass


async def run_until(work: Coroutine[Any, Any, None] | None, event: asyncio.Event) -> None:
    """Run ``work`` (nothing if ``None``) until ``event`` is set, then cancel it and
    clear ``event``: one round of a part that starts over on a reload. Work that
    ends by itself raises its error here (it is meant to run until cancelled)."""
    tasks: set[asyncio.Task[Any]] = {asyncio.create_task(event.wait())}
    if work is not None:
        tasks.add(asyncio.create_task(work))
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            task.result()
    finally:
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    event.clear()
