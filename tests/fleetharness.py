"""Test harness: the demo inventory on free ports, the daemon as a real process,
and a scraper that parses its exposition.  Not a test module."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families
from ruamel.yaml import YAML

from commsmon.sim.ports import free_port

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "config" / "demo.yaml"

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def write_config(
    directory: Path,
    *,
    mqtt_port: int,
    interval: float = 2.0,
    timeout: float = 0.5,
    retries: int = 0,
    extra_devices: list[dict[str, Any]] | None = None,
    alerting: dict[str, Any] | None = None,
) -> tuple[Path, int]:
    """The demo inventory with fresh ports and quick polling; returns (path, http port)."""
    yaml = YAML()
    data = yaml.load(DEMO.read_text(encoding="utf-8"))
    data["profiles_dir"] = str(ROOT / "config" / "profiles")
    data["defaults"]["snmp"].update(interval=interval, timeout=timeout, retries=retries)
    data["mqtt"]["port"] = mqtt_port
    data["mqtt"]["client_id"] = f"commsmon-test-{os.getpid()}-{mqtt_port}"
    http_port = free_port()
    data["http"]["port"] = http_port
    held = []  # keep each picked port bound until all are picked, so none repeats
    try:
        for site in data["sites"]:
            for device in site["devices"]:
                if "snmp" in device:
                    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                    held.append(sock)
                    sock.bind(("127.0.0.1", free_port(socket.SOCK_DGRAM)))
                    device["snmp"]["port"] = sock.getsockname()[1]
    finally:
        for sock in held:
            sock.close()
    if extra_devices:
        data["sites"][0]["devices"].extend(extra_devices)
    data["state_dir"] = str(directory / "state")
    if alerting is not None:
        data["alerting"] = alerting
    path = directory / "fleet.yaml"
    with path.open("w", encoding="utf-8") as f:
        yaml.dump(data, f)
    return path, http_port


class DaemonProcess:
    """``commsmon run`` as a child process, its log in a file.

    ``wrap`` is a command that execs its arguments (``unshare ... sh -c '... exec "$@"'``),
    so ``proc.pid`` is the daemon's.
    """

    def __init__(
        self, config: Path, http_port: int, log: Path, wrap: Sequence[str] = ()
    ) -> None:
        self.url = f"http://127.0.0.1:{http_port}"
        self.log_path = log
        self._log = log.open("ab")
        self.proc = subprocess.Popen(
            [*wrap, sys.executable, "-m", "commsmon", "--log-format", "json", "run",
             "-c", str(config)],
            stdout=self._log, stderr=subprocess.STDOUT, cwd=ROOT,
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL: no clean-up at all, as a power cut or the OOM killer would."""
        self.proc.kill()
        self.proc.wait()
        self._log.close()

    def stop(self, timeout: float = 10.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode

    async def text(self) -> str:
        return await metrics_text(self.url)

    async def samples(self) -> Samples:
        return await scrape(self.url)

    async def site(self, site: str) -> dict[str, Any]:
        """``GET /api/v1/sites/{site}`` of this daemon (it must answer 200)."""
        async with aiohttp.ClientSession() as s, s.get(f"{self.url}/api/v1/sites/{site}") as r:
            assert r.status == 200
            body: dict[str, Any] = await r.json()
            return body

    async def wait_for(
        self, what: str, predicate: Callable[[Samples], bool], within: float
    ) -> float:
        """Poll /metrics until ``predicate`` holds; returns the seconds it took."""
        start = time.monotonic()
        last_error: Exception | None = None
        while time.monotonic() - start < within:
            if self.proc.poll() is not None:
                raise AssertionError(f"daemon exited {self.proc.returncode}:\n{self.log()[-3000:]}")
            try:
                samples = await self.samples()
            except (aiohttp.ClientError, OSError) as exc:
                last_error = exc
            else:
                last_error = None
                if predicate(samples):
                    return time.monotonic() - start
            await asyncio.sleep(0.25)
        raise AssertionError(f"timed out after {within} s waiting for {what} ({last_error})\n"
                             f"{self.log()[-3000:]}")


async def until(what: str, predicate: Callable[[], object], within: float) -> None:
    """Wait until ``predicate()`` is true (it looks at what a server recorded)."""
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within} s waiting for {what}")
        await asyncio.sleep(0.2)


async def metrics_text(url: str) -> str:
    """The exposition text of the daemon listening at ``url``."""
    async with aiohttp.ClientSession() as s, s.get(f"{url}/metrics") as r:
        r.raise_for_status()
        return await r.text()


async def scrape(url: str) -> Samples:
    """The parsed samples of the daemon listening at ``url``."""
    out: Samples = {}
    for family in text_string_to_metric_families(await metrics_text(url)):
        for sample in family.samples:
            out[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return out


def value(samples: Samples, name: str, **labels: str) -> float | None:
    """The value of the sample whose labels include ``labels``, or None."""
    want = set(labels.items())
    for (n, lbls), v in samples.items():
        if n == name and want <= lbls:
            return v
    return None
