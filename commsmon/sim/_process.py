"""Lifecycles in the simulated fleet: ``async with`` for start/close, and child
processes (mosquitto, snmpsim) that are stopped and never orphaned."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import weakref
from types import TracebackType
from typing import Any, Self

__all__ = ["Reaper", "Service", "stop_process"]

Process = asyncio.subprocess.Process


async def stop_process(proc: Process | None, *, kill: bool = False, grace: float = 5.0) -> None:
    """SIGTERM (or SIGKILL with ``kill``) a child and wait; SIGKILL after ``grace`` seconds."""
    if proc is None or proc.returncode is not None:
        return
    if kill:
        proc.kill()
        await proc.wait()
        return
    proc.terminate()
    try:
        await asyncio.wait_for(proc.wait(), grace)
    except TimeoutError:
        proc.kill()
        await proc.wait()


class Service:
    """``start()`` and ``close()`` as an async context manager; a start that fails
    closes whatever it had opened before the error goes on."""

    async def start(self) -> None:
        """Start serving."""
        raise NotImplementedError

    async def close(self) -> None:
        """Stop and release everything."""
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        try:
            await self.start()
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


class Reaper:
    """SIGTERMs a child if its owner is dropped or Python exits without stopping it."""

    def __init__(self) -> None:
        self._finalizer: weakref.finalize[Any, Any] | None = None

    def watch(self, owner: object, proc: Process) -> None:
        """Start watching ``proc`` on behalf of ``owner``."""
        self._finalizer = weakref.finalize(owner, _terminate_if_running, proc)

    def release(self) -> None:
        """The owner stops the child itself."""
        if self._finalizer is not None:
            self._finalizer.detach()
            self._finalizer = None


def _terminate_if_running(proc: Process) -> None:
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGTERM)
