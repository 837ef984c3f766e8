"""The JSON API over real HTTP: reads, check-ins, road outages, auth and bad input."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from commsmon.config.load import load_config
from commsmon.daemon import Daemon
from commsmon.outputs.api import add_api_routes
from commsmon.state.store import Store
from tests.fleetharness import DEMO

TOKEN = "s3cret-token"
NOW = 1_764_400_000.0


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[tuple[str, Daemon]]:
    daemon = Daemon(load_config(DEMO), clock=lambda: NOW)
    daemon.store = Store(tmp_path / "commsmon.db")
    daemon.evaluate()
    app = web.Application()
    add_api_routes(app, lambda: daemon.snapshot, daemon.operations, TOKEN, lambda: NOW, daemon.tz)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield str(server.make_url("/api/v1")), daemon
    finally:
        await server.close()
        daemon.store.close()


async def call(
    method: str, url: str, *, token: str | None = TOKEN, json: Any = None, data: bytes | None = None
) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession() as s, s.request(
        method, url, json=json, data=data, headers=headers
    ) as r:
        body = await r.json() if r.content_type == "application/json" else None
        return r.status, body


async def test_sites_lists_every_site_with_scenarios(api: tuple[str, Daemon]) -> None:
    """GET /sites: all 15 sites, each with the four scenarios, now, and a reason in the
    configured language (Chinese) unless ?lang= asks for English."""
    url, _ = api
    status, body = await call("GET", f"{url}/sites", token=None)
    assert status == 200
    assert body["language"] == "zh"
    assert len(body["sites"]) == 15
    v01 = next(s for s in body["sites"] if s["id"] == "v01")
    assert set(v01["scenarios"]) == {"network", "road", "power", "all", "now"}
    power = v01["scenarios"]["power"]
    assert power["ready"] is False and power["unknown"] is True  # nothing seen yet
    assert power["endurance_seconds"] is None and power["at_least_seconds"] is None
    assert "续航未知" in power["reason"] and "尚未收到数据" in power["reason"]
    assert power["cell"] == "未知 ?"
    status, body = await call("GET", f"{url}/sites?lang=en", token=None)
    v01 = next(s for s in body["sites"] if s["id"] == "v01")
    assert "endurance unknown" in v01["scenarios"]["power"]["reason"]
    status, body = await call("GET", f"{url}/sites?lang=fr", token=None)
    assert status == 400 and body["field"] == "lang"


async def test_site_detail_has_devices(api: tuple[str, Daemon]) -> None:
    """GET /sites/{id}: channels, per-channel outlook and the devices."""
    url, _ = api
    status, body = await call("GET", f"{url}/sites/v04", token=None)
    assert status == 200
    ids = {d["id"] for d in body["devices"]}
    assert {"v04-router", "v04-sathand", "v04-genset"} <= ids
    assert "channels" in body["scenarios"]["road"]


async def test_unknown_site_is_404(api: tuple[str, Daemon]) -> None:
    """An unknown site id gets 404 naming the field."""
    url, _ = api
    status, body = await call("GET", f"{url}/sites/nowhere", token=None)
    assert (status, body["field"]) == (404, "site")


@pytest.mark.parametrize("token", [None, "wrong"])
async def test_writes_need_the_token(api: tuple[str, Daemon], token: str | None) -> None:
    """No or a wrong bearer token gets 401 and changes nothing."""
    url, daemon = api
    status, _ = await call("POST", f"{url}/checkins", token=token,
                           json={"device": "v04-sathand", "result": "ok"})
    assert status == 401
    assert "v04-sathand" not in daemon.fleet.checkins


async def test_checkin_recorded_persisted_and_applied(api: tuple[str, Daemon]) -> None:
    """A good check-in gets 201, lands in SQLite and brings the handheld up."""
    url, daemon = api
    status, body = await call("POST", f"{url}/checkins", json={
        "device": "v04-sathand", "result": "ok", "by": "张三", "battery": 0.8,
        "note": "test call"})
    assert status == 201, body
    assert body["device"] == "v04-sathand"
    assert daemon.snapshot is not None
    assert daemon.snapshot.devices["v04-sathand"].state.value == "up"
    assert daemon.store is not None
    (stored,) = daemon.store.latest_checkins()
    assert (stored.device, stored.by, stored.charge) == ("v04-sathand", "张三", 0.8)
    _, detail = await call("GET", f"{url}/sites/v04", token=None)
    hand = next(d for d in detail["devices"] if d["id"] == "v04-sathand")
    assert hand["checkin"]["by"] == "张三"
    assert hand["readings"]["charge"]["value"] == 0.8
    assert hand["readings"]["charge"]["stale"] is False


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"device": "v04-sathand"}, "result"),
        ({"device": "v04-sathand", "result": "maybe"}, "result"),
        ({"device": "v04-sathand", "result": "ok", "battery": 1.5}, "battery"),
        ({"device": "v04-sathand", "result": "ok", "at": "yesterday-ish"}, "at"),
        ({"device": "v04-sathand", "result": "ok", "colour": "red"}, "colour"),
    ],
)
async def test_bad_checkin_body_names_the_field(
    api: tuple[str, Daemon], payload: dict[str, Any], field: str
) -> None:
    """A bad body gets 400 with the offending field."""
    url, _ = api
    status, body = await call("POST", f"{url}/checkins", json=payload)
    assert status == 400
    assert body["field"] == field


async def test_malformed_json_is_400(api: tuple[str, Daemon]) -> None:
    """A body that is not JSON gets 400, not a 500."""
    url, _ = api
    status, body = await call("POST", f"{url}/checkins", data=b"{not json")
    assert status == 400
    assert "not valid JSON" in body["error"]


async def test_checkin_for_unknown_device_is_404(api: tuple[str, Daemon]) -> None:
    """A check-in for a device not in the inventory gets 404."""
    url, _ = api
    status, body = await call("POST", f"{url}/checkins", json={"device": "ghost", "result": "ok"})
    assert (status, body["field"]) == (404, "device")


async def test_declare_and_clear_road_outage(api: tuple[str, Daemon]) -> None:
    """POST /outages declares roads cut (persisted); DELETE clears it; again is 404."""
    url, daemon = api
    status, body = await call("POST", f"{url}/outages", json={
        "site": "v05", "until": "2030-01-01T00:00:00+08:00", "by": "值班员", "note": "塌方"})
    assert status == 201, body
    _, site = await call("GET", f"{url}/sites/v05", token=None)
    assert site["outages"]["road"]["declared"] is True
    assert "塌方" in site["outages"]["road"]["evidence"][0]
    assert daemon.store is not None and len(daemon.store.declarations()) == 1
    status, _ = await call("DELETE", f"{url}/outages/v05/road")
    assert status == 204
    assert daemon.store.declarations() == []
    status, body = await call("DELETE", f"{url}/outages/v05/road")
    assert status == 404


async def test_outage_errors(api: tuple[str, Daemon]) -> None:
    """Unknown site 404; an expiry in the past or an unknown kind 400."""
    url, _ = api
    status, body = await call("POST", f"{url}/outages", json={"site": "nowhere"})
    assert (status, body["field"]) == (404, "site")
    status, body = await call("POST", f"{url}/outages", json={
        "site": "v05", "until": "2020-01-01T00:00:00Z"})
    assert (status, body["field"]) == (400, "until")
    status, body = await call("POST", f"{url}/outages", json={"site": "v05", "kind": "power"})
    assert (status, body["field"]) == (400, "kind")
    status, body = await call("DELETE", f"{url}/outages/nowhere/road")
    assert status == 404


async def test_write_api_off_without_token(tmp_path: Path) -> None:
    """With no token configured every write is refused with 403."""
    daemon = Daemon(load_config(DEMO), clock=lambda: NOW)
    daemon.evaluate()
    app = web.Application()
    add_api_routes(app, lambda: daemon.snapshot, daemon.operations, None, lambda: NOW, daemon.tz)
    async with TestServer(app, host="127.0.0.1") as server:
        status, body = await call("POST", str(server.make_url("/api/v1/checkins")),
                                  json={"device": "v04-sathand", "result": "ok"})
    assert status == 403
    assert "http.token" in body["error"]


@pytest.fixture
async def alert_api(tmp_path: Path) -> AsyncIterator[tuple[str, Daemon]]:
    from commsmon.outputs.alerts.service import AlertService

    daemon = Daemon(load_config(DEMO), clock=lambda: NOW)
    daemon.alerting.service = AlertService(daemon.config.alerting, tmp_path / "outbox.db",
                                           daemon.tz, lambda: NOW)
    daemon.evaluate()
    app = web.Application()
    add_api_routes(app, lambda: daemon.snapshot, daemon.operations, TOKEN, lambda: NOW, daemon.tz)
    async with TestServer(app, host="127.0.0.1") as server:
        yield str(server.make_url("/api/v1")), daemon
    await daemon.alerts.close()


async def test_silences_create_list_persist_delete(alert_api: tuple[str, Daemon]) -> None:
    """POST a silence (persisted), GET lists it, DELETE expires it; bad bodies are 400."""
    url, daemon = alert_api
    status, body = await call("POST", f"{url}/silences", json={
        "matchers": {"site": "v03"}, "duration": 3600, "by": "eng", "comment": "genset service"})
    assert status == 201, body
    assert body["active"] is True
    silence_id = body["id"]
    _, listed = await call("GET", f"{url}/silences", token=None)
    assert [s["id"] for s in listed["silences"]] == [silence_id]
    assert daemon.alerts is not None
    assert silence_id in (daemon.alerts.outbox.get_state("silences") or "")
    status, _ = await call("DELETE", f"{url}/silences/{silence_id}")
    assert status == 204
    status, _ = await call("DELETE", f"{url}/silences/{silence_id}")
    assert status == 404
    for bad, field in [({"matchers": {}, "duration": 60}, "matchers"),
                       ({"matchers": {"site": "v03"}}, "ends"),
                       ({"matchers": {"site": "v03"}, "duration": -5}, "duration")]:
        status, body = await call("POST", f"{url}/silences", json=bad)
        assert (status, body["field"]) == (400, field), body
    status, _ = await call("POST", f"{url}/silences", token=None,
                           json={"matchers": {"site": "v03"}, "duration": 60})
    assert status == 401


async def test_acks_over_the_api(alert_api: tuple[str, Daemon]) -> None:
    """POST /api/v1/acks acknowledges a firing group (409 where nothing fires); GET lists
    the groups with their ack state."""
    url, daemon = alert_api
    status, body = await call("POST", f"{url}/acks", json={"site": "v06", "action": "ack"})
    assert status == 409 and "not firing" in body["error"]
    status, body = await call("POST", f"{url}/acks", json={"action": "ack"})
    assert status == 400 and body["field"] == "site"
    status, body = await call("POST", f"{url}/acks", json={"site": "v06"}, token=None)
    assert status == 401
    from commsmon.core.types import Observation

    for device in daemon.fleet.inventory.devices.values():
        if device.site == "v05":
            daemon.fleet.observe(Observation(device.id, NOW, False, conclusive=True))
    assert daemon.alerts is not None
    daemon.fleet.evaluate(NOW + 60)
    for at in (NOW + 60, NOW + 120):
        await daemon.alerts.step(daemon.fleet.evaluate(at))
    status, body = await call("POST", f"{url}/acks", json={"site": "v05", "by": "张三"})
    assert status == 201 and body["group"] == "site:v05"
    status, body = await call("GET", f"{url}/acks", token=None)
    (group,) = [g for g in body["groups"] if g["site"] == "v05"]
    assert group["state"] == "acknowledged" and group["ack"]["by"] == "张三"
