"""The duty desk's board and wall with aiohttp's test client, on the demo inventory
through the real config loader and core: every village and the centre, in Chinese
by default, colour with words, the data's age, and the live table on /events."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from commsmon.config.load import load_config
from commsmon.core.fleet import Fleet
from commsmon.core.snapshot import Snapshot
from commsmon.core.types import Observation
from commsmon.outputs.web import add_console_routes
from commsmon.outputs.wording import DEFAULT_TZ

DEMO = Path(__file__).resolve().parents[2] / "config" / "demo.yaml"
Client = TestClient[web.Request, web.Application]
Desk = tuple[Client, dict[str, Snapshot]]
T0 = 1_796_436_000.0  # 2026-12-05 10:00 Asia/Shanghai
# Ids, units and acronyms may stand in a Chinese page; no other Latin word.
ALLOWED = re.compile(r"^([A-Z0-9]+|[a-z0-9]+(-[a-z0-9]+)*|h|s|min|d|kW|L/h|PDT|MHz|M|L)$")


def demo_snapshot(down: str | None = None) -> Snapshot:
    """Every device of the demo answered 5 s ago (``down``'s devices stopped)."""
    config = load_config(DEMO)
    inventory = config.inventory()
    fleet = Fleet(inventory, T0 - 600)
    fleet.set_source("mqtt", True, T0 - 600)
    for device_id, device in inventory.devices.items():
        ok = device.site != down
        fleet.observe(Observation(device_id, T0 - 5, ok, conclusive=not ok))
    return fleet.evaluate(T0)


#: What the trap receiver remembers: the UPS's on-battery trap, one no profile knows.
TRAPS = [(T0 - 3, "v01-ups", "on_battery"), (T0 - 2, "v01-router", "1.3.6.1.4.1.99999.0.7"),
         (T0 - 1, "v02-ups", "on_battery")]


@pytest.fixture
async def client() -> AsyncIterator[Desk]:
    holder = {"snap": demo_snapshot()}
    app = web.Application()
    add_console_routes(app, lambda: holder["snap"], DEFAULT_TZ, "zh", clock=lambda: T0,
                       traps=lambda: TRAPS)
    async with TestClient(TestServer(app)) as c:
        yield c, holder


async def test_the_board_lists_every_village_and_the_centre_in_chinese(client: Desk) -> None:
    c, _ = client
    r = await c.get("/")
    assert r.status == 200 and r.content_type == "text/html"
    page = await r.text()
    config = load_config(DEMO)
    for site in config.sites:
        assert f'id="site-{site.id}"' in page and site.name in page
    assert page.index('id="site-v14"') < page.index('id="site-centre"')  # villages first
    assert "值班台" in page and "可达" in page and "数据中断" in page
    assert "5 秒" in page  # the age of the data behind a cell
    assert "不受限" in page and ">∞<" not in page  # now, with no outage: in words
    text = re.sub(r"<[^>]+>|\{[^}]*\}", " ", page.split("<body", 1)[1].split(">", 1)[1])
    words = [w for w in re.findall(r"[A-Za-z][A-Za-z0-9_.-]*", text) if not ALLOWED.match(w)]
    assert not words, words[:20]
    assert "/static/htmx-2.0.11.min.js" in page and "http" not in page.split("<body")[0].replace(
        'http-equiv', '')  # nothing from a CDN


async def test_colour_never_stands_alone(client: Desk) -> None:
    """An isolated village: its cells are red *and* say so."""
    c, holder = client
    holder["snap"] = demo_snapshot(down="v05")
    page = await (await c.get("/board/table")).text()
    row = page.split('id="site-v05"', 1)[1].split("</tr>", 1)[0]
    assert 'class="tone-bad' in row and "失联" in row
    # what is happening there now: isolated since its kit stopped answering, not "none"
    happening = row.rsplit("<td", 1)[1]
    assert "tone-bad" in happening and "失联（自 10:00）" in happening, happening


async def test_the_board_says_what_an_officer_would_miss(client: Desk) -> None:
    """A target other than 72 h is shown; a test call never made where one is due says
    so; readiness that is not known is amber, never calmer than ready."""
    c, _ = client
    page = await (await c.get("/board/table")).text()
    assert "目标 48 小时" in page
    assert "从未（应做）" in page and "无需" in page
    assert "最近测试通话" in await (await c.get("/")).text()
    for cell in re.findall(r'<td class="tone-([a-z]+)[^"]*"[^>]*>\s*<span class="text">未知',
                           page):
        assert cell in ("warn", "unknown"), cell


async def test_english_on_asking(client: Desk) -> None:
    c, _ = client
    page = await (await c.get("/?lang=en")).text()
    assert "Duty desk" in page and "Reachable" in page and 'lang="en"' in page


async def test_the_wall_has_large_type_and_no_controls(client: Desk) -> None:
    c, _ = client
    page = await (await c.get("/wall")).text()
    assert 'class="wall"' in page and "<form" not in page and "<button" not in page
    assert 'href="/site/' not in page  # nothing to click on the big screen
    assert "/events?lang=zh&amp;wall=1" in page


async def test_events_push_the_table(client: Desk) -> None:
    c, _ = client
    r = await c.get("/events")
    assert r.headers["Content-Type"].startswith("text/event-stream")
    first = b""
    while b"</table>" not in first:
        first += await r.content.readany()
    assert first.startswith(b"event: board") and b'id="site-v01"' in first
    r.close()


async def test_events_push_a_village_page_live(client: Desk) -> None:
    """The village page's states and readings come again every few seconds: a device
    that stops answering shows without a reload."""
    c, holder = client
    page = await (await c.get("/site/v05")).text()
    assert 'sse-connect="/events?lang=zh&amp;site=v05"' in page
    holder["snap"] = demo_snapshot(down="v05")
    r = await c.get("/events?site=v05")
    first = b""
    while b"device-v05-router" not in first or b"</table>" not in first.split(
            b"device-v05-router", 1)[1]:
        first += await r.content.readany()
    assert first.startswith(b"event: site") and "中断".encode() in first
    r.close()
    assert (await c.get("/events?site=nowhere")).status == 404


async def test_a_village_page_shows_its_devices_readings_and_reasons(client: Desk) -> None:
    """From the board's link: the village's verdicts with reasons and each device with
    its state and readings with their ages; a reading a trap told says it awaits a poll."""
    c, holder = client
    config = load_config(DEMO)
    fleet = Fleet(config.inventory(), T0 - 600)
    fleet.set_source("mqtt", True, T0 - 600)
    for device_id in config.inventory().devices:
        fleet.observe(Observation(device_id, T0 - 5, True))
    fleet.observe(Observation("v01-ups", T0 - 65, True, {"runtime": 3600.0,
                                                          "output_source": "normal"}))
    fleet.observe(Observation("v01-ups", T0 - 3, True, {"output_source": "battery",
                                                         "runtime": 1800.0}, unconfirmed=True))
    fleet.observe(Observation("v01-router", T0 - 4, True, {"uplink_status": "lowerLayerDown",
                                                            "uptime": 7200.0}))
    holder["snap"] = fleet.evaluate(T0)
    board = await (await c.get("/")).text()
    assert 'href="/site/v01"' in board
    r = await c.get("/site/v01")
    assert r.status == 200
    page = await r.text()
    assert 'id="device-v01-ups"' in page and "30 分钟" in page  # runtime 1800 s
    assert "SNMP 陷阱报告，待轮询确认" in page and "3 秒" in page
    assert "上行口状态：<strong>下层链路中断</strong>" in page  # a vendor reading, in words
    assert "运行时长：<strong>2 小时</strong>" in page
    assert "断电" in page and "正在发生" in page
    traps = page.split("设备主动上报（SNMP）", 1)[1].split("</ul>", 1)[0]
    assert "UPS：转电池供电（市电中断）" in traps and "1.3.6.1.4.1.99999.0.7" in traps
    assert traps.index("99999") < traps.index("转电池供电")  # newest first
    assert "v02" not in traps  # another village's
    text = re.sub(r"<[^>]+>|\{[^}]*\}", " ", page.split("<body", 1)[1].split(">", 1)[1])
    words = [w for w in re.findall(r"[A-Za-z][A-Za-z0-9_.-]*", text) if not ALLOWED.match(w)]
    assert not words, words[:20]
    assert (await c.get("/site/nowhere")).status == 404


async def test_the_board_sums_up_and_the_wall_puts_problems_first(client: Desk) -> None:
    c, holder = client
    holder["snap"] = demo_snapshot(down="v05")
    page = await (await c.get("/board/table")).text()
    assert "14 个村：可达 13，失联 1，未知 0" in page
    wall = await (await c.get("/board/table?wall=1")).text()
    assert wall.index('id="site-v05"') < wall.index('id="site-v01"')  # the isolated first
    desk = await (await c.get("/board/table")).text()
    assert desk.index('id="site-v01"') < desk.index('id="site-v05"')  # the desk: in order
    assert 'data-h="可达"' in desk  # a phone shows each cell with its heading


def test_readings_read_with_their_units() -> None:
    from commsmon.outputs.web.board import reading_texts
    from commsmon.outputs.wording import Wording

    device = {"id": "d", "readings": {
        "battery_volts": {"value": 13.2}, "pa_temperature": {"value": 41.0},
        "rssi": {"value": -90.0}, "fuel_litres": {"value": 150.0}, "signal": {"value": 4},
        "charge": {"value": 0.96}, "runtime": {"value": 3600.0},
        "uplink_receive": {"value": 12500.0}, "registered": {"value": True}}}
    texts = reading_texts([device], Wording("zh"))
    assert texts["d", "battery_volts"] == "13.2 V" and texts["d", "pa_temperature"] == "41 °C"
    assert texts["d", "rssi"] == "-90 dBm" and texts["d", "fuel_litres"] == "150 L"
    assert texts["d", "signal"] == "4 格" and texts["d", "charge"] == "96 %"
    assert texts["d", "uplink_receive"] == "12.5 kB/s" and texts["d", "registered"] == "已注册"


async def test_a_channel_that_an_outage_will_end_says_when(client: Desk) -> None:
    """The centre's mains cut, its UPS on battery with 30 min left: every village's PDT
    channel still works, but not for long — its cell says until when, amber, not a calm
    green 正常."""
    c, holder = client
    config = load_config(DEMO)
    fleet = Fleet(config.inventory(), T0 - 600)
    fleet.set_source("mqtt", True, T0 - 600)
    for at in (T0 - 5, T0):
        for device_id in fleet.inventory.devices:
            readings = {"output_source": "battery", "runtime": 1800.0} \
                if device_id == "centre-ups" else {}
            fleet.observe(Observation(device_id, at, True, readings))
        holder["snap"] = fleet.evaluate(at)
    page = await (await c.get("/board/table")).text()
    row = page.split('id="site-v01"', 1)[1].split("</tr>", 1)[0]
    pdt = row.split('data-h="PDT 370M 集群"', 1)[0].rsplit("<td", 1)[1] + row.split(
        'data-h="PDT 370M 集群"', 1)[1].split("</td>", 1)[0]
    assert "tone-warn" in pdt and ("10:30" in pdt), pdt
