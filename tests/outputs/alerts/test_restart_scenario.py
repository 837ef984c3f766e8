"""Field input 11 (issue 7), on injected time with the real SQLite outbox.

The daemon stops at 10:05 with one village isolated (notified at 10:00) and another
fine; while it is down the second village fails; on restart at 10:20 the first is not
notified again and the second is.
"""

from __future__ import annotations

import datetime
import json
import sqlite3
import zlib
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from structlog.testing import capture_logs

from commsmon.config.alerting import AlertingSpec
from commsmon.config.load import load_config
from commsmon.core.fleet import Fleet
from commsmon.core.types import Observation
from commsmon.outputs.alerts.service import AlertService
from commsmon.state.outbox import Outbox
from tests.fleetharness import DEMO

TZ = ZoneInfo("Asia/Shanghai")
STEP = 10.0  # seconds between evaluations


def _at(hhmm: str) -> float:
    hour, minute = map(int, hhmm.split(":"))
    return datetime.datetime(2026, 7, 15, hour, minute, tzinfo=TZ).timestamp()


def _spec(rules: dict[str, dict[str, float]] | None = None) -> AlertingSpec:
    return AlertingSpec.model_validate({
        "group_wait": 10, "group_interval": 60, "repeat_interval": 4 * 3600,
        "rules": {"site_isolated": {"for": 60}, **(rules or {})},
        "receivers": [{"name": "duty", "type": "webhook", "url": "http://127.0.0.1:9/hook"}],
        "routes": [{"match": {"severity": ["critical"]}, "receivers": ["duty"]}],
    })


def _firing_sites(outbox: Path) -> list[str]:
    """Sites of the firing notifications in the outbox, in the order they were decided."""
    with sqlite3.connect(outbox) as db:
        rows = db.execute("SELECT grp, body FROM outbox ORDER BY seq").fetchall()
    return [grp.removeprefix("site:") for grp, body in rows
            if json.loads(body)["status"] == "firing"]


async def _run(fleet: Fleet, service: AlertService, start: str, end: str,
               down: set[str]) -> None:
    """Every STEP seconds from ``start`` to ``end``: poll every device (those of ``down``
    sites fail), evaluate, step the alerts."""
    now = _at(start)
    while now <= _at(end):
        for device in fleet.inventory.devices.values():
            if device.source == "checkin":
                continue
            fleet.observe(Observation(device.id, now, device.site not in down))
        await service.step(fleet.evaluate(now))
        now += STEP


@pytest.mark.parametrize("saved_as_text", [False, True])
async def test_restart_notifies_only_what_changed_while_down(tmp_path: Path,
                                                             saved_as_text: bool) -> None:
    """``saved_as_text``: the rules' memory as a version before compressing it saved it
    (JSON text): an upgrade restores it as well."""
    inventory = load_config(DEMO).inventory()
    outbox = tmp_path / "outbox.db"
    spec = _spec()

    # 09:50-10:05: v05 isolated from 09:58, notified around 10:00; v06 fine.
    fleet = Fleet(inventory, _at("09:50"))
    fleet.set_source("mqtt", True, _at("09:50"))
    service = AlertService(spec, outbox, TZ, lambda: _at("09:50"))
    service.restore()
    await _run(fleet, service, "09:50", "09:57", down=set())
    await _run(fleet, service, "09:58", "10:05", down={"v05"})
    await service.close()  # the daemon stops at 10:05
    assert _firing_sites(outbox) == ["v05"]
    if saved_as_text:
        box = Outbox(outbox)
        box.put_state("engine", box.get_state("engine") or "")
        box.close()

    # 10:20: a new process, a new fleet (it knows nothing yet), the same outbox.
    # v05 is still isolated; v06 failed while we were away.
    fleet = Fleet(inventory, _at("10:20"))
    fleet.set_source("mqtt", True, _at("10:20"))
    service = AlertService(spec, outbox, TZ, lambda: _at("10:20"))
    service.restore()
    await _run(fleet, service, "10:20", "10:25", down={"v05", "v06"})
    await service.close()
    assert _firing_sites(outbox) == ["v05", "v06"]  # v05 not again, v06 once


async def _rssi_run(tmp_path: Path, rules: dict[str, dict[str, float]]
                    ) -> tuple[list[int], list[list[float]]]:
    """v01's PDT terminal, every 10 s from 09:50 (everything else answering and well):
    RSSI -85 dBm, then at 09:50:20 -115 (below the profile's -110: device_degraded),
    then -116 from 09:50:30 to 09:52:30.  Returns the seconds after 09:50 of each save
    of the engine's memory, and the RSSI in the saved facts of device_degraded alerts
    after 09:50:20, 09:51:00 and the last evaluation."""
    inventory = load_config(DEMO).inventory()
    fleet = Fleet(inventory, _at("09:50"))
    fleet.set_source("mqtt", True, _at("09:50"))
    service = AlertService(_spec(rules), tmp_path / "outbox.db", TZ, lambda: _at("09:50"))
    service.restore()
    saves: list[float] = []
    put_state = service.outbox.put_state

    def counted(name: str, text: str | bytes) -> None:
        if name == "engine":
            saves.append(now)
        put_state(name, text)

    service.outbox.put_state = counted  # type: ignore[method-assign]

    def saved_rssi() -> list[float]:
        engine = json.loads(service.outbox.get_state("engine") or "[]")
        return [cause["args"]["value"] for a in engine if a["rule"] == "device_degraded"
                for fact in a["facts"] for cause in fact["args"]["causes"]]

    start, seen = _at("09:50"), []
    for n in range(16):
        now = start + STEP * n
        rssi = -85.0 if n < 2 else -115.0 if n == 2 else -116.0
        for device in inventory.devices.values():
            if device.source != "checkin":
                fleet.observe(Observation(device.id, now, True,
                                          {"rssi": rssi} if device.id == "v01-pdt" else {}))
        await service.step(fleet.evaluate(now))
        if n in (2, 7, 15):
            seen.append(saved_rssi())
    await service.close()
    return [round(t - start) for t in saves], seen


async def test_the_engine_is_saved_when_its_memory_changes(tmp_path: Path) -> None:
    """What a restart restores is saved when it changes, and only then: which alerts
    are pending or firing at once, a firing alert's facts alone within a minute.
    device_degraded firing at once (``for: 0``), in :func:`_rssi_run`'s run:
    - 09:50:00 first evaluation: saved (nothing saved before);
    - 09:50:10 nothing changed: not saved;
    - 09:50:20 RSSI -115: device_degraded fires, saved at once with -115 in its facts;
    - 09:50:30 -116: the facts alone changed, 10 s after the last save: not saved,
      the saved facts still say -115 (so at 09:51:00 too, the last save 40 s ago);
    - 09:51:20 -116: 60 s after the last save: saved, now with -116;
    - 09:51:30 to 09:52:30 -116: nothing changed since: not saved."""
    saves, seen = await _rssi_run(tmp_path, {"device_degraded": {"for": 0}})
    assert saves == [0, 20, 80]
    assert seen == [[-115.0], [-115.0], [-116.0]]


async def test_a_pending_alert_is_saved_without_its_facts(tmp_path: Path) -> None:
    """A pending alert's facts are told to nobody: it fires only on a holding verdict,
    whose facts replace them first.  So they are not saved, and their change alone
    saves nothing.  device_degraded pending (its default ``for``, 15 min) in
    :func:`_rssi_run`'s run: saved at 09:50:00 (the first evaluation) and at
    09:50:20 (it became pending), never again though its RSSI went from -115 to -116;
    never with an RSSI in it."""
    saves, seen = await _rssi_run(tmp_path, {})
    assert saves == [0, 20]
    assert seen == [[], [], []]


@pytest.mark.parametrize("saved", [b"not zlib", zlib.compress(b"[{\"rule\": 1}"),
                                   zlib.compress(b"[{\"rule\": \"x\"}]"), "{not json"])
async def test_unreadable_rules_memory_does_not_stop_monitoring(tmp_path: Path,
                                                                saved: bytes | str) -> None:
    """A saved engine state that will not read (a damaged BLOB, cut-short JSON, an alert
    without its fields, TEXT that is not JSON) is logged and dropped: the service starts
    and judges v05, isolated from 09:50 to 10:05, anew: it fires, as on a first start."""
    outbox = tmp_path / "outbox.db"
    box = Outbox(outbox)
    box.put_state("engine", saved)
    box.close()
    inventory = load_config(DEMO).inventory()
    fleet = Fleet(inventory, _at("09:50"))
    fleet.set_source("mqtt", True, _at("09:50"))
    service = AlertService(_spec(), outbox, TZ, lambda: _at("09:50"))
    with capture_logs() as logs:
        service.restore()
    assert [e["event"] for e in logs if e["log_level"] == "error"] == [
        "alert rules' saved memory unreadable; starting without it (pending and firing "
        "alerts are judged anew, their 'for' timers from now)"]
    assert service.engine.held() == []
    await _run(fleet, service, "09:50", "10:05", down={"v05"})
    await service.close()
    assert _firing_sites(outbox) == ["v05"]
