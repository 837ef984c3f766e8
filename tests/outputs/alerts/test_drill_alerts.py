"""A drill's alerts, on injected time with the real outbox: marked 【演练】 with the drill
id, sent to ``drill_receivers`` when configured (once each, whatever routes they would
have taken), to their normal receivers otherwise; another village's real alert at the
same moment stays real."""

from __future__ import annotations

import datetime
import sqlite3
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from commsmon.config.alerting import AlertingSpec
from commsmon.config.load import load_config
from commsmon.core.drills import Drill
from commsmon.core.fleet import Fleet
from commsmon.core.types import Observation
from commsmon.outputs.alerts.messages import render_text
from commsmon.outputs.alerts.service import AlertService
from commsmon.state.outbox import notification_from_json
from tests.fleetharness import DEMO

TZ = ZoneInfo("Asia/Shanghai")
T0 = datetime.datetime(2026, 12, 5, 10, 0, tzinfo=TZ).timestamp()
DRILL = Drill("D20261205-1000-v05", "v05", "all", T0, None, "张三")


def _spec(drill_receivers: list[str] | None) -> AlertingSpec:
    hooks = [{"name": n, "type": "webhook", "url": "http://127.0.0.1:9/hook"}
             for n in ("duty", "leaders", "drills")]
    return AlertingSpec.model_validate({
        "group_wait": 10, "group_interval": 60, "rules": {"site_isolated": {"for": 0}},
        "receivers": hooks, "drill_receivers": drill_receivers,
        "routes": [{"match": {"severity": ["critical"]}, "receivers": ["duty", "leaders"]}]})


@pytest.mark.parametrize("drill_receivers", [None, ["drills"]])
async def test_a_drills_alerts_are_marked_and_routed(tmp_path: Path,
                                                     drill_receivers: list[str] | None) -> None:
    inventory = load_config(DEMO).inventory()
    fleet = Fleet(inventory, T0)
    fleet.set_source("mqtt", True, T0)
    service = AlertService(_spec(drill_receivers), tmp_path / "outbox.db", TZ, lambda: T0)
    service.restore()
    for n in range(12):  # two minutes: v05 (drilled) and v06 (real) isolated
        now = T0 + 10 * n
        for device in inventory.devices.values():
            if device.source != "checkin":
                fleet.observe(Observation(device.id, now, device.site not in ("v05", "v06")))
        await service.step(fleet.evaluate(now), {"v05": DRILL})
    await service.close()
    with sqlite3.connect(tmp_path / "outbox.db") as db:
        notes = [notification_from_json(body) for (body,) in
                 db.execute("SELECT body FROM outbox ORDER BY seq").fetchall()]
    drilled = [n for n in notes if n.group == "site:v05"]
    real = [n for n in notes if n.group == "site:v06"]
    assert drilled and real
    assert all(n.drill == DRILL.id for n in drilled) and not any(n.drill for n in real)
    expected = ["drills"] if drill_receivers else ["duty", "leaders"]
    assert sorted(n.receiver for n in drilled) == expected
    assert sorted(n.receiver for n in real) == ["duty", "leaders"]
    text = render_text(drilled[0], tz=TZ).text
    assert text.startswith("【演练】【严重】")
    assert f"演练 {DRILL.id}" in text and "不是真实中断" in text
    assert "演练" not in render_text(real[0], tz=TZ).text
    en = render_text(drilled[0].__class__(**{**_fields(drilled[0]), "language": "en"}),
                     tz=TZ).text
    assert en.startswith("[DRILL] ") and DRILL.id in en


def _fields(note: object) -> dict[str, object]:
    return {k: getattr(note, k) for k in note.__dataclass_fields__}  # type: ignore[attr-defined]
