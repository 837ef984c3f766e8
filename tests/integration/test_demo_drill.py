"""``commsmon demo`` leaves drill records: the demo run as an operator runs it (its own
process, its own Mosquitto, the simulated fleet), with the drill's steps 5 s apart; its
first cycle's mains cut at a village is a real drill — started before the cut, the
keeper's satellite test call half a step in, stopped after the mains is back — whose
record ``commsmon report --drill`` writes as a PDF from the demo's state directory."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.fleetharness import ROOT, write_config
from tests.pdftext import pdf_text

pytestmark = pytest.mark.integration

STEP = 5.0


def test_the_demo_leaves_a_drill_record(tmp_path: Path) -> None:
    path, port = write_config(tmp_path, mqtt_port=1)  # the demo starts its own broker
    log_path = tmp_path / "demo.log"
    with log_path.open("wb") as log:
        demo = subprocess.Popen(
            [sys.executable, "-m", "commsmon", "--log-format", "json", "demo", "-c",
             str(path), "--drill-step", str(STEP)], stdout=log, stderr=subprocess.STDOUT,
            cwd=ROOT)
        try:
            ended = _wait_for(log_path, r"演练 drill: (\S+) 结束", demo, 120)
            record = _get(f"http://127.0.0.1:{port}/api/v1/drills/{ended}")
            # Ctrl-C while the next drill runs: it is ended and kept, the demo exits cleanly.
            running = _wait_for(log_path, r"结束.*\n(?:.*\n)*?演练 drill: (\S+) 开始", demo, 60)
        finally:
            demo.send_signal(signal.SIGINT)
            demo.wait(30)
    assert demo.returncode == 0, log_path.read_text(errors="replace")[-3000:]
    assert f"演练 drill: {running} 结束" in log_path.read_text(errors="replace")
    assert record["scenario"] == "power" and not record["running"], record
    assert record["by"] == "演示演练" and record["contacts"][0]["ok"], record
    assert 0 < record["first_contact_s"] <= STEP, record  # half a step after the cut
    # the UPS went to battery during the drill
    assert any(k["reading"] == "output_source" and k["new"] == "battery"
               for k in record["kit"]), json.dumps(record, ensure_ascii=False)
    done = subprocess.run(
        [sys.executable, "-m", "commsmon", "report", "-c", str(path), "--drill", ended,
         "--format", "pdf", "-o", str(tmp_path)], capture_output=True, text=True,
        timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    text = pdf_text(tmp_path / f"commsmon-drill-{ended}.pdf")
    assert f"演练记录 {ended}" in text and "首次联通不超过" in text


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.loads(r.read())


def _wait_for(log: Path, pattern: str, proc: subprocess.Popen[bytes], within: float) -> str:
    """The first group of ``pattern`` once the demo prints it."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace")
        found = re.search(pattern, text)
        if found:
            return found.group(1)
        assert proc.poll() is None, f"the demo stopped:\n{text[-3000:]}"
        time.sleep(0.5)
    raise AssertionError(f"no {pattern!r} within {within} s:\n"
                         f"{log.read_text(errors='replace')[-3000:]}")
