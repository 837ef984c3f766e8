"""The peers an HA pair needs, real and on 127.0.0.1, for tests and benchmarks:
Debian's ``etcd`` (one member) and ``prometheus-alertmanager`` processes peered
into one cluster (``--cluster.peer``), each sending to one webhook."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
import urllib.request
from pathlib import Path

from commsmon.errors import CommsmonError
from commsmon.sim._process import Reaper, Service, stop_process
from commsmon.sim.ports import free_port

__all__ = ["AlertmanagerCluster", "Etcd", "PeerError"]

HOST = "127.0.0.1"


class PeerError(CommsmonError):
    """etcd or Alertmanager is missing, or would not start."""


def _binary(*names: str) -> str:
    for name in names:
        found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin")
        if found:
            return found
    raise PeerError(f"{names[0]} is not installed (make deps installs it)")


async def _ready(url: str, proc: asyncio.subprocess.Process, log: Path, within: float) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if proc.returncode is not None:
            break
        try:
            await asyncio.to_thread(lambda: urllib.request.urlopen(url, timeout=1).close())
            return
        except OSError:
            await asyncio.sleep(0.1)
    tail = await asyncio.to_thread(log.read_text, errors="replace")
    raise PeerError(f"{url} did not answer: {tail[-2000:]}")


class Etcd(Service):
    """One etcd member; :attr:`endpoint` is ``127.0.0.1:<port>`` (``ha.etcd``)."""

    def __init__(self) -> None:
        self.port, self._peer = free_port(), free_port()
        self.endpoint = f"{HOST}:{self.port}"
        self._dir = tempfile.TemporaryDirectory(prefix="commsmon-etcd-")
        self._proc: asyncio.subprocess.Process | None = None
        self._reaper = Reaper()

    async def start(self) -> None:
        """Start etcd (again, after :meth:`stop`, on its data) and wait until it is healthy."""
        peer, base = self._peer, Path(self._dir.name)
        log = base / "etcd.log"
        self._proc = await asyncio.create_subprocess_exec(
            _binary("etcd"), "--name", "m0", "--data-dir", str(base / "data"),
            "--listen-client-urls", f"http://{self.endpoint}",
            "--advertise-client-urls", f"http://{self.endpoint}",
            "--listen-peer-urls", f"http://{HOST}:{peer}",
            "--initial-advertise-peer-urls", f"http://{HOST}:{peer}",
            "--initial-cluster", f"m0=http://{HOST}:{peer}",
            stdout=log.open("wb"), stderr=asyncio.subprocess.STDOUT)
        self._reaper.watch(self, self._proc)
        await _ready(f"http://{self.endpoint}/health", self._proc, log, 30)

    async def stop(self) -> None:
        """Stop etcd, keeping its data."""
        await stop_process(self._proc)
        self._reaper.release()

    async def close(self) -> None:
        """Stop etcd and remove its data."""
        await self.stop()
        self._dir.cleanup()


class AlertmanagerCluster(Service):
    """``size`` Alertmanagers peered into one cluster, routing everything to ``webhook``
    (group_wait 1 s, group_interval 5 s, repeat 1 h; ``monitor_heartbeat`` to
    ``watchdog``, repeated every 10 s, when given).

    ``peer_timeout`` is the seconds each member waits per place in the cluster before
    it sends what an earlier member may have sent: it sends only if the earlier one's
    notification log entry, written once its webhook call returned and then gossiped,
    has not reached it by then.  Alertmanager's default is 15 s; at 2 s, with two
    daemons and the simulated fleet busy on two cores, both members once sent the same
    notification (tests/integration/test_ha.py, one run in five).

    Attributes:
        urls: each member's base URL (``http://127.0.0.1:<port>``).
    """

    def __init__(self, webhook: str, size: int = 2, watchdog: str | None = None,
                 peer_timeout: float = 5.0) -> None:
        self._webhook, self._watchdog, self._size = webhook, watchdog, size
        self._peer_timeout = peer_timeout
        self._dir = tempfile.TemporaryDirectory(prefix="commsmon-am-")
        self._procs: list[asyncio.subprocess.Process] = []
        self._reapers: list[Reaper] = []
        self.urls: list[str] = []

    def _config(self) -> str:
        watchdog = ""
        if self._watchdog:
            watchdog = (
                "  routes:\n"
                "    - matchers: ['alertname=\"monitor_heartbeat\"']\n"
                "      receiver: watchdog\n"
                "      group_wait: 0s\n      group_interval: 10s\n      repeat_interval: 10s\n")
        text = (
            "route:\n  receiver: hook\n  group_by: [site, alertname]\n"
            "  group_wait: 1s\n  group_interval: 5s\n  repeat_interval: 1h\n" + watchdog +
            "receivers:\n"
            f"  - name: hook\n    webhook_configs: [{{url: '{self._webhook}'}}]\n")
        if self._watchdog:
            text += (f"  - name: watchdog\n    webhook_configs: [{{url: '{self._watchdog}',"
                     " send_resolved: false}]\n")
        return text

    async def start(self) -> None:
        """Start the members, each peered with the first, and wait until all are ready."""
        exe = _binary("prometheus-alertmanager", "alertmanager")
        base = Path(self._dir.name)
        conf = base / "am.yml"
        conf.write_text(self._config(), encoding="utf-8")
        clusters = [free_port() for _ in range(self._size)]
        for i in range(self._size):
            port, log = free_port(), base / f"am-{i}.log"
            peers = [f"--cluster.peer={HOST}:{c}" for j, c in enumerate(clusters) if j != i]
            proc = await asyncio.create_subprocess_exec(
                exe, f"--config.file={conf}", f"--storage.path={base / f'data-{i}'}",
                f"--web.listen-address={HOST}:{port}",
                f"--cluster.listen-address={HOST}:{clusters[i]}",
                f"--cluster.advertise-address={HOST}:{clusters[i]}",
                f"--cluster.peer-timeout={self._peer_timeout}s",
                "--cluster.gossip-interval=100ms", "--cluster.pushpull-interval=2s",
                *peers, stdout=log.open("wb"), stderr=asyncio.subprocess.STDOUT)
            reaper = Reaper()
            reaper.watch(self, proc)
            self._procs.append(proc)
            self._reapers.append(reaper)
            self.urls.append(f"http://{HOST}:{port}")
        for i, (url, proc) in enumerate(zip(self.urls, self._procs, strict=True)):
            await _ready(f"{url}/-/ready", proc, base / f"am-{i}.log", 30)

    async def close(self) -> None:
        """Stop every member and remove their data."""
        for proc in self._procs:
            await stop_process(proc)
        for reaper in self._reapers:
            reaper.release()
        self._dir.cleanup()
