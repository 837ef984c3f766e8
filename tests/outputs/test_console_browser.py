"""The duty desk in a real browser: Debian's chromium driven by Playwright, against the
console served on 127.0.0.1 from the demo inventory through the real loader and core.

The board shows the 14 villages and the centre in Chinese; a village that goes
silent turns red on the open page without a reload (server-sent events); the wall
renders in Chinese; and when the server stops, the page says "数据中断" across its
width within 35 s.  Screenshots of the board, a village page and the wall go to the test's directory
and to docs/screenshots/ for the README.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from playwright.async_api import Browser

from commsmon.core.snapshot import Snapshot
from commsmon.outputs.web import add_console_routes
from commsmon.outputs.wording import DEFAULT_TZ
from tests.outputs.test_console import T0, demo_snapshot

pytestmark = pytest.mark.integration

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


async def _serve(holder: dict[str, Snapshot]) -> TestServer:
    app = web.Application()
    add_console_routes(app, lambda: holder["snap"], DEFAULT_TZ, "zh", clock=lambda: T0)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    return server


async def test_the_board_updates_live_and_says_when_data_stops(
        browser: Browser, tmp_path: Path) -> None:
    holder = {"snap": demo_snapshot()}
    server = await _serve(holder)
    page = await browser.new_page(viewport={"width": 1600, "height": 1000})
    try:
        await page.goto(str(server.make_url("/")))
        rows = page.locator("tbody tr")
        assert await rows.count() == 15  # 14 villages and the centre
        assert await page.title() == "值班台"
        v05 = page.locator("#site-v05 td").first
        assert await v05.inner_text() == "可达\n5 秒前"
        await page.screenshot(path=tmp_path / "board.png", full_page=True)

        holder["snap"] = demo_snapshot(down="v05")  # the village goes silent
        await page.wait_for_function(
            "document.querySelector('#site-v05 td').innerText.startsWith('失联')", timeout=15_000)
        assert "tone-bad" in (await v05.get_attribute("class") or "")

        village = await browser.new_page(viewport={"width": 1600, "height": 1000})
        await village.goto(str(server.make_url("/")))
        await village.click("#site-v01 a.name")  # from the board to the village page
        await village.wait_for_url("**/site/v01")
        assert await village.locator("tr[id^=device-]").count() >= 4
        await village.screenshot(path=tmp_path / "village.png", full_page=True)
        await village.close()

        wall = await browser.new_page(viewport={"width": 1920, "height": 1080})
        await wall.goto(str(server.make_url("/wall")))
        assert await wall.locator("body.wall tbody tr").count() == 15
        assert await wall.locator("form, button, input").count() == 0
        # every village and the centre on one 1080-line screen, nothing to scroll to
        assert await wall.evaluate("document.documentElement.scrollHeight") <= 1080
        # the clock ticks in the district's time zone, whatever the PC's
        await wall.wait_for_function("document.getElementById('clock').textContent !== ''")
        shown = await wall.locator("#clock").inner_text()
        from datetime import datetime
        now = datetime.now(DEFAULT_TZ)
        assert shown[:2] in (f"{now.hour:02d}", f"{(now.hour + 1) % 24:02d}"), shown
        await wall.screenshot(path=tmp_path / "wall.png", full_page=True)
        await wall.close()

        await server.close()  # the daemon goes away: the stream stops
        banner = page.locator("#stale")
        await banner.wait_for(state="visible", timeout=35_000)
        assert "数据中断" in await banner.inner_text()
        # every cell greys: what they say is no longer known to be true
        assert "data-stale" in await page.evaluate("document.body.className")
        grey = await page.evaluate(
            "getComputedStyle(document.querySelector('#site-v01 td')).backgroundColor")
        assert grey == "rgb(236, 239, 241)", grey  # --unknown-bg, not green
        await page.screenshot(path=tmp_path / "stale.png")
    finally:
        await page.close()
        await server.close()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for name in ("board.png", "village.png", "wall.png"):
        shutil.copyfile(tmp_path / name, SCREENSHOTS / name)
    await asyncio.sleep(0)
