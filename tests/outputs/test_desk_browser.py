"""The duty desk's actions in a real browser (Debian's chromium through Playwright),
against the console served on 127.0.0.1 by the daemon's real operations, store,
alert service and a real robot: an officer logs in and sees the 14 villages and
the centre; follows the ack link from the robot's message to the confirmation
page and acknowledges; records a test call on a village page and sees the board
open in another tab change without a reload; declares roads cut.  Screenshots of
the ack page and the village page with its forms go to the test's directory and
to docs/screenshots/.
"""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import bcrypt
import pytest
from aiohttp.test_utils import TestServer
from playwright.async_api import Browser
from prometheus_client import CollectorRegistry

from commsmon.config.alerting import AlertingSpec
from commsmon.config.load import load_config
from commsmon.core.types import Observation
from commsmon.daemon import Daemon
from commsmon.outputs.alerts.service import AlertService
from commsmon.outputs.http import build_app
from commsmon.outputs.web import add_console_routes
from commsmon.outputs.web.accounts import Accounts
from commsmon.state.dutylog import Actor
from commsmon.state.store import Store
from tests.fleetharness import DEMO
from tests.outputs.test_console_browser import SCREENSHOTS
from tests.receiverharness import RecordingReceiver

pytestmark = pytest.mark.integration


@dataclass
class Desk:
    url: str
    daemon: Daemon
    service: AlertService
    robot: RecordingReceiver


@pytest.fixture
async def desk(tmp_path: Path) -> AsyncIterator[Desk]:
    robot = RecordingReceiver()
    robot_url = await robot.start()
    daemon = Daemon(load_config(DEMO))
    daemon.store = None
    users = {"zhang": (bcrypt.hashpw(b"zhang-pass", bcrypt.gensalt(4)).decode(), "duty", "张三")}
    accounts = Accounts(users, 1800)
    app = build_app(CollectorRegistry(), lambda: daemon.snapshot, lambda _: [], time.time,
                    before=[accounts.middleware])
    add_console_routes(app, lambda: daemon.snapshot, daemon.tz, "zh", time.time,
                       ops=daemon.operations, accounts=accounts)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    url = str(server.make_url("/")).rstrip("/")
    spec = AlertingSpec.model_validate({
        "group_wait": 0, "rules": {"site_isolated": {"for": 0}},
        "receivers": [{"name": "duty-robot", "type": "dingtalk", "url": robot_url}],
        "routes": [{"match": {"severity": ["critical"]}, "receivers": ["duty-robot"]}]})
    service = AlertService(spec, tmp_path / "outbox.db", daemon.tz, time.time,
                           external_url=url)
    service.restore()
    daemon.alerting.service = service
    now = time.time()
    for device in daemon.fleet.inventory.devices.values():
        daemon.fleet.observe(Observation(device.id, now, True))
    daemon.evaluate()
    try:
        yield Desk(url, daemon, service, robot)
    finally:
        await server.close()
        await service.close()
        await robot.close()


async def _log_in(browser: Browser, url: str):  # type: ignore[no-untyped-def]
    context = await browser.new_context(viewport={"width": 1600, "height": 1000})
    page = await context.new_page()
    await page.goto(f"{url}/")
    await page.wait_for_url("**/login?next=/")
    await page.fill("input[name=user]", "zhang")
    await page.fill("input[name=password]", "zhang-pass")
    await page.click("form.login button")
    await page.wait_for_url(f"{url}/")
    return context, page


async def test_an_officer_acks_from_the_link_records_a_call_and_declares_roads_cut(
        browser: Browser, desk: Desk, tmp_path: Path) -> None:
    context, board = await _log_in(browser, desk.url)
    try:
        assert await board.locator("tbody tr").count() == 15  # 14 villages and the centre
        assert "张三（值班员）" in await board.locator("header").inner_text()

        # v05 goes silent: the duty robot gets the news with an ack link.
        now = time.time()
        for device in desk.daemon.fleet.inventory.devices.values():
            if device.site == "v05":
                desk.daemon.fleet.observe(Observation(device.id, now, False, conclusive=True))
        await desk.service.step(desk.daemon.evaluate())
        await desk.service.deliverer.deliver_due(time.time())
        (message,) = desk.robot.accepted
        link = re.search(r"\]\((http://[^)]+/a/[^)]+)\)", message.body["markdown"]["text"])
        assert link is not None

        phone = await browser.new_page(viewport={"width": 412, "height": 915})  # no login
        await phone.goto(link.group(1))
        assert "确认告警" in await phone.title()
        assert "告警中" in await phone.locator("#ack-state").inner_text()
        await phone.screenshot(path=tmp_path / "ack.png", full_page=True)
        assert desk.service.escalation.state("site:v05", time.time()) == "firing"  # GET only
        await phone.click("#ack-button")
        await phone.locator("#ack-result").wait_for()
        assert "已确认" in await phone.locator("#ack-result").inner_text()
        assert desk.service.escalation.state("site:v05", time.time()) == "acknowledged"
        await phone.close()

        # A test call recorded on v04's page shows on the open board without a reload.
        v04_checkin = board.locator("#site-v04 td").nth(9)
        assert "从未（应做）" in await v04_checkin.inner_text()
        village = await context.new_page()
        await village.goto(f"{desk.url}/site/v04")
        form = village.locator("#checkin-form")
        await form.locator("select[name=device]").select_option("v04-sathand")
        await form.locator("select[name=method]").select_option("test_call")
        await form.locator("input[name=result][value=ok]").check()
        await form.locator("input[name=battery]").fill("90")
        await form.locator("input[name=note]").fill("周测通话正常")
        await form.locator("button").click()
        await village.wait_for_url("**/site/v04?done=checkin")
        assert "记录测试通话" in await village.locator("p.done").inner_text()
        await board.wait_for_function(
            "document.querySelectorAll('#site-v04 td')[9].innerText.startsWith('正常')",
            timeout=15_000)

        # Roads cut at v04, for 24 h.
        road = village.locator("#road-form")
        await road.locator("input[name=hours]").fill("24")
        await road.locator("input[name=note]").fill("山体滑坡")
        await road.locator("button").click()
        await village.wait_for_url("**/site/v04?done=declare")
        assert await village.locator("#road-clear-form").count() == 1
        await village.screenshot(path=tmp_path / "village-actions.png", full_page=True)
        await board.wait_for_function(
            "document.querySelector('#site-v04').innerText.includes('断路')", timeout=15_000)
    finally:
        await context.close()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(tmp_path / "ack.png", SCREENSHOTS / "ack.png")


async def test_an_officer_runs_a_drill_and_reads_its_record(
        browser: Browser, desk: Desk, tmp_path: Path) -> None:
    """From v03's page the officer starts a 30-minute power drill: the page says
    【演练进行中】 and the board open in another tab marks v03 【演练】 without a reload;
    the reports page lists the drill as 进行中 and opens its record; the officer stops
    it from the banner (confirming), and the board's mark goes."""
    desk.daemon.store = Store(tmp_path / "commsmon.db")
    context, board = await _log_in(browser, desk.url)
    try:
        village = await context.new_page()
        village.on("dialog", lambda dialog: dialog.accept())  # "现在结束演练？"
        await village.goto(f"{desk.url}/site/v03")
        form = village.locator("#drill-form")
        await form.locator("select[name=scenario]").select_option("power")
        await form.locator("input[name=minutes]").fill("30")
        await form.locator("input[name=note]").fill("月度断电演练")
        await form.locator("button").click()
        await village.wait_for_url("**/site/v03?done=drill_start")
        banner = village.locator(".drill-banner")
        assert "【演练进行中】" in await banner.inner_text()
        await board.wait_for_function(
            "document.querySelector('#site-v03 .drill-badge') !== null", timeout=15_000)
        assert "演练中：" in await board.locator("#summary").inner_text()

        reports = await context.new_page()
        await reports.goto(f"{desk.url}/reports")
        row = reports.locator("table.drills tbody tr").first
        assert "进行中" in await row.inner_text() and "张三" in await row.inner_text()
        await reports.screenshot(path=tmp_path / "reports.png", full_page=True)
        async with context.expect_page() as opened:
            await row.locator("a", has_text="查看").click()
        record = await opened.value
        await record.wait_for_load_state()
        assert "演练记录" in await record.locator("h1").inner_text()

        await banner.locator("button").click()
        await village.wait_for_url("**/site/v03?done=drill_stop")
        assert await village.locator(".drill-banner").count() == 0
        await board.wait_for_function(
            "document.querySelector('#site-v03 .drill-badge') === null", timeout=15_000)
    finally:
        await context.close()
        desk.daemon.store.close()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(tmp_path / "reports.png", SCREENSHOTS / "reports.png")


async def test_a_refused_form_comes_back_as_it_was_typed(
        browser: Browser, desk: Desk, tmp_path: Path) -> None:
    """The officer types a drill's note on v06's page while a colleague starts one there
    from elsewhere; the refusal (该村已有演练在进行) leads back to the form as typed."""
    desk.daemon.store = Store(tmp_path / "commsmon.db")
    context, _ = await _log_in(browser, desk.url)
    try:
        village = await context.new_page()
        await village.goto(f"{desk.url}/site/v06")
        form = village.locator("#drill-form")
        await form.locator("select[name=scenario]").select_option("network")
        await form.locator("input[name=note]").fill("断网演练：我写的备注")
        await desk.daemon.operations.start_drill("v06", "power", None, "", Actor("li"))
        await form.locator("button").click()
        assert "该村已有演练在进行" in await village.locator("#refused").inner_text()
        await village.click("#back")
        await village.wait_for_url("**/site/v06")
        note = village.locator("#drill-form input[name=note]")
        assert await note.input_value() == "断网演练：我写的备注"
    finally:
        await context.close()
        desk.daemon.store.close()
