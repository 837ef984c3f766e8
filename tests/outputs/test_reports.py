"""The XLSX report from real history: the evaluation loop writes the store on injected
time (tests/state/test_history.py's run: v05's router down 10:10-10:30, the daemon
not running 10:40-11:40), then ``commsmon report`` counts the day's month and the file
is read back with openpyxl: numbers as numbers, the period and the rules' version in
the header rows, Chinese sheet names, the raw spans to recount."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest
from openpyxl import load_workbook
from ruamel.yaml import YAML

from commsmon.core.accounting import RULES_VERSION
from commsmon.state.store import Store
from tests.fleetharness import DEMO
from tests.pdftext import pdf_info, pdf_text
from tests.state.test_history import _run


def _report(config: Path, out: Path, period: str, *more: str) -> tuple[int, str]:
    """``commsmon report`` as an operator runs it (its own process: the CLI configures
    logging for the whole process)."""
    done = subprocess.run([sys.executable, "-m", "commsmon", "report", "-c", str(config),
                           "--period", period, "-o", str(out), *more], capture_output=True,
                          text=True, timeout=120, check=False)
    return done.returncode, done.stdout + done.stderr


async def test_the_month_report_reads_back(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    store = Store(state / "commsmon.db")
    await _run(store, "10:00", "10:40", {"v05-router": ("10:10", "10:30")})
    await _run(store, "11:40", "12:00", {})
    store.close()
    yaml = YAML()
    data = yaml.load(DEMO.read_text(encoding="utf-8"))
    data["state_dir"] = str(state)
    data["profiles_dir"] = str(DEMO.parent / "profiles")
    config = tmp_path / "fleet.yaml"
    with config.open("w", encoding="utf-8") as f:
        yaml.dump(data, f)
    code, out = _report(config, tmp_path, "2026-12")
    assert code == 0, out
    path = tmp_path / "commsmon-report-2026-12.xlsx"
    pdf = tmp_path / "commsmon-report-2026-12.pdf"
    assert f"{pdf}  sha256 {hashlib.sha256(pdf.read_bytes()).hexdigest()}" in out
    text = pdf_text(pdf)
    # in Chinese, with the villages' names and the figures: v05's public channel
    # (its router) 2400 / 3600 = 66.67 %, every other village 100 %
    assert "应急通信保障报告 2026-12" in text and "计算规则" in text
    rows = [line.split() for line in text.splitlines() if line.strip().startswith("占位村05")]
    # the village as a whole (reachable) in the table of villages: 2400 of 3600 s judged
    share = next(float(r[1][:-1]) for r in rows if len(r) == 7 and r[1].endswith("%"))
    assert share == pytest.approx(2400 / 3600 * 100, abs=0.5)
    kit = text[text.index("五个一配备"):].splitlines()
    v01 = next(line.split() for line in kit if line.startswith("占位村01"))
    v14 = next(line.split() for line in kit if line.startswith("占位村14"))
    assert v01[1:] == ["在用完好"] * 4 + ["已明确"]  # all four kinds up, a keeper named
    assert v14[-1] == "缺失"  # v14 names no keeper
    assert "中断记录" in text and "2026-12-05 10:10" in text and RULES_VERSION in text
    info = pdf_info(pdf)
    figures = next(line.split()[-1] for line in info.splitlines()
                   if line.startswith("figuressha256:"))  # PDF names drop the hyphen
    assert RULES_VERSION in info and f"SHA-256 {figures}" in text
    assert out.startswith(str(path)) and hashlib.sha256(path.read_bytes()).hexdigest() in out
    book = load_workbook(path)
    assert book.sheetnames[:4] == ["村可达率", "通道可用率", "设备", "三断准备"]
    channels = {(r[0], r[1]): r for r in book["通道可用率"].iter_rows(min_row=5,
                                                                    values_only=True)}
    # v05's public network is its router (the camera behind it): down with it
    assert channels["占位村05", "公网"][4] == pytest.approx(1200 / 3600, abs=0.01)
    devices = book["设备"]
    assert devices["A1"].value == "统计期" and devices["B1"].value == "2026-12"
    assert devices["D1"].value == RULES_VERSION
    rows = {r[2]: r for r in devices.iter_rows(min_row=5, values_only=True)}
    router = rows["v05-router"]
    # up 10:00-10:10 and 10:30-12:00 less the hour not running: 2400 s; down 1200 s
    assert router[0] == "占位村05" and isinstance(router[4], float)
    assert router[6] == pytest.approx(1200 / 3600, abs=0.01)  # down, hours
    assert router[8] == pytest.approx(1.0)  # the monitor not running: 1 h apart
    assert router[11] == pytest.approx(2400 / 3600, abs=0.01)  # availability ratio
    assert devices.cell(row=5, column=12).number_format == "0.00%"
    raw = list(book["原始区间"].iter_rows(min_row=5, values_only=True))
    assert any(r[0] == "v05-router" and r[1] == "down" for r in raw)
    assert "figures sha256" in (book.properties.description or "")
    code, out = _report(config, tmp_path, "2026-13")
    assert code == 2 and "2026-Q4" in out
