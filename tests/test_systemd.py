"""The systemd unit passes systemd-analyze; the daemon speaks the notify protocol."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.fleetharness import ROOT, free_port, write_config

UNIT = ROOT / "deploy" / "systemd" / "commsmon.service"
pytestmark = pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                                reason="needs systemd-analyze")


def _installed_copy(tmp_path: Path) -> Path:
    """The unit with ExecStart pointing at this venv's commsmon, as an install would."""
    exe = Path(sys.executable).parent / "commsmon"
    text = UNIT.read_text().replace("/opt/commsmon/venv/bin/commsmon", str(exe))
    unit = tmp_path / "commsmon.service"
    unit.write_text(text)
    return unit


def test_unit_verifies_clean(tmp_path: Path) -> None:
    """systemd-analyze verify has nothing to say about the unit."""
    result = subprocess.run(["systemd-analyze", "verify", str(_installed_copy(tmp_path))],
                            capture_output=True, text=True, check=False)
    complaints = [line for line in (result.stdout + result.stderr).splitlines()
                  if "commsmon.service" in line]
    assert complaints == [], complaints


def test_unit_exposure_is_ok(tmp_path: Path) -> None:
    """systemd-analyze security rates the unit's exposure at most 2.0 ("OK")."""
    result = subprocess.run(
        ["systemd-analyze", "security", "--offline=yes", str(_installed_copy(tmp_path))],
        capture_output=True, text=True, check=False)
    match = re.search(r"Overall exposure level for commsmon.service: ([\d.]+)", result.stdout)
    assert match, result.stdout + result.stderr
    assert float(match.group(1)) <= 2.0


def test_daemon_notifies_ready_and_status(tmp_path: Path) -> None:
    """Under Type=notify the daemon says READY=1 with a STATUS line after binding, pings
    the watchdog while it evaluates and polls, and brackets a SIGHUP reload with
    RELOADING=1 ... READY=1."""
    path, _ = write_config(tmp_path, mqtt_port=free_port())
    address = str(tmp_path / "notify.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(address)
        sock.settimeout(20)
        env = {**os.environ, "NOTIFY_SOCKET": address, "WATCHDOG_USEC": "1000000"}
        proc = subprocess.Popen([sys.executable, "-m", "commsmon", "run", "-c", str(path)],
                                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                cwd=ROOT)
        try:
            messages = []
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and not any("READY=1" in m for m in messages):
                messages.append(sock.recv(4096).decode())
            ready = next(m for m in messages if "READY=1" in m)
            assert "STATUS=polling 86 devices, 14 sites, 0 isolated" in ready
            pings = 0
            while pings < 3:  # every 0.5 s
                pings += "WATCHDOG=1" in sock.recv(4096).decode()
            proc.send_signal(signal.SIGHUP)
            seen = []
            while not any("READY=1" in m for m in seen):
                seen.append(sock.recv(4096).decode())
            assert any("RELOADING=1" in m for m in seen), seen
        finally:
            proc.terminate()
            proc.wait(20)
        assert proc.returncode == 0
