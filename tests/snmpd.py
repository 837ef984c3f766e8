"""Run a real net-snmp ``snmpd`` on 127.0.0.1 for integration tests.

Usage::

    with Snmpd() as agent:
        target = SnmpTarget("127.0.0.1", agent.port, community=agent.community)
        ...
        agent.pause()    # SIGSTOP: a hung agent that still holds its port
        agent.resume()   # SIGCONT

The agent reads only its own temporary config (``-C -c``), keeps its persistent
state in the temporary directory (``SNMP_PERSISTENT_DIR``), loads no MIB files
(``-M``/``-m``) and logs to a file there. Starting is synchronous and takes
~0.1 s, so a module-scoped sync fixture serves async tests as well.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

from commsmon.sim.ports import free_port

__all__ = ["Snmpd", "SnmpdError", "free_udp_port"]

_SYS_UPTIME_0 = bytes.fromhex("2b06010201010300")  # BER body of 1.3.6.1.2.1.1.3.0
_BIND_FAILED = "Error opening specified endpoint"


class SnmpdError(RuntimeError):
    """snmpd is missing, would not start, or would not answer."""


def free_udp_port() -> int:
    """Return a UDP port on 127.0.0.1 that was free a moment ago (racy; callers retry)."""
    return free_port(socket.SOCK_DGRAM)


def _ber(tag: int, body: bytes) -> bytes:
    if len(body) >= 0x80:
        raise ValueError("short-form BER lengths only")
    return bytes((tag, len(body))) + body


def _v2c_get_sysuptime(community: str, request_id: int) -> bytes:
    """Encode a v2c GetRequest for sysUpTime.0 (RFC 3416), small enough for short lengths."""
    varbind = _ber(0x30, _ber(0x06, _SYS_UPTIME_0) + _ber(0x05, b""))
    pdu = _ber(
        0xA0,
        _ber(0x02, bytes((request_id,)))
        + _ber(0x02, b"\x00")
        + _ber(0x02, b"\x00")
        + _ber(0x30, varbind),
    )
    return _ber(0x30, _ber(0x02, b"\x01") + _ber(0x04, community.encode()) + pdu)


class Snmpd:
    """A net-snmp snmpd child process on 127.0.0.1 and a free UDP port.

    Attributes:
        host: ``"127.0.0.1"``.
        port: the UDP port it listens on (set once started).
        community: read-only community, ``"public"``.
        community2: a second read-only community, ``"second"``.
        sys_name: the configured sysName.0.
        sys_location: the configured sysLocation.0.
        sys_descr: the configured sysDescr.0.
        v3_user: an SNMPv3 read-only user requiring authPriv, with SHA-256
            authentication (``v3_auth``) and AES-128 privacy (``v3_priv``).
    """

    host = "127.0.0.1"
    community = "public"
    community2 = "second"
    sys_name = "commsmon-test-agent"
    sys_location = "test rack, shelf 2"
    sys_descr = "commsmon integration snmpd"
    v3_user = "commsmon"
    v3_auth = "auth-Passphrase-1"
    v3_priv = "priv-Passphrase-2"

    def __init__(
        self, *, start_timeout: float = 5.0, extra_communities: Sequence[str] = ()
    ) -> None:
        """Prepare, but do not start, an agent.

        Args:
            start_timeout: seconds to wait for the agent's first answer.
            extra_communities: more read-only communities (distinct targets for benchmarks).
        """
        self.start_timeout = start_timeout
        self.extra_communities = tuple(extra_communities)
        self.port = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._paused = False

    @property
    def log(self) -> str:
        """The agent's log so far (for failure messages)."""
        if self._tmp is None:
            return ""
        path = Path(self._tmp.name) / "snmpd.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def start(self, attempts: int = 5) -> None:
        """Start snmpd and wait until it answers a GET.

        Args:
            attempts: how many free ports to try; another process may grab the
                port between our probe and snmpd's bind.

        Raises:
            SnmpdError: snmpd is not installed, exited, or did not answer within
                ``start_timeout`` seconds.
        """
        exe = shutil.which("snmpd") or next(
            (p for p in ("/usr/sbin/snmpd", "/usr/local/sbin/snmpd") if os.access(p, os.X_OK)),
            None,
        )
        if exe is None:
            raise SnmpdError(
                "snmpd not found: install net-snmp's snmpd (Debian: apt install snmpd)"
            )
        self._tmp = tempfile.TemporaryDirectory(prefix="commsmon-snmpd-")
        for _ in range(attempts):
            self.port = free_udp_port()
            self._spawn(exe)
            try:
                self._wait_ready()
                return
            except SnmpdError:
                log = self.log
                self.stop(cleanup=False)
                if _BIND_FAILED not in log:
                    self._cleanup()
                    raise
        self._cleanup()
        raise SnmpdError(f"snmpd could not bind a port in {attempts} attempts")

    def _spawn(self, exe: str) -> None:
        assert self._tmp is not None
        tmp = Path(self._tmp.name)
        conf = tmp / "snmpd.conf"
        # The listening address is given here only: given both here and on the
        # command line, snmpd fails to bind.
        conf.write_text(
            f"agentaddress udp:{self.host}:{self.port}\n"
            f"rocommunity {self.community} 127.0.0.1\n"
            f"rocommunity {self.community2} 127.0.0.1\n"
            + "".join(f"rocommunity {c} 127.0.0.1\n" for c in self.extra_communities)
            + f"createUser {self.v3_user} SHA-256 {self.v3_auth} AES {self.v3_priv}\n"
            f"rouser {self.v3_user} priv\n"
            f"sysName {self.sys_name}\n"
            f"sysLocation {self.sys_location}\n"
            f"sysDescr {self.sys_descr}\n"
            "sysContact nobody@example.invalid\n"
            "dontLogTCPWrappersConnects yes\n"
        )
        (tmp / "snmpd.log").unlink(missing_ok=True)
        persist = tmp / "persist"
        persist.mkdir(exist_ok=True)
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "SNMP_PERSISTENT_DIR": str(persist),
            "SNMPCONFPATH": str(tmp),
            "MIBS": "",
            "MIBDIRS": str(tmp),
        }
        self._proc = subprocess.Popen(
            [
                exe,
                "-f",  # foreground: our child is snmpd itself
                "-C",  # no default config files
                "-c",
                str(conf),
                "-Lf",
                str(tmp / "snmpd.log"),
                "-p",
                str(tmp / "snmpd.pid"),
                "-M",
                str(tmp),
                "-m",
                "",
            ],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def _wait_ready(self) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + self.start_timeout
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(0.05)
            request_id = 0
            while time.monotonic() < deadline:
                if self._proc.poll() is not None:
                    raise SnmpdError(f"snmpd exited with {self._proc.returncode}; log:\n{self.log}")
                request_id = request_id % 100 + 1
                sock.sendto(_v2c_get_sysuptime(self.community, request_id), (self.host, self.port))
                try:
                    if sock.recv(4096):
                        return
                except (TimeoutError, ConnectionRefusedError):
                    pass
        raise SnmpdError(f"snmpd did not answer in {self.start_timeout} s; log:\n{self.log}")

    def pause(self) -> None:
        """Freeze the agent (SIGSTOP): it keeps its port but answers nothing."""
        assert self._proc is not None, "not started"
        self._proc.send_signal(signal.SIGSTOP)
        self._paused = True

    def resume(self) -> None:
        """Thaw the agent (SIGCONT); it then answers the requests queued meanwhile."""
        assert self._proc is not None, "not started"
        self._proc.send_signal(signal.SIGCONT)
        self._paused = False

    def stop(self, *, cleanup: bool = True) -> None:
        """Stop the agent with SIGTERM (SIGKILL after 5 s) and wait for it.

        Args:
            cleanup: also remove the temporary directory.
        """
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            if self._paused:
                proc.send_signal(signal.SIGCONT)
                self._paused = False
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if cleanup:
            self._cleanup()

    def _cleanup(self) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
