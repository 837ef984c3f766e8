"""The duty desk's accounts, actions and duty log, with aiohttp's test client against the
daemon's real operations, store (SQLite) and alert service, on the demo inventory:
roles, CSRF, the login rate limit, the idle timeout, the wall's read-only token, and
a duty-log entry (who, what, when, from where) for every action, from the console
and from the API alike."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import bcrypt
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry

from commsmon.config.load import load_config
from commsmon.daemon import Daemon
from commsmon.outputs.alerts.service import AlertService
from commsmon.outputs.api import add_api_routes
from commsmon.outputs.http import build_app
from commsmon.outputs.web import add_console_routes
from commsmon.outputs.web.accounts import MAX_FAILURES, Accounts
from commsmon.state.store import Store
from tests.fleetharness import DEMO

NOW = 1_796_436_000.0  # 2026-12-05 10:00 Asia/Shanghai
TOKEN = "api-token-for-tests"
WALL = "wall-token-for-tests"
IDLE = 1800.0
Client = TestClient[web.Request, web.Application]


def _hash(password: str) -> str:
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(4)).decode()


USERS = {"zhang": (_hash("zhang-pass"), "duty", "张三"),
         "li": (_hash("li-pass"), "viewer", "李四")}


@dataclass
class Desk:
    client: Client
    daemon: Daemon
    store: Store
    clock: list[float]


@pytest.fixture
async def desk(tmp_path: Path) -> AsyncIterator[Desk]:
    clock = [NOW]
    daemon = Daemon(load_config(DEMO), clock=lambda: clock[0])
    store = Store(tmp_path / "store.db")
    daemon.store = store
    daemon.alerting.service = AlertService(daemon.config.alerting, tmp_path / "outbox.db",
                                           daemon.tz, lambda: clock[0])
    daemon.evaluate()
    accounts = Accounts(USERS, IDLE, wall_token=WALL, clock=lambda: clock[0])
    app = build_app(CollectorRegistry(), lambda: daemon.snapshot, lambda _: [], lambda: clock[0],
                    before=[accounts.middleware])
    add_api_routes(app, lambda: daemon.snapshot, daemon.operations, TOKEN, lambda: clock[0],
                   daemon.tz)
    add_console_routes(app, lambda: daemon.snapshot, daemon.tz, "zh", lambda: clock[0],
                       ops=daemon.operations, accounts=accounts)
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        yield Desk(client, daemon, store, clock)
    await daemon.alerts.close()
    store.close()


async def login(c: Client, user: str, password: str) -> int:
    """Open the login form (its nonce) and post it; the status of the answer."""
    page = await (await c.get("/login")).text()
    nonce = re.search(r'name="nonce" value="([^"]+)"', page)
    assert nonce is not None
    r = await c.post("/login", data={"user": user, "password": password,
                                     "nonce": nonce.group(1), "next": "/"},
                     allow_redirects=False)
    return r.status if r.status != 303 else (303 if "error" not in r.headers["Location"] else 401)


async def csrf_of(c: Client, path: str = "/site/v04") -> str:
    page = await (await c.get(path)).text()
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found is not None, page[:500]
    return found.group(1)


async def test_pages_need_a_login_and_the_cookie_is_safe(desk: Desk) -> None:
    c = desk.client
    r = await c.get("/", allow_redirects=False)
    assert r.status == 303 and r.headers["Location"].startswith("/login?next=/")
    assert (await c.get("/healthz")).status in (200, 503)  # probes stay open
    assert await login(c, "zhang", "zhang-pass") == 303
    cookie = next(m for m in c.session.cookie_jar if m.key == "commsmon_session")
    assert cookie["httponly"] and cookie["samesite"] == "Lax"
    page = await (await c.get("/")).text()
    assert "张三（值班员）" in page and "退出" in page and "值班日志" in page
    for secret in (USERS["zhang"][0], WALL, TOKEN, "zhang-pass"):
        assert secret not in page  # no page ever shows a secret


async def test_wrong_password_then_rate_limited_and_logged(desk: Desk) -> None:
    c = desk.client
    for _ in range(MAX_FAILURES):
        assert await login(c, "zhang", "wrong") == 401
    # the sixth attempt is refused, even with the right password
    assert await login(c, "zhang", "zhang-pass") == 429
    entries = desk.store.duty_entries(NOW - 60, NOW + 60)
    assert [e.action for e in entries] == ["login_failed"] * MAX_FAILURES
    assert entries[0].user == "zhang" and entries[0].address == "127.0.0.1"
    desk.clock[0] += 301  # the window has passed
    assert await login(c, "zhang", "zhang-pass") == 303


async def test_login_needs_the_forms_nonce(desk: Desk) -> None:
    """A login posted from elsewhere (no nonce cookie) is refused: nobody can log an
    officer in as someone else."""
    r = await desk.client.post("/login", data={"user": "zhang", "password": "zhang-pass",
                                               "nonce": "made-up"}, allow_redirects=False)
    assert r.status == 303 and "error=expired" in r.headers["Location"]


async def test_a_viewer_reads_but_cannot_act(desk: Desk) -> None:
    c = desk.client
    assert await login(c, "li", "li-pass") == 303
    page = await (await c.get("/site/v04")).text()
    assert "记录测试通话" not in page and "<form method=\"post\" action=\"/site" not in page
    csrf = re.search(r'name="csrf" value="([^"]+)"', page)
    assert csrf is not None  # the logout form's
    r = await c.post("/site/v04/checkin", data={"csrf": csrf.group(1), "device": "v04-sathand",
                                                "result": "ok"}, allow_redirects=False)
    assert r.status == 403


async def test_a_post_without_the_csrf_token_is_refused(desk: Desk) -> None:
    c = desk.client
    assert await login(c, "zhang", "zhang-pass") == 303
    r = await c.post("/site/v04/checkin", data={"device": "v04-sathand", "result": "ok"},
                     allow_redirects=False)
    assert r.status == 403
    r = await c.post("/site/v04/checkin", data={"csrf": "forged", "device": "v04-sathand",
                                                "result": "ok"}, allow_redirects=False)
    assert r.status == 403
    assert not desk.store.duty_entries(NOW - 60, NOW + 60, "zhang")[1:]  # only the login


async def test_a_test_call_from_the_form_reaches_the_board_and_the_duty_log(desk: Desk) -> None:
    c = desk.client
    assert await login(c, "zhang", "zhang-pass") == 303
    csrf = await csrf_of(c)
    r = await c.post("/site/v04/checkin", data={
        "csrf": csrf, "device": "v04-sathand", "method": "test_call", "result": "ok",
        "battery": "80", "note": "信号良好"}, allow_redirects=False)
    assert r.status == 303 and r.headers["Location"] == "/site/v04?done=checkin"
    assert desk.daemon.fleet.checkins["v04-sathand"].by == "张三"
    row = (await (await c.get("/board/table")).text()).split('id="site-v04"')[1].split("</tr>")[0]
    assert "正常（10:00）" in row
    (entry,) = [e for e in desk.store.duty_entries(NOW - 60, NOW + 60) if e.action == "checkin"]
    assert (entry.user, entry.address, entry.site, entry.subject) == (
        "zhang", "127.0.0.1", "v04", "v04-sathand")
    assert entry.detail["note"] == "信号良好" and entry.detail["charge"] == "0.8"
    assert entry.detail["method"] == "test_call" and entry.detail["name"] == "张三"
    page = await (await c.get("/log?day=2026-12-05&user=zhang")).text()
    assert "记录测试通话" in page and "v04-sathand" in page and "信号良好" in page
    assert "接通、卫星电话测试通话、信号良好、电量 80 %" in page and "张三（zhang）" in page
    csv = await (await c.get("/log.csv?day=2026-12-05")).read()
    assert csv.startswith("\ufeff".encode()) and "v04-sathand" in csv.decode()
    assert "当天没有记录" in await (await c.get("/log?day=2026-12-04")).text()


async def test_a_device_of_another_village_is_refused(desk: Desk) -> None:
    c = desk.client
    assert await login(c, "zhang", "zhang-pass") == 303
    r = await c.post("/site/v04/checkin", data={"csrf": await csrf_of(c), "device": "v05-router",
                                                "result": "ok"}, allow_redirects=False)
    assert r.status == 400


async def test_road_outage_declared_and_cleared(desk: Desk) -> None:
    c = desk.client
    assert await login(c, "zhang", "zhang-pass") == 303
    csrf = await csrf_of(c)
    r = await c.post("/site/v04/road", data={"csrf": csrf, "hours": "24", "note": "塌方"},
                     allow_redirects=False)
    assert r.status == 303
    declared = desk.daemon.fleet.declarations[("v04", "road")]
    assert declared.until == NOW + 24 * 3600 and declared.by == "张三"
    desk.daemon.evaluate()
    page = await (await c.get("/site/v04")).text()
    assert "解除断路" in page
    r = await c.post("/site/v04/road/clear", data={"csrf": csrf}, allow_redirects=False)
    assert r.status == 303 and ("v04", "road") not in desk.daemon.fleet.declarations
    actions = [e.action for e in desk.store.duty_entries(NOW - 60, NOW + 60, "zhang")]
    assert actions == ["login", "declare", "clear"]


async def test_silence_needs_a_reason_and_expires(desk: Desk) -> None:
    c = desk.client
    assert await login(c, "zhang", "zhang-pass") == 303
    csrf = await csrf_of(c)
    r = await c.post("/site/v04/silence", data={"csrf": csrf, "hours": "2", "reason": " "},
                     allow_redirects=False)
    assert r.status == 400 and "请填写静默原因" in await r.text()  # in words, not a trace
    r = await c.post("/site/v04/silence", data={"csrf": csrf, "hours": "2",
                                                "reason": "发电机检修"}, allow_redirects=False)
    assert r.status == 303
    (silence,) = desk.daemon.operations.silences()
    assert dict(silence.matchers) == {"site": "v04"} and silence.ends_at == NOW + 7200
    page = await (await c.get("/site/v04")).text()
    assert "已静默至 12:00：发电机检修（张三）" in page
    r = await c.post(f"/silences/{silence.id}/expire", data={"csrf": csrf},
                     allow_redirects=False)
    assert r.status == 303
    assert all(s.ends_at <= NOW for s in desk.daemon.operations.silences())
    actions = [e.action for e in desk.store.duty_entries(NOW - 60, NOW + 60, "zhang")]
    assert actions == ["login", "silence", "unsilence"]


async def test_an_idle_session_ends(desk: Desk) -> None:
    c = desk.client
    assert await login(c, "zhang", "zhang-pass") == 303
    desk.clock[0] += IDLE - 10
    assert (await c.get("/", allow_redirects=False)).status == 200  # used: it slides on
    desk.clock[0] += IDLE - 10
    assert (await c.get("/", allow_redirects=False)).status == 200
    desk.clock[0] += IDLE + 1
    assert (await c.get("/", allow_redirects=False)).status == 303


async def test_logout(desk: Desk) -> None:
    c = desk.client
    assert await login(c, "zhang", "zhang-pass") == 303
    r = await c.post("/logout", data={"csrf": await csrf_of(c, "/")}, allow_redirects=False)
    assert r.status == 303
    assert (await c.get("/", allow_redirects=False)).status == 303
    actions = [e.action for e in desk.store.duty_entries(NOW - 60, NOW + 60, "zhang")]
    assert actions == ["login", "logout"]


async def test_the_wall_opens_with_its_read_only_token(desk: Desk) -> None:
    c = desk.client
    assert (await c.get("/wall", allow_redirects=False)).status == 303
    assert (await c.get("/wall?token=wrong", allow_redirects=False)).status == 303
    page = await (await c.get(f"/wall?token={WALL}")).text()
    assert 'class="wall"' in page and "<form" not in page
    # its stream carries the token too, or the wall would only ever say 数据中断
    stream = re.search(r'sse-connect="([^"]+)"', page)
    assert stream is not None
    r = await c.get(stream.group(1).replace("&amp;", "&"))
    assert r.status == 200 and r.headers["Content-Type"].startswith("text/event-stream")
    r.close()
    assert (await c.get(f"/board/table?wall=1&token={WALL}")).status == 200
    assert (await c.get(f"/site/v04?token={WALL}", allow_redirects=False)).status == 303
    r = await c.post("/site/v04/road", data={"token": WALL}, allow_redirects=False)
    assert r.status == 303  # to the login: the wall's token acts on nothing


async def test_the_api_writes_to_the_duty_log_too(desk: Desk) -> None:
    r = await desk.client.post("/api/v1/checkins", json={"device": "v04-sathand",
                                                         "result": "ok"},
                               headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status == 201
    (entry,) = desk.store.duty_entries(NOW - 60, NOW + 60)
    assert (entry.user, entry.action, entry.address) == ("api", "checkin", "127.0.0.1")


async def _isolate(desk: Desk, site: str) -> None:
    """Every device of ``site`` goes offline; the alerts are stepped."""
    from commsmon.core.types import Observation

    fleet = desk.daemon.fleet
    for device in fleet.inventory.devices.values():
        if device.site == site:
            fleet.observe(Observation(device.id, desk.clock[0], False, conclusive=True))
    for _ in range(2):  # site_isolated holds for 60 s
        desk.clock[0] += 61
        assert desk.daemon.alerts is not None
        await desk.daemon.alerts.step(desk.daemon.evaluate())


async def test_ack_withdraw_and_escalate_from_the_village_page(desk: Desk) -> None:
    c = desk.client
    await _isolate(desk, "v05")
    assert await login(c, "zhang", "zhang-pass") == 303
    row = (await (await c.get("/board/table")).text()).split('id="site-v05"')[1].split("</tr>")[0]
    assert "告警中（严重" in row
    page = await (await c.get("/site/v05")).text()
    assert 'id="ack-form"' in page and "立即升级" not in page  # no policy here
    csrf = await csrf_of(c, "/site/v05")
    r = await c.post("/site/v05/ack", data={"csrf": csrf}, allow_redirects=False)
    assert r.status == 303
    row = (await (await c.get("/board/table")).text()).split('id="site-v05"')[1].split("</tr>")[0]
    assert "已确认：张三（至 " in row
    r = await c.post("/site/v05/unack", data={"csrf": csrf}, allow_redirects=False)
    assert r.status == 303
    assert desk.daemon.alerts is not None
    assert desk.daemon.alerts.escalation.state("site:v05", desk.clock[0]) == "firing"
    # no escalation policy in the demo's alerting: nothing to escalate to
    assert "立即升级" not in await (await c.get("/site/v05")).text()  # no policy: no button
    r = await c.post("/site/v05/escalate", data={"csrf": csrf}, allow_redirects=False)
    assert r.status == 409 and "无法升级" in await r.text()
    r = await c.post("/site/v06/ack", data={"csrf": csrf}, allow_redirects=False)
    assert r.status == 409  # nothing firing there
    actions = [e.action for e in desk.store.duty_entries(NOW - 60, desk.clock[0] + 60, "zhang")]
    assert actions == ["login", "ack", "unack"]


async def test_the_roster_upload_needs_an_admin_and_names_a_bad_line(desk: Desk) -> None:
    from aiohttp import FormData

    c = desk.client
    assert await login(c, "zhang", "zhang-pass") == 303
    page = await (await c.get("/roster")).text()
    assert "值班表中没有班次" in page and 'type="file"' not in page  # duty may not upload
    form = FormData({"csrf": await csrf_of(c, "/roster")})
    form.add_field("file", b"start,end,role,name\n", filename="r.csv")
    assert (await c.post("/roster", data=form, allow_redirects=False)).status == 403


async def test_an_admin_uploads_the_roster_and_the_board_shows_who_is_on_duty(
        tmp_path: Path) -> None:
    from aiohttp import FormData

    clock = [NOW]
    daemon = Daemon(load_config(DEMO), clock=lambda: clock[0])
    daemon.alerting.service = AlertService(daemon.config.alerting, tmp_path / "outbox.db",
                                           daemon.tz, lambda: clock[0])
    daemon.evaluate()
    accounts = Accounts({"wang": (_hash("wang-pass"), "admin", "王五")}, IDLE,
                        clock=lambda: clock[0])
    app = build_app(CollectorRegistry(), lambda: daemon.snapshot, lambda _: [], lambda: clock[0],
                    before=[accounts.middleware])
    add_console_routes(app, lambda: daemon.snapshot, daemon.tz, "zh", lambda: clock[0],
                       ops=daemon.operations, accounts=accounts)
    async with TestClient(TestServer(app, host="127.0.0.1")) as c:
        assert await login(c, "wang", "wang-pass") == 303
        csrf = await csrf_of(c, "/roster")
        bad = FormData({"csrf": csrf})
        bad.add_field("file", "start,end,role,name\n2026-12-05,x,duty,张三\n".encode(),
                      filename="r.csv")
        r = await c.post("/roster", data=bad)
        assert "第 2 行：x 不是时间" in await r.text() and "未作任何更改" in await r.text()
        good = FormData({"csrf": csrf})
        good.add_field("file", ("开始,结束,角色,姓名,电话\n2026-12-05 08:00,2026-12-06 08:00,"
                                "值班员,张三,13800000001\n").encode(), filename="r.csv")
        r = await c.post("/roster", data=good)
        assert "值班表已替换：1 个班次" in await r.text()
        board = await (await c.get("/")).text()
        assert "当前值班：" in board and "值班员 张三（13800000001）" in board
        r = await c.post("/handover", data={"csrf": csrf, "note": "夜班无异常"},
                         allow_redirects=False)
        assert r.status == 303
        entries = await daemon.operations.duty_entries(NOW - 60, NOW + 60)
        assert [e.action for e in entries] == ["login", "roster", "handover"]
        assert entries[2].detail == {"duty": "张三", "note": "夜班无异常", "name": "王五"}
    await daemon.alerts.close()


async def test_the_village_page_keeps_a_timeline(desk: Desk) -> None:
    """States that changed, outages, alerts (the evaluation loop writes them to the
    store) and what people did, newest first; pruned past the retention."""
    from commsmon.core.types import Observation

    c = desk.client
    fleet = desk.daemon.fleet
    await desk.daemon.evaluation._once_more()
    for device in fleet.inventory.devices.values():
        if device.site == "v05":
            fleet.observe(Observation(device.id, desk.clock[0], False, conclusive=True))
    for _ in range(3):
        desk.clock[0] += 61
        await desk.daemon.evaluation._once_more()
    assert await login(c, "zhang", "zhang-pass") == 303
    await c.post("/site/v05/ack", data={"csrf": await csrf_of(c, "/site/v05")})
    page = await (await c.get("/site/v05")).text()
    section = page.split("时间线", 1)[1]
    assert "本村：" in section and "→ 中断" in section
    assert "告警：失联" in section and "确认告警" in section and "zhang" in section
    assert section.index("确认告警") < section.index("告警：失联")  # newest first
    kinds = {e.kind for e in desk.store.events("v05", 0, NOW + 10**6, 100)}
    assert {"device_state", "site_state", "alert_firing"} <= kinds
    assert desk.store.prune_history(NOW + 10**6) > 0  # past the retention: gone ...
    kept = desk.store.events("v05", 0, NOW + 10**6, 100, every=True)
    # ... but each one's last state, which still says what held at the retention's edge
    assert {e.kind for e in kept} <= {"device_state", "site_state", "channel_state",
                                      "readiness"}
    assert len({(e.kind, e.subject) for e in kept}) == len(kept)


async def test_the_login_leads_back_to_the_page_asked_for(desk: Desk) -> None:
    """A duty log link with a day and an officer: after logging in, the same page."""
    c = desk.client
    r = await c.get("/log?day=2026-12-05&user=zhang", allow_redirects=False)
    location = r.headers["Location"]
    from urllib.parse import parse_qs, urlsplit
    assert parse_qs(urlsplit(location).query) == {"next": ["/log?day=2026-12-05&user=zhang"]}
    page = await (await c.get(location)).text()
    assert 'name="next" value="/log?day=2026-12-05&amp;user=zhang"' in page


async def test_a_drill_from_the_village_page_and_its_record_on_the_reports_page(
        desk: Desk) -> None:
    """The duty officer starts a 30-minute power drill at v04 from its page, the page
    shows it running (to viewers too), the API lists it, the officer stops it from the
    reports page, whose links give its record as HTML, PDF and XLSX; a viewer may read
    but not start one; the duty log has both."""
    c = desk.client
    assert await login(c, "zhang", "zhang-pass") == 303
    csrf = await csrf_of(c)
    page = await (await c.get("/site/v04")).text()
    assert 'id="drill-form"' in page and "开始演练" in page
    zero = await c.post("/site/v04/drill", data={"csrf": csrf, "scenario": "power",
                                                 "minutes": "0"})
    assert zero.status == 400 and "1 分钟至一周" in await zero.text()
    r = await c.post("/site/v04/drill", data={"csrf": csrf, "scenario": "power",
                                              "minutes": "30", "note": "月度演练"},
                     allow_redirects=False)
    assert r.status == 303 and r.headers["Location"] == "/site/v04?done=drill_start"
    page = await (await c.get("/site/v04?done=drill_start")).text()
    assert "【演练进行中】" in page and "D20261205-1000-v04" in page and "张三" in page
    board = await (await c.get("/")).text()  # the board says so too: row and summary
    assert 'class="drill-badge"' in board and "演练中：" in board
    assert 'id="drill-form"' not in page  # one at a time
    again = await c.post("/site/v04/drill", data={"csrf": csrf, "scenario": "road"})
    assert again.status == 409 and "该村已有演练在进行" in await again.text()
    drills = await (await c.get("/api/v1/drills")).json()
    (listed,) = drills["drills"]
    assert listed["running"] and listed["scenario"] == "power" and listed["by"] == "张三"
    desk.clock[0] += 600
    reports = await (await c.get("/reports")).text()
    assert "2026-12" in reports and "2026-Q4" in reports and "结束演练" in reports
    r = await c.post("/drills/D20261205-1000-v04/stop", data={"csrf": csrf},
                     allow_redirects=False)
    assert r.status == 303 and r.headers["Location"] == "/site/v04?done=drill_stop"
    html = await c.get("/drills/D20261205-1000-v04.html")
    assert html.status == 200 and "演练记录" in await html.text()
    pdf = await c.get("/drills/D20261205-1000-v04.pdf")
    assert pdf.status == 200 and (await pdf.read()).startswith(b"%PDF")
    xlsx = await c.get("/drills/D20261205-1000-v04.xlsx")
    assert xlsx.status == 200 and (await xlsx.read()).startswith(b"PK")
    month = await c.get("/reports/2026-12.html")
    assert month.status == 200 and "应急通信保障报告 2026-12" in await month.text()
    assert (await c.get("/reports/2026-13.pdf")).status == 400
    future = await c.get("/reports/2027.pdf")
    assert future.status == 400 and "该统计期尚未开始" in await future.text()
    assert (await c.get("/drills/D00000000-0000-v99.pdf")).status == 404
    actions = [e.action for e in desk.store.duty_entries(NOW - 60, NOW + 3600)]
    assert actions.count("drill_start") == 1 and actions.count("drill_stop") == 1
    await c.post("/logout", data={"csrf": csrf})
    assert await login(c, "li", "li-pass") == 303
    viewer = await (await c.get("/site/v04")).text()
    assert 'id="drill-form"' not in viewer
    refused = await c.post("/site/v04/drill", data={"csrf": await csrf_of(c, "/reports"),
                                                    "scenario": "power"})
    assert refused.status == 403
