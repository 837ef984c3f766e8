"""A real ``mosquitto`` broker on 127.0.0.1 for the demo, tests and benchmarks.

:class:`Mosquitto` writes a temp config, runs the Debian ``mosquitto`` binary
in the foreground and waits until its port accepts TCP connections. It can be
stopped, killed and started again on the same port to test how clients live
through a broker restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import shutil
import socket
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from commsmon.errors import CommsmonError
from commsmon.sim._process import Reaper, Service, stop_process
from commsmon.sim.ports import free_port

__all__ = ["HOST", "BrokerError", "Mosquitto", "find_mosquitto"]

HOST = "127.0.0.1"
"""The only address the broker listens on."""

_LOG_TAIL_CHARS = 4000


class BrokerError(CommsmonError):
    """mosquitto is missing, or would not start or listen."""


def find_mosquitto() -> str | None:
    """Path of the ``mosquitto`` binary (``$PATH``, then /usr/sbin), or None."""
    found = shutil.which("mosquitto")
    if found:
        return found
    if os.access("/usr/sbin/mosquitto", os.X_OK):
        return "/usr/sbin/mosquitto"
    return None


def _config(port: int, log_file: Path, listener: Sequence[str], password_file: Path | None
            ) -> str:
    user = pwd.getpwuid(os.geteuid()).pw_name
    return "\n".join(
        [
            f"listener {port} {HOST}",
            *listener,
            "allow_anonymous true" if password_file is None else "allow_anonymous false",
            *([f"password_file {password_file}"] if password_file else []),
            "persistence false",
            # Run as whoever we are. As root mosquitto otherwise switches to the
            # user "mosquitto", which cannot write its log into our temp dir.
            # As any other user this line has no effect.
            f"user {user}",
            f"log_dest file {log_file}",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
            # Per client, mosquitto queues at most this many QoS 1/2 messages
            # beyond those in flight and silently drops the rest. The default
            # of 1000 loses messages to a slow subscriber during bursts (a
            # village's buffered telemetry replaying after its link returns,
            # a benchmark), so raise it.
            "max_queued_messages 100000",
            # max_inflight_messages (QoS 1/2 being delivered at once per
            # client) keeps its default of 20: the queue above absorbs bursts,
            # and 0 ("no maximum") would not be what a deployed broker does.
            "",
        ]
    )


class Mosquitto(Service):
    """A mosquitto broker on 127.0.0.1, in a temp dir of its own.

    Usage::

        async with Mosquitto() as broker:
            async with aiomqtt.Client(broker.host, broker.port) as client: ...
            await broker.stop()
            await broker.start()  # same port again

    Args:
        port: TCP port on 127.0.0.1; 0 (default) picks a free one at the first
            start. Later starts reuse it.
        startup_timeout: seconds to wait for the port to accept connections,
            default 10.
        listener: more settings of the listener, e.g. TLS: ``cafile ...``,
            ``certfile ...``, ``keyfile ...``, ``require_certificate true``.
        password_file: a ``mosquitto_passwd`` file; clients must then log in.

    Attributes:
        host: always ``"127.0.0.1"``.
        port: the TCP port (0 until the first start when picked freely).
        log_file: mosquitto's log (exists between the first ``start()`` and
            leaving the context).
    """

    def __init__(
        self,
        port: int = 0,
        *,
        startup_timeout: float = 10.0,
        listener: Sequence[str] = (),
        password_file: Path | None = None,
    ) -> None:
        self.host = HOST
        self._listener = tuple(listener)
        self._password_file = password_file
        self.port = port
        self.startup_timeout = startup_timeout
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._proc: asyncio.subprocess.Process | None = None
        self._reaper = Reaper()

    @property
    def log_file(self) -> Path:
        if self._tmp is None:
            raise BrokerError("broker has not been started")
        return Path(self._tmp.name) / "mosquitto.log"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.returncode is None

    async def start(self) -> None:
        """Start mosquitto (again, on the same port) and wait until it listens.

        Raises:
            BrokerError: no mosquitto binary, the port is taken, or mosquitto
                exited or did not listen within ``startup_timeout`` seconds
                (the message ends with its log).
        """
        if self.running:
            return
        binary = find_mosquitto()
        if binary is None:
            raise BrokerError("mosquitto not found on $PATH or in /usr/sbin; apt install mosquitto")
        if self._tmp is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="commsmon-mosquitto-")
        root = Path(self._tmp.name)
        port = self.port or free_port(socket.SOCK_STREAM, HOST)
        if not _tcp_port_free(port):
            raise BrokerError(f"TCP port {HOST}:{port} is already in use")
        conf = root / "mosquitto.conf"
        conf.write_text(_config(port, self.log_file, self._listener, self._password_file))
        # stdout/stderr to a file: messages before the log file opens land there.
        out = os.open(root / "stderr.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            self._proc = await asyncio.create_subprocess_exec(
                binary,
                "-c",
                str(conf),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                # Its own session: a Ctrl-C to the demo's process group reaches us,
                # and we stop it after our clients, not before them.
                start_new_session=True,
            )
        finally:
            os.close(out)
        # Never orphan the process: if this object is dropped or the interpreter
        # exits without stop() (a test forgot, a loop closed early), SIGTERM it.
        self._reaper.watch(self, self._proc)
        try:
            await self._wait_listening(self._proc, port)
        except BaseException:  # including cancellation: leave no process behind
            await self.kill()
            raise
        self.port = port

    async def _wait_listening(self, proc: asyncio.subprocess.Process, port: int) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while True:
            if proc.returncode is not None:
                raise BrokerError(
                    f"mosquitto exited with status {proc.returncode} during startup on "
                    f"{HOST}:{port}:\n{self._log_tail()}"
                )
            if await _accepts(port):
                return
            if time.monotonic() > deadline:
                raise BrokerError(
                    f"mosquitto did not listen on {HOST}:{port} within "
                    f"{self.startup_timeout} s:\n{self._log_tail()}"
                )
            await asyncio.sleep(0.02)

    async def stop(self) -> None:
        """Stop gracefully (SIGTERM; SIGKILL after 5 s) and wait. Idempotent."""
        proc, self._proc = self._proc, None
        self._reaper.release()
        await stop_process(proc)

    async def kill(self) -> None:
        """Kill with SIGKILL (a crash: no DISCONNECTs, no Last Wills sent) and wait."""
        proc, self._proc = self._proc, None
        self._reaper.release()
        await stop_process(proc, kill=True)

    async def close(self) -> None:
        """Stop mosquitto and delete the temp dir."""
        await self.stop()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def _log_tail(self) -> str:
        if self._tmp is None:
            return ""
        parts = []
        for name in ("stderr.log", "mosquitto.log"):
            with contextlib.suppress(OSError):
                parts.append((Path(self._tmp.name) / name).read_text(errors="replace"))
        return "".join(parts)[-_LOG_TAIL_CHARS:]


def _tcp_port_free(port: int) -> bool:
    """True if ``port`` can be bound (SO_REUSEADDR, as mosquitto does, so a
    previous run's TIME_WAIT connections do not count)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
        return True


async def _accepts(port: int) -> bool:
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(HOST, port), 0.5)
    except (OSError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True

