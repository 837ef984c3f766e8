"""Hand-computed villages: what a careful duty officer works out, with the arithmetic.

Every case is judged at 2026-12-05 10:00 (Asia/Shanghai).  The pieces below are
the district's usual kit with the shipped profiles; unless a case says
otherwise every device answers, and its readings are 30 s old (fresh: a reading
is true for 3 poll intervals = 180 s over SNMP at 60 s polls, 3 x 60 s for the
genset gateway and the PDT terminal, 3 x 120 s for the satellite-phone dock).

The usual arithmetic, once, for every case that does not change it:

* village UPS ``ups``: upsEstimatedMinutesRemaining 60 min = 1 h, then the
  8 kW diesel ``gen``: 150 L ÷ 1.5 L/h (half load, not running) = 100 h;
  chain 1 + 100 = **101 h** for the router and the PDT terminal on ``ups:ups``;
* centre repeater ``rpt`` on ``cups`` 30 min = 0.5 h, then the 10 kW ``cgen``
  300 L ÷ 2.0 L/h = 150 h: **150.5 h**;
* pdt370 = min(terminal 101 h, repeater 150.5 h) = **101 h**;
* satellite: the dock on a wall socket, the handset's battery 96 % × 60 h = **57.6 h**;
* public with mains lost at the village (``power``, ``all``, a power cut now): the
  operators' base stations are one more link, and how long they hold without mains
  is not configured (``public_backup_hours``): public is **0 .. its chain**, unknown,
  and never carries a village through a power cut;
* with mains (``network``, ``road``, ``now`` without a power cut) every
  working chain is unbounded.
"""

from __future__ import annotations

import math
from typing import Any

from tests.field.harness import D, Expect, Village

INF = math.inf
A = 30.0  # seconds: the age of a fresh reading

GEN8 = {"consumption_lph": {0.5: 1.5, 0.75: 2.0, 1.0: 2.6}, "tank_litres": 200}
GEN10 = {"consumption_lph": {0.5: 2.0, 0.75: 2.5, 1.0: 3.3}, "tank_litres": 400}


def snmp(id: str, kind: str, profile: str, **kw: Any) -> dict[str, Any]:
    return {"id": id, "kind": kind, "profile": profile, "snmp": {"host": "127.0.0.1"}, **kw}


def mqtt(id: str, kind: str, profile: str, **kw: Any) -> dict[str, Any]:
    return {"id": id, "kind": kind, "profile": profile, "mqtt": {}, **kw}


RPT = snmp("rpt", "pdt_repeater", "hytera-repeater", name="370M PDT 中继台", power="ups:cups")
CUPS = snmp("cups", "ups", "ups-rfc1628", name="中心 UPS", power="generator:cgen")
CGEN = mqtt("cgen", "generator", "genset-gateway", name="中心发电机", generator=GEN10)
ROUTER = snmp("router", "router", "router-mib2", name="4G 路由器", channel="public",
              params={"uplink_ifindex": 2}, power="ups:ups")
PDT = mqtt("pdt", "pdt_terminal", "pdt-terminal", name="370M PDT 终端", channel="pdt370",
           depends_on=["rpt"], power="ups:ups")
SAT = mqtt("sat", "satphone", "satphone-dock", name="天通卫星电话", channel="satellite",
           power="mains", battery_hours=60)
UPS = snmp("ups", "ups", "ups-rfc1628", name="UPS", power="generator:gen")
GEN = mqtt("gen", "generator", "genset-gateway", name="发电机", generator=GEN8)
HAND = {"id": "hand", "kind": "satphone", "name": "天通手持机", "channel": "satellite",
        "power": "none", "battery_hours": 96}


def centre(*devices: dict[str, Any]) -> dict[str, Any]:
    return {"id": "c", "name": "山亭区应急指挥中心", "town": "山城街道", "role": "centre",
            "devices": list(devices or (RPT, CUPS, CGEN))}


def village(*devices: dict[str, Any], id: str = "v", **kw: Any) -> dict[str, Any]:
    return {"id": id, "name": "石门村", "town": "店子镇", "devices": list(devices), **kw}


def but(device: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**device, **changes}


#: Centre and the standard village: router and PDT terminal on UPS + genset, docked phone.
STANDARD = [centre(), village(ROUTER, PDT, SAT, UPS, GEN)]
#: A village with a router on mains only and a docked phone (no centre).
SMALL = [village(but(ROUTER, power="mains"), SAT)]

FRESH: dict[str, dict[str, Any]] = {
    "rpt": {"supply_type": "dc"},
    "cups": {"runtime": 1800.0, "output_source": "normal"},
    "cgen": {"fuel_litres": 300.0, "running": False, "mains_present": True},
    "router": {"uplink_status": "up"},
    "pdt": {"registered": True, "rssi": -90.0},
    "sat": {"charge": 0.96, "registered": True, "signal": 4.0},
    "ups": {"runtime": 3600.0, "output_source": "normal"},
    "gen": {"fuel_litres": 150.0, "running": False, "mains_present": True},
}


def readings(**changes: dict[str, Any]) -> dict[str, dict[str, tuple[Any, float]]]:
    """The usual fresh readings with ``changes``: a value, a (value, age) pair, or
    ``None`` to leave the reading out."""
    out: dict[str, dict[str, tuple[Any, float]]] = {}
    for device in {*FRESH, *changes}:
        values = {**FRESH.get(device, {}), **changes.get(device, {})}
        out[device] = {k: v if isinstance(v, tuple) else (v, A)
                       for k, v in values.items() if v is not None}
    return out


# Centre power cut: the centre UPS on battery with 30 min left, its generator failed.
CENTRE_CUT = readings(cups={"output_source": "battery", "runtime": 1800.0})

VILLAGES: list[Village] = [
    Village(
        "baseline: quiet day",
        STANDARD, readings=readings(),
        expect={
            # network: public lost; pdt370 and the phone on mains: unbounded.
            "network": Expect(True, INF, surviving=("pdt370", "satellite"),
                              zh=("公网：随公网中断",),
                              en=("public network: lost with the public network",)),
            "road": Expect(True, INF, surviving=("pdt370", "satellite", "public")),
            # power: public 0 .. 101 h (base stations unknown), pdt370 min(101, 150.5)
            # = 101 h, phone 57.6 h < 72 h: pdt370 carries, 101 h.
            "power": Expect(True, 101, surviving=("pdt370",),
                            zh=("电池 96 % × 60 小时 ≈ 57.6 小时 < 72 小时",),
                            en=("battery 96 % × 60 h ≈ 57.6 h < 72 h",)),
            # all: public lost; pdt370 101 h carries.
            "all": Expect(True, 101, surviving=("pdt370",),
                          zh=("就绪，由PDT 370M 集群通道保障",),
                          en=("ready via PDT 370 MHz",)),
            "now": Expect(True, INF, zh=("当前无中断：不受限",),
                          en=("no outage now: unbounded",)),
        },
        devices={"ups": 101, "gen": 100, "cups": 150.5, "cgen": 150, "router": 101,
                 "sat": 57.6, "rpt": 150.5},
        alerts=(), quiet=("outage_active c power", "endurance_low v", "endurance_low c"),
    ),
    Village(
        # Finding 1: the centre UPS on battery, 30 min left, its generator failed.
        # rpt in every scenario: mains out at the centre now -> cups 0.5 h + cgen down 0
        # = 0.5 h.  pdt370 = min(terminal, 0.5) = 0.5 h everywhere.
        "centre cut: UPS on battery 30 min, generator failed",
        STANDARD, readings=CENTRE_CUT, down=("cgen",),
        expect={
            # network: public lost; pdt370 0.5 h; the phone on mains at the village: ∞.
            "network": Expect(True, INF, surviving=("satellite",),
                              zh=("正在发生：山亭区应急指挥中心 断电",
                                  "370M PDT 中继台（rpt）：中心 UPS（cups）剩余供电 0.5 小时",
                                  "0.5 小时 < 72 小时"),
                              en=("with 山亭区应急指挥中心 power cut", "0.5 h < 72 h")),
            # road: public and phone on village mains: ∞; pdt370 0.5 h.
            "road": Expect(True, INF, surviving=("public", "satellite")),
            # power: public 0 .. 101 h (base stations unknown); pdt370 0.5 h; phone
            # 57.6 h: at least 57.6 h, at most 101 h: not ready (4G is not counted on).
            "power": Expect(False, None, at_least=57.6, at_most=101, surviving=()),
            # all: public lost, pdt370 0.5 h, phone 57.6 h: not ready, 57.6 h.
            "all": Expect(False, 57.6, surviving=()),
            # now: the village keeps public and the phone on its mains; pdt370 gives out
            # 10:00 + 0.5 h = 10:30.
            "now": Expect(True, INF, zh=("PDT 370M 集群约 10:30 中断",),
                          en=("PDT 370 MHz gives out at about 10:30",)),
            # The centre itself: its supports (the repeater) last 0.5 h.
            "c/now": Expect(False, 0.5, until=0.5,
                            zh=("预计可维持至 10:30（约 0.5 小时）",
                                "1 个村的PDT 370M 集群通道约 10:30 中断"),
                            en=("reachable until about 10:30 (0.5 h left)",
                                "PDT 370 MHz at 1 village lost at about 10:30")),
            "c/network": Expect(False, 0.5),
            "c/power": Expect(False, 0.5),
        },
        alerts=("outage_active c power", "endurance_low c", "countdown c 24", "countdown c 6",
                "countdown c 1", "scenario_not_ready v all"),
        quiet=("endurance_low v", "site_isolated v"),
    ),
    Village(
        # The centre on its generator: cups 0.5 h + cgen 100 L ÷ 2.0 L/h (half load) = 50 h
        # -> rpt 50.5 h.
        "centre cut: generator running, 100 L",
        STANDARD,
        readings=readings(cups={"output_source": "battery", "runtime": 1800.0},
                          cgen={"running": True, "mains_present": False, "fuel_litres": 100.0,
                                "load": 0.5}),
        expect={
            "network": Expect(True, INF, surviving=("satellite",)),
            # power: public 0 .. 101 h; pdt370 min(101, 50.5) = 50.5 h; phone 57.6 h:
            # at least 57.6 h: not ready.
            "power": Expect(False, None, at_least=57.6, at_most=101, surviving=()),
            # all: pdt370 50.5 h, phone 57.6 h -> the longest is the phone's 57.6 h.
            "all": Expect(False, 57.6),
            "c/now": Expect(False, 50.5, until=50.5),
        },
        # 50.5 h: below the 72 h target, above every countdown threshold (24, 6, 1 h).
        alerts=("outage_active c power", "endurance_low c"),
        quiet=("countdown c 24",),
    ),
    Village(
        # A village whose only channel is PDT (terminal on mains): the centre's 0.5 h is
        # the village's 0.5 h in network and road too.
        "centre cut: PDT-only village",
        [centre(), village(but(PDT, power="mains"), id="w")],
        readings=CENTRE_CUT, down=("cgen",), site="w",
        expect={
            "network": Expect(False, 0.5),
            "road": Expect(False, 0.5),
            # power: the terminal on mains only: 0 -> nothing works.
            "power": Expect(False, 0, zh=("370M PDT 终端（pdt）仅接市电，断电即停",),
                            en=("370M PDT 终端 (pdt) is on mains only",)),
            "now": Expect(False, 0.5, until=0.5),
        },
        alerts=("endurance_low w", "countdown w 1", "endurance_low c"),
    ),
    Village(
        "centre repeater down: pdt370 lost in every scenario",
        STANDARD, readings=readings(), down=("rpt",),
        expect={
            "network": Expect(True, INF, surviving=("satellite",),
                              zh=("370M PDT 中继台（rpt）自 10:00 起中断",),
                              en=("370M PDT 中继台 (rpt) down since 10:00",)),
            # all: public lost, pdt370 lost, phone 57.6 h.
            "all": Expect(False, 57.6),
            # The centre now: its support, the repeater, is lost (0 h): the village's
            # pdt370 is lost as of this evaluation, 10:00.
            "c/now": Expect(False, 0, zh=("1 个村的PDT 370M 集群通道约 10:00 中断",),
                            en=("PDT 370 MHz at 1 village lost at about 10:00",)),
        },
        state={"rpt": "down"},
    ),
    Village(
        # Finding 7: the repeater on mains only; with mains lost pdt370 gives 0, and the
        # reason names the repeater, not the terminal.
        "centre repeater on mains only is named",
        [centre(but(RPT, power="mains"), CUPS, CGEN), village(ROUTER, PDT, SAT, UPS, GEN)],
        readings=readings(),
        expect={
            # power: pdt370 0; public 0 .. 101 h; phone 57.6 h: not ready.
            "power": Expect(False, None, at_least=57.6, at_most=101, surviving=(),
                            zh=("370M PDT 中继台（rpt）仅接市电，断电即停",),
                            en=("370M PDT 中继台 (rpt) is on mains only",)),
        },
    ),
    Village(
        # Finding 2: the gateway still talks but the fuel level is 7 days old.
        # power: router/pdt = ups 1 h + fuel unknown (at most a full 200 L ÷ 1.5 = 133.3 h)
        # -> 1 .. 134.3 h; phone 57.6 h -> at least 57.6 h, at most 134.3 h: unknown.
        "fuel level 7 days old",
        STANDARD, readings=readings(gen={"fuel_litres": (150.0, 7 * D)}),
        expect={
            "power": Expect(False, None, at_least=57.6, at_most=134.33,
                            zh=("发电机（gen）的油量最后上报于 7 天前", "请检查其数据上报"),
                            en=("发电机 (gen) last reported its fuel level 7 d ago",)),
            "network": Expect(True, INF),
        },
    ),
    Village(
        # The edge: a reading exactly its max_age (180 s) old is still true.
        "fuel level exactly 180 s old",
        STANDARD, readings=readings(gen={"fuel_litres": (150.0, 180.0)}),
        expect={"power": Expect(True, 101)},
    ),
    Village(
        "fuel level 181 s old",
        STANDARD, readings=readings(gen={"fuel_litres": (150.0, 181.0)}),
        expect={"power": Expect(False, None, at_least=57.6, at_most=134.33,
                                zh=("3 分钟前",), en=("3 min ago",))},
    ),
    Village(
        # Finding 2: the UPS said 600 min yesterday and "-1" (not supported) since: its
        # runtime is not known now, never 10 h.  router on ups:ups, the UPS on mains:
        # public = unknown + 0 -> 0 .. ∞; phone 57.6 h -> at least 57.6 h.
        "UPS runtime -1 after 600 min yesterday",
        [village(ROUTER, SAT, but(UPS, power="mains"))],
        readings=readings(ups={"runtime": (36000.0, D)}), missing={"ups": ("runtime",)},
        expect={"power": Expect(False, None, at_least=57.6,
                                zh=("UPS（ups）自 09:59 起报告剩余供电时间不可用",),
                                en=("UPS (ups) reports its battery runtime as not available",))},
        devices={"ups": None},
    ),
    Village(
        # Finding 2: a handheld's 100 % from a test call 7 days ago (still valid: 7 d)
        # decays over its 96 h standby: 1 - 168/96 < 0 -> 0 % -> 0 h.
        "handheld 100 % a week ago",
        [village(but(ROUTER, power="mains"), HAND)],
        checkins={"hand": (7 * D, True, 1.0)},
        expect={
            # network: mains and roads hold: the keeper charges it: ∞.
            "network": Expect(True, INF, surviving=("satellite",)),
            # road: router on village mains ∞; handheld 0.
            "road": Expect(True, INF, surviving=("public",)),
            # power: router on mains only 0; handheld 0: nothing works.
            "power": Expect(False, 0, zh=("电池 100 %（11-28 10:00 测试时），未在充电", "现约 0 %"),
                            en=("battery 100 % at the test call of 11-28 10:00",)),
            "now": Expect(True, INF),
        },
        state={"hand": "up"},
    ),
    Village(
        # 90 % two days ago on no charger: 0.9 - 48/96 = 0.4 -> 40 % x 96 h = 38.4 h.
        "handheld 90 % two days ago",
        [village(but(ROUTER, power="mains"), HAND)],
        checkins={"hand": (2 * D, True, 0.9)},
        expect={"power": Expect(False, 38.4, zh=("90 %", "现约 40 % ≈ 38.4 小时"),
                                en=("now 40 % ≈ 38.4 h",))},
    ),
    Village(
        # On a charger (power: mains) it does not decay: 90 % x 96 h = 86.4 h.
        "handheld on a charger keeps its charge",
        [village(but(ROUTER, power="mains"), but(HAND, power="mains"))],
        checkins={"hand": (2 * D, True, 0.9)},
        expect={"power": Expect(True, 86.4, surviving=("satellite",)),
                "road": Expect(True, INF, surviving=("public", "satellite"))},
    ),
    Village(
        # A keeper's test call sent 0 % as -0 (the API takes it: -0 >= 0): the phone is
        # flat.  On a charger fed by the village's mains it charges while mains holds:
        # network (public lost) ∞ by satellite; road ∞ by both.  power: router on mains
        # only 0; handheld 0 % x 96 h = 0 h, not -0 h: nothing works.
        "handheld on a charger at -0 %",
        [village(but(ROUTER, power="mains"), but(HAND, power="mains"))],
        checkins={"hand": (2 * D, True, -0.0)},
        expect={"network": Expect(True, INF, surviving=("satellite",)),
                "road": Expect(True, INF, surviving=("public", "satellite")),
                "power": Expect(False, 0)},
        devices={"hand": 0.0},
    ),
    Village(
        # Finding 7: unknown says why and what to do: the last test call is 8 days old.
        "handheld test call 8 days old",
        [village(but(ROUTER, power="mains"), HAND)],
        checkins={"hand": (8 * D, True, 0.9)},
        expect={
            "network": Expect(False, None, at_least=None,
                              zh=("最近一次测试通话在 8 天前", "请联系村管理员做一次测试通话"),
                              en=("last test call 8 d ago", "ask the village keeper")),
            "road": Expect(True, INF, surviving=("public",)),
        },
        state={"hand": "unknown"},
    ),
    Village(
        # Finding 3: "not registered" takes the channel away: lost, not degraded.
        "satellite phone not registered",
        [village(ROUTER, SAT, UPS, GEN)],
        readings=readings(sat={"registered": False}),
        expect={
            # network: public lost, satellite lost -> nothing.
            "network": Expect(False, 0, zh=("卫星电话未注册到天通网络",),
                              en=("satellite phone not registered",)),
            "road": Expect(True, INF, surviving=("public",)),
        },
        state={"sat": "lost"},
    ),
    Village(
        "PDT terminal not registered",
        [centre(), village(ROUTER, PDT, UPS, GEN)],
        readings=readings(pdt={"registered": False}),
        expect={"network": Expect(False, 0, zh=("PDT 终端未注册到集群系统",),
                                  en=("PDT terminal not registered",))},
        state={"pdt": "lost"},
        alerts=("device_lost v",),
    ),
    Village(
        # -125 dBm is below a PDT receiver's -120 dBm sensitivity: no signal, lost.
        "PDT terminal without signal",
        [centre(), village(ROUTER, PDT, UPS, GEN)],
        readings=readings(pdt={"rssi": -125.0}),
        expect={"network": Expect(False, 0, zh=("无 PDT 信号",), en=("no PDT signal",))},
        state={"pdt": "lost"},
    ),
    Village(
        # -115 dBm: weak, it needs a look, but it still carries pdt370.
        "PDT terminal with a weak signal still works",
        [centre(), village(ROUTER, PDT, UPS, GEN)],
        readings=readings(pdt={"rssi": -115.0}),
        expect={"network": Expect(True, INF, surviving=("pdt370",))},
        state={"pdt": "degraded"},
    ),
    Village(
        # Low battery is only degraded: 25 % x 60 h = 15 h, still counted.
        "satellite phone battery 25 %",
        SMALL, readings=readings(sat={"charge": 0.25}),
        expect={"power": Expect(False, 15, zh=("25 % × 60 小时 ≈ 15 小时 < 72 小时",))},
        state={"sat": "degraded"},
    ),
    Village(
        # Finding 4: a power cut and a declared road cut together are not "all": the
        # public network works.  now: mains out at the village, no resupply: router on
        # UPS 1 h + genset running at half load 150 L ÷ 1.5 L/h = 100 h -> 101 h, but
        # the base stations' own backup is not known: public 0 .. 101 h; the phone's
        # dock is off mains: 57.6 h -> at least 57.6 h, not certainly the 72 h.
        "power cut and road cut are not all three",
        [village(ROUTER, SAT, UPS, GEN)],
        readings=readings(ups={"output_source": "battery"},
                          gen={"running": True, "mains_present": False, "load": 0.5}),
        road=("v",),
        expect={
            "now": Expect(False, None, at_least=57.6, at_most=101, until=57.6,
                          zh=("正在发生：断电", "断路", "公网基站断电后能维持多久未知"),
                          en=("with power cut",)),
            # all drops the public network too: only the phone's 57.6 h.
            "all": Expect(False, 57.6),
        },
        # endurance_low: not certainly 72 h now; countdown 24 h: certainly ≥ 57.6 h, quiet.
        alerts=("outage_active v power", "outage_active v road", "scenario_not_ready v all",
                "endurance_low v"),
        quiet=("countdown v 24",),
    ),
    Village(
        # Finding 5: one channel known lost, the other unknown: unknown, never 0.
        "router down, phone never heard",
        SMALL, readings=readings(), down=("router",), unseen=("sat",),
        expect={
            "road": Expect(False, None, at_least=None, zh=("续航未知",),
                           en=("endurance unknown",)),
            "power": Expect(False, None, at_least=None),
        },
    ),
    Village(
        # The phone answers without a charge reading: its battery is 0 .. 60 h (full),
        # short of 72 h for certain: not ready, at most 60 h.
        "router down, phone without a charge reading",
        SMALL, readings=readings(sat={"charge": None}), down=("router",),
        expect={
            "power": Expect(False, None, at_least=None, at_most=60,
                            zh=("至多 60 小时", "天通卫星电话（sat）未上报电量"),
                            en=("at most 60 h",)),
            "road": Expect(True, INF, surviving=("satellite",)),
        },
    ),
    Village(
        # Finding 6: a camera on UPS + genset behind a router on mains only: once mains
        # goes the router goes, and the camera's public channel with it.
        "camera behind a router on mains only",
        [village(snmp("router", "router", "router-mib2", name="4G 路由器",
                      params={"uplink_ifindex": 2}, power="mains"),
                 snmp("cam", "camera", "hikvision-camera", name="固定摄像机", channel="public",
                      parent="router", power="ups:ups"),
                 SAT, UPS, GEN)],
        readings=readings(),
        expect={
            # power: camera 101 h but its parent router 0 -> public 0; phone 57.6 h.
            "power": Expect(False, 57.6, zh=("4G 路由器（router）仅接市电",),
                            en=("4G 路由器 (router) is on mains only",)),
            "road": Expect(True, INF, surviving=("public", "satellite")),
        },
    ),
    Village(
        # Finding 7: no channel works: "none", not "?" nor "endurance unknown".
        "every channel down",
        STANDARD, readings=readings(), down=("router", "pdt", "sat"),
        expect={
            "road": Expect(False, 0),
            "now": Expect(False, 0, zh=("现无可用通道",), en=("no channel works now",)),
        },
        alerts=("site_isolated v",),
    ),
    Village(
        # Finding 7, the 72 h edge: 74.9 % x 96 h = 71.904 h reads 71.9 h < 72 h.
        "74.9 % of 96 h is not 72 h",
        [village(but(ROUTER, power="mains"), but(SAT, battery_hours=96))],
        readings=readings(sat={"charge": 0.749}),
        expect={"power": Expect(False, 71.904,
                                zh=("74.9 % × 96 小时 ≈ 71.9 小时 < 72 小时",),
                                en=("74.9 % × 96 h ≈ 71.9 h < 72 h",))},
    ),
    Village(
        # 75 % x 96 h = 72.0 h: ready.
        "75 % of 96 h is 72 h",
        [village(but(ROUTER, power="mains"), but(SAT, battery_hours=96))],
        readings=readings(sat={"charge": 0.75}),
        expect={"power": Expect(True, 72.0, surviving=("satellite",))},
    ),
    Village(
        # UPS 0 min + 107.8 L ÷ 1.5 L/h = 71.87 h: not ready; the phone 57.6 h.
        "107.8 L is 71.9 h, not 72",
        STANDARD, readings=readings(ups={"runtime": 0.0}, gen={"fuel_litres": 107.8}),
        expect={"power": Expect(False, 71.8667, zh=("107.8 L ÷ 1.5 L/h ≈ 71.8 小时",))},
    ),
    Village(
        # UPS 0 min + 108 L ÷ 1.5 L/h = 72.0 h: ready.
        "108 L is 72 h",
        STANDARD, readings=readings(ups={"runtime": 0.0}, gen={"fuel_litres": 108.0}),
        expect={"power": Expect(True, 72.0, surviving=("pdt370",))},
    ),
    Village(
        # Three stages: the terminal's own battery 100 % x 10 h on top of UPS 1 h and
        # genset 100 h: 111 h; pdt370 = min(111, repeater 150.5) = 111 h.
        "three stages: own battery, UPS, genset",
        [centre(), village(ROUTER, but(PDT, battery_hours=10), SAT, UPS, GEN)],
        readings=readings(pdt={"charge": 1.0}),
        expect={"power": Expect(True, 111, surviving=("pdt370",),
                                zh=("电池 100 % × 10 小时 ≈ 10 小时",))},
        devices={"pdt": 111},
    ),
    Village(
        # Two phones: 50 % x 60 h = 30 h and 90 % x 60 h = 54 h; the longer counts: 54 h.
        "two phones: the longer-lived counts",
        [village(but(ROUTER, power="mains"), SAT, but(SAT, id="sat2", name="备用卫星电话"))],
        readings=readings(sat={"charge": 0.5}, sat2={**FRESH["sat"], "charge": 0.9}),
        expect={"power": Expect(False, 54, zh=("备用卫星电话（sat2）",))},
    ),
    Village(
        # One phone 30 h, the other has no charge reading (0 .. 60 h): at least 30 h, at
        # most 60 h: short of 72 h for certain.
        "two phones: one without a charge reading",
        [village(but(ROUTER, power="mains"), SAT, but(SAT, id="sat2", name="备用卫星电话"))],
        readings=readings(sat={"charge": 0.5}, sat2={"registered": True, "signal": 4.0}),
        expect={"power": Expect(False, None, at_least=30, at_most=60)},
    ),
    Village(
        "two phones: one down",
        [village(but(ROUTER, power="mains"), SAT, but(SAT, id="sat2", name="备用卫星电话"))],
        readings=readings(sat2={**FRESH["sat"], "charge": 0.9}), down=("sat",),
        expect={"power": Expect(False, 54)},
    ),
    Village(
        # A 48 h target: the phone's 57.6 h is enough.
        "a village with a 48 h target",
        [village(but(ROUTER, power="mains"), SAT, target_hours=48)],
        readings=readings(),
        expect={"power": Expect(True, 57.6, surviving=("satellite",),
                                zh=("就绪，由卫星通道保障",))},
    ),
    Village(
        # A power cut at the village: UPS on battery 60 min, genset running with 30 L at
        # half load: 30 ÷ 1.5 = 20 h -> router and terminal 1 + 20 = 21 h; the phone's
        # dock loses mains: 57.6 h.  now: 57.6 h, to 12-07 19:36.
        "village power cut: now counts down",
        STANDARD,
        readings=readings(ups={"output_source": "battery"},
                          gen={"running": True, "mains_present": False, "fuel_litres": 30.0,
                               "load": 0.5}),
        expect={
            "now": Expect(False, 57.6, until=57.6,
                          zh=("预计可维持至 12-07 19:36（约 57.6 小时）",
                              "PDT 370M 集群约 12-06 07:00 中断"),
                          en=("reachable until about 12-07 19:36 (57.6 h left)",)),
            # network: mains out at the village folds in: public lost, pdt370 21 h,
            # phone 57.6 h.
            "network": Expect(False, 57.6),
            "road": Expect(False, 57.6),
            "power": Expect(False, 57.6),
        },
        alerts=("outage_active v power", "endurance_low v"),
        quiet=("countdown v 24",),
    ),
    Village(
        # A declared road cut alone takes no mains away.
        "road cut alone",
        STANDARD, readings=readings(), road=("v",),
        expect={"now": Expect(True, INF, zh=("正在发生：断路",)),
                "road": Expect(True, INF)},
        alerts=("outage_active v road",), quiet=("endurance_low v",),
    ),
    Village(
        # The public network out now: every public device silent while PDT works.
        "public network cut now",
        STANDARD, readings=readings(), down=("router",),
        expect={
            "now": Expect(True, INF, zh=("正在发生：断网",)),
            "road": Expect(True, INF, surviving=("pdt370", "satellite"),
                           zh=("公网：公网现已中断",), en=("the public network is out now",)),
        },
        alerts=("outage_active v network",),
    ),
    Village(
        # A router on mains only still answers in a power cut (UPS on battery): it is
        # powered by something the configuration does not name: unknown, not 0 and not
        # for ever.  now: unknown, at least the phone's 57.6 h.
        "router answering in a power cut on mains only",
        [village(but(ROUTER, power="mains"), SAT, but(UPS, power="mains"))],
        readings=readings(ups={"output_source": "battery"}),
        expect={"now": Expect(False, None, at_least=57.6,
                              zh=("其供电方式未在配置中说明",),
                              en=("what powers it is not in the configuration",))},
    ),
    Village(
        # A generator alarm is degraded: it still feeds: 101 h.
        "generator alarm still feeds",
        STANDARD, readings=readings(gen={"alarms": 1.0}),
        expect={"power": Expect(True, 101)},
        state={"gen": "degraded"},
    ),
    Village(
        # The genset down: UPS 1 h + 0 = 1 h for router and terminal; phone 57.6 h.
        "generator down: only the UPS minutes",
        STANDARD, readings=readings(), down=("gen",),
        expect={"power": Expect(False, 57.6, zh=("发电机（gen）中断，无法供电",))},
        devices={"ups": 1},
    ),
    Village(
        # The genset never heard: UPS 1 h + unknown -> at least 1 h; the phone 57.6 h.
        "generator never heard",
        STANDARD, readings=readings(), unseen=("gen",),
        expect={"power": Expect(False, None, at_least=57.6,
                                zh=("发电机（gen）状态未知",))},
    ),
    Village(
        # No UPS runtime, but the genset alone reaches the target: at least 100 h: ready.
        "UPS runtime missing, fuel alone clears 72 h",
        STANDARD, readings=readings(ups={"runtime": None}),
        expect={"power": Expect(True, None, at_least=100, surviving=("pdt370",))},
    ),
    Village(
        # Fuel as a ratio: 50 % of the 200 L tank = 100 L ÷ 1.5 = 66.67 h + UPS 1 h = 67.67 h.
        "fuel ratio times the tank",
        STANDARD, readings=readings(gen={"fuel_litres": None, "fuel": 0.5}),
        expect={"power": Expect(False, 67.6667, zh=("100 L ÷ 1.5 L/h ≈ 66.6 小时",))},
    ),
    Village(
        # Running at full load (a test run, mains present) burns 2.6 L/h: 150 ÷ 2.6 =
        # 57.69 h + 1 h = 58.69 h; the phone 57.6 h.
        "genset running at full load",
        STANDARD, readings=readings(gen={"running": True, "load": 1.0}),
        expect={"power": Expect(False, 58.6923, zh=("2.6 L/h",))},
    ),
    Village(
        # The UPS fed by a genset that reports no fuel: the UPS's own endurance is its
        # runtime 1 h + unknown (at most 133.3 h): unknown, never just 1 h.
        "UPS endurance includes its genset",
        STANDARD, readings=readings(gen={"fuel_litres": None}),
        expect={"power": Expect(False, None, at_least=57.6, at_most=134.33)},
        devices={"ups": None, "gen": None, "cups": 150.5},
    ),
    # SNMP traps: what a trap tells counts at once, marked unconfirmed until a poll
    # reads it; the poll's value stands, agreeing or not; a trap never makes a device
    # up or down.
    Village(
        # The UPS sent upsTrapOnBattery 5 s ago (upsEstimatedMinutesRemaining 50); its
        # last poll, 30 s ago, said normal, 60 min.  Power outage now, awaiting the poll.
        # now: UPS 50 min = 0.8333 h + genset 150 L ÷ 1.5 L/h = 100 h -> router and
        # terminal 100.8333 h; the phone's dock loses mains: 57.6 h; the village lasts
        # as long as its longest channel: 100.8333 h >= 72: ready.
        "trap: mains cut told by the UPS, poll not back yet",
        STANDARD, readings=readings(),
        traps={"ups": {"output_source": ("battery", 5.0), "runtime": (3000.0, 5.0)}},
        expect={"now": Expect(True, 100.8333, zh=("正在发生：断电",)),
                "power": Expect(True, 100.8333, surviving=("pdt370",))},
        unconfirmed={"ups": ("output_source", "runtime")},
        outages={"power": "UPS（ups）市电中断，电池供电（SNMP 陷阱报告，待轮询确认）"},
        state={"ups": "up"}, alerts=("outage_active v power",),
    ),
    Village(
        # The trap 20 s ago (50 min), the confirming poll 10 s ago: on battery, 49 min.
        # Confirmed: the same outage without the note.  now: 2940 s = 0.8167 h + 100 h.
        "trap: mains cut confirmed by the poll",
        STANDARD,
        readings=readings(ups={"output_source": ("battery", 10.0), "runtime": (2940.0, 10.0)}),
        traps={"ups": {"output_source": ("battery", 20.0), "runtime": (3000.0, 20.0)}},
        expect={"now": Expect(True, 100.8167)},
        unconfirmed={"ups": ()},
        outages={"power": "UPS（ups）市电中断，电池供电"},
        alerts=("outage_active v power",),
    ),
    Village(
        # The trap 20 s ago said battery; the poll 10 s ago says normal, 60 min: the poll
        # stands (mains came back, or the trap was wrong): no outage, now unbounded.
        "trap: contradicted by the poll",
        STANDARD,
        readings=readings(ups={"output_source": ("normal", 10.0), "runtime": (3600.0, 10.0)}),
        traps={"ups": {"output_source": ("battery", 20.0)}},
        expect={"now": Expect(True, INF)},
        unconfirmed={"ups": ()},
        outages={"power": None},
        quiet=("outage_active v power",),
    ),
    Village(
        # The UPS's polls fail (down), yet it just sent upsTrapOnBattery: it spoke now,
        # so mains is lost, awaiting a poll; the trap does not make the UPS up.
        "trap: on battery from a UPS whose polls fail",
        STANDARD, readings=readings(), down=("ups",),
        traps={"ups": {"output_source": ("battery", 5.0)}},
        expect={},
        unconfirmed={"ups": ("output_source",)},
        outages={"power": "UPS（ups）市电中断，电池供电（SNMP 陷阱报告，待轮询确认）"},
        state={"ups": "down"}, alerts=("outage_active v power",),
    ),
    Village(
        # The UPS's runtime read -1 (not available) 2 h ago; a trap 20 s ago said
        # battery; the poll 10 s ago read runtime 60 min, then output_source normal:
        # both confirmed, whatever order the poll lists them in.  Then the UPS stops
        # answering: its last word, confirmed, is mains; a down UPS is no evidence of a
        # cut, so no power outage (the trap is not left "awaiting a poll" to open one).
        "trap: contradicted by a poll that also brings back the runtime, then the UPS down",
        STANDARD, readings=readings(ups={"runtime": (3600.0, 10.0),
                                         "output_source": ("normal", 10.0)}),
        lost={"ups": {"runtime": 7200.0}}, down=("ups",),
        traps={"ups": {"output_source": ("battery", 20.0)}},
        expect={},
        unconfirmed={"ups": ()},
        outages={"power": None},
        state={"ups": "down"}, quiet=("outage_active v power",),
    ),
    Village(
        # The genset gateway's trap 50 s ago, its varbinds read with no decode: running
        # 1.0, mains_present 0.0; the poll 30 s ago, decode bool: running True,
        # mains_present False, half load.  0.0 == False, but what the poll read is the
        # bool, and a generator running without mains is a power outage at the village.
        # now: UPS 60 min = 1 h + genset 150 L ÷ 1.5 L/h = 100 h -> router and terminal
        # 101 h (the repeater's 150.5 h does not bind); the phone's dock off mains 57.6 h;
        # the village lasts its longest channel: 101 h >= 72: ready.  Kept as the
        # trap's numbers, the poll changed nothing: no outage, now unbounded.
        "trap: the genset told numbers, the poll read bools",
        STANDARD,
        readings=readings(gen={"running": True, "mains_present": False, "load": 0.5}),
        traps={"gen": {"running": (1.0, 50.0), "mains_present": (0.0, 50.0)}},
        expect={"now": Expect(True, 101, surviving=("pdt370",))},
        unconfirmed={"gen": ()},
        alerts=("outage_active v power",),
    ),
    # The public network in a power cut: the operators' base stations hold what
    # public_backup_hours says (a site's own figure before the district default).
    Village(
        # Base stations hold 4 h: power: public = min(router 101 h, 4 h) = 4 h; pdt370
        # 101 h carries.  SMALL-like village without PDT: the phone 57.6 h, public 4 h:
        # not ready, 57.6 h.
        "base stations hold 4 h: 4G does not carry a power cut",
        [village(ROUTER, SAT, UPS, GEN)], readings=readings(),
        defaults={"public_backup_hours": 4},
        expect={"power": Expect(False, 57.6, surviving=(),
                                zh=("公网基站断电后可维持 4 小时",),
                                en=("the public network's base stations hold 4 h without mains",)),
                "road": Expect(True, INF, surviving=("public", "satellite"))},
    ),
    Village(
        # A site's own 80 h (a base station with its own genset): public = min(101, 80)
        # = 80 h >= 72: ready via public as well as nothing else (phone 57.6 h).
        "base stations with their own 80 h: 4G carries",
        [village(ROUTER, SAT, UPS, GEN, public_backup_hours=80)], readings=readings(),
        defaults={"public_backup_hours": 4},
        expect={"power": Expect(True, 80, surviving=("public",))},
    ),
    Village(
        # A power cut now (the UPS on battery, the genset running at half load, 150 L):
        # base stations hold 4 h from 10:00 -> public gives out at 14:00 (router 1 h +
        # 100 h = 101 h is not what binds); the phone 57.6 h: now 57.6 h, not ready.
        "power cut now: 4G lasts the base stations' 4 h",
        [village(ROUTER, SAT, UPS, GEN)],
        readings=readings(ups={"output_source": "battery"},
                          gen={"running": True, "mains_present": False, "load": 0.5}),
        defaults={"public_backup_hours": 4},
        expect={"now": Expect(False, 57.6, until=57.6,
                              zh=("公网约 14:00 中断", "自 10:00 断电起剩余 4 小时"))},
        alerts=("outage_active v power", "endurance_low v"),
    ),
    # The trap path: the village's kit sends a test trap every 15 min (trap_every 900);
    # nothing from any of its devices for more than 2 × 900 s = 1800 s is "down" — the
    # path, not a device: every device still answers its polls.
    Village(
        # The router's test trap 10 min ago: 600 s <= 1800 s: up.
        "trap path: a test trap 10 min ago",
        [centre(), village(ROUTER, PDT, SAT, UPS, GEN, trap_every=900)],
        readings=readings(), trap_heard={"router": 600.0}, expect={},
        trap_path=("up", ""), quiet=("trap_path_down v",),
    ),
    Village(
        # Exactly twice the period, 1800 s: still up (one test trap missed is allowed).
        "trap path: silent exactly twice its period",
        [centre(), village(ROUTER, PDT, SAT, UPS, GEN, trap_every=900)],
        readings=readings(), trap_heard={"router": 1800.0}, expect={},
        trap_path=("up", ""), quiet=("trap_path_down v",),
    ),
    Village(
        # 1801 s > 1800 s: down, though router, UPS and the rest answer their polls.
        "trap path: one second past twice its period",
        [centre(), village(ROUTER, PDT, SAT, UPS, GEN, trap_every=900)],
        readings=readings(), trap_heard={"router": 1801.0, "ups": 3600.0}, expect={},
        trap_path=("down", "30 分钟未收到本村设备的任何陷阱或通知"),
        state={"router": "up", "ups": "up"}, alerts=("trap_path_down v",),
    ),
    Village(
        # Listening for 1000 s, nothing heard yet: 1000 <= 1800 s, nothing proves the
        # path: unknown, no alert.
        "trap path: nothing yet, within the grace",
        [centre(), village(ROUTER, PDT, SAT, UPS, GEN, trap_every=900)],
        readings=readings(), listening=1000.0, expect={},
        trap_path=("unknown", "尚未收到本村设备的陷阱"), quiet=("trap_path_down v",),
    ),
    Village(
        # Listening for 2000 s, nothing heard: 2000 > 1800 s: down.
        "trap path: nothing since listening began, past the grace",
        [centre(), village(ROUTER, PDT, SAT, UPS, GEN, trap_every=900)],
        readings=readings(), listening=2000.0, expect={},
        trap_path=("down", "未收到本村设备的任何陷阱或通知"), alerts=("trap_path_down v",),
    ),
    Village(
        # commsmon cannot bind its trap port: the monitor's fault, not the village's.
        "trap path: the monitor is not listening",
        [centre(), village(ROUTER, PDT, SAT, UPS, GEN, trap_every=900)],
        readings=readings(), trap_heard={"router": 7200.0}, listening=None, expect={},
        trap_path=("unknown", "监测系统未在接收陷阱"), quiet=("trap_path_down v",),
    ),
]
