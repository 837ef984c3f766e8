"""The words officers read: complete zh-CN and en catalogs, every fact in both languages,
no English inside Chinese, numbers rounded so the decision shows."""

from __future__ import annotations

import re
import string
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from commsmon.core.alerting import Alert
from commsmon.core.endurance import Endurance
from commsmon.core.facts import FACT_CODES, Fact
from commsmon.core.rules import RULES
from commsmon.outputs.alerts.messages import alert_summary
from commsmon.outputs.wording import Wording
from commsmon.outputs.wording.catalogs import LOCALES, po_path
from commsmon.outputs.wording.numbers import hours_number, percent_number, rate_number

ROOT = Path(__file__).resolve().parents[2]
T = 1_764_900_000.0
# Ids, units and the kit's acronyms may stand in a Chinese text; no other Latin word.
# Ids, acronyms, units, and the configuration keys a reason tells the engineer to set.
ALLOWED = re.compile(r"^([A-Z0-9]+|[a-z0-9]+(-[a-z0-9]+)*|L|L/h|h|kW|MHz|M|dBm|reply_from)$")


def _code_messages() -> set[str]:
    keywords = {"N_": None, "_": None, "_n": (1, 2)}
    found = set()
    for _, _, message, _, _ in extract_from_dir(str(ROOT / "commsmon"), keywords=keywords):
        found.add(message[0] if isinstance(message, tuple) else message)
    return found


def _fields(text: str) -> set[str]:
    return {f for _, f, _, _ in string.Formatter().parse(text) if f}


@pytest.mark.parametrize("language", ["zh", "en"])
def test_catalogs_match_the_code(language: str) -> None:
    """Each catalog holds exactly the messages the code marks (run ``make catalogs``
    after changing words), zh-CN translates every one, with the same placeholders."""
    with po_path(language).open("rb") as f:  # type: ignore[arg-type]
        catalog = read_po(f, locale=LOCALES[language])  # type: ignore[index]
    ids = {m.id[0] if isinstance(m.id, tuple) else m.id: m for m in catalog if m.id}
    assert set(ids) == _code_messages()
    if language == "zh":
        for msgid, m in ids.items():
            strings = m.string if isinstance(m.string, tuple) else (m.string,)
            assert all(strings) and not m.fuzzy, f"untranslated: {msgid!r}"
            for s in strings:
                assert _fields(s) == _fields(msgid), f"placeholders differ: {msgid!r} -> {s!r}"


def _english_words(text: str) -> list[str]:
    return [w for w in re.findall(r"[A-Za-z][A-Za-z0-9/_.-]*", text) if not ALLOWED.match(w)]


NESTED = (Fact("no_answer"),)
TERMS = {
    "device": "v01-ups", "name": "UPS", "site": "v01", "site_name": "石门村", "state": "down",
    "source": "mqtt", "reading": "fuel_litres", "value": 1.0, "effect": "lost",
    "text_zh": "卫星电话未注册到天通网络", "text_en": "satellite phone not registered",
    "age": 30 * 3600.0, "validity": 7 * 86400.0, "at": T, "since": T, "until": T + 3600,
    "note": "塌方", "by": "张三", "hours": 5.5, "rated_hours": 60.0, "ratio": 0.5,
    "checkin_ratio": 0.9, "litres": 20.0, "rate": 1.5, "load": 0.5, "running": True,
    "actual": True, "max_age": 180.0, "detail": "disk full", "limit": 600.0,
    "channel": "pdt370", "outage": "power", "scenario": "power", "sources": ("mqtt",),
    "devices": ("v01-router",), "working": ("satellite",), "causes": NESTED,
    "evidence": (Fact("ups_on_battery", {"device": "v01-ups", "name": "UPS"}),),
    "endurance": Endurance(5.5, 5.5, (Fact("ups_runtime", {"hours": 5.5}),)).as_fact(),
    "lower": 5.5, "upper": 5.5, "stages": (Fact("battery", {"hours": 5.5, "ratio": 0.5}),),
    "unknowns": (), "target_hours": 72.0, "ready": False, "survives": False,
    "outlooks": (), "supports": (), "outages": (), "dependent_sites": ("v01",),
    "dependent_channels": ("pdt370",), "address": "127.0.0.2:16100", "online": True,
    "receiver": "duty", "code": "310000", "client_id": "commsmon-centre-0", "count": 3,
    "titles": ("【严重】店子镇 石门村：失联",), "role": "deputy", "names": ("李四",),
    "phones": ("13800000002",), "step": 1,
}


@pytest.mark.parametrize("code", FACT_CODES)
def test_every_fact_reads_in_both_languages(code: str) -> None:
    """Each kind of fact has words in Chinese and English; the Chinese has no English word
    but ids, units and acronyms."""
    fact = Fact(code, TERMS)  # type: ignore[arg-type]
    zh = Wording("zh", now=T).fact(fact, "v01")
    en = Wording("en", now=T).fact(fact, "v01")
    assert zh and en and zh != code and en != code
    assert not _english_words(zh), f"{code}: {zh!r}"


def test_evidence_a_trap_told_says_it_awaits_a_poll() -> None:
    """Power evidence resting on a trap not yet confirmed by a poll says so; once a poll
    read it, the same words without the note."""
    told = Fact("ups_on_battery", {"device": "v01-ups", "name": "UPS", "unconfirmed": True})
    polled = Fact("ups_on_battery", {"device": "v01-ups", "name": "UPS"})
    assert Wording("zh", now=T).fact(told, "v01") == (
        "UPS（v01-ups）市电中断，电池供电（SNMP 陷阱报告，待轮询确认）")
    assert Wording("zh", now=T).fact(polled, "v01") == "UPS（v01-ups）市电中断，电池供电"
    assert Wording("en", now=T).fact(told, "v01") == (
        "UPS (v01-ups) on battery: mains lost (SNMP trap, awaiting a poll to confirm)")


@pytest.mark.parametrize("rule", RULES)
def test_every_alert_summary_reads_in_both_languages(rule: str) -> None:
    """Each rule's one-line summary exists in Chinese (without English) and English."""
    labels = {"alertname": rule, "site": "v01", "device": "v01-ups", "channel": "pdt370",
              "scenario": "power", "outage": "power", "hours": "6", "fault": "state_dir"}
    facts = (Fact("device", TERMS), Fact("verdict", TERMS))
    alert = Alert(rule, "critical", labels, facts, T)
    zh = alert_summary(alert, "zh", now=T)
    assert zh != rule and not _english_words(zh), f"{rule}: {zh!r}"
    assert alert_summary(alert, "en", now=T) != rule


@pytest.mark.parametrize(("hours", "shown"), [
    (71.96, "71.9"), (71.89999999999999, "71.9"), (72.0, "72"), (57.6, "57.6"),
    (0.5, "0.5"), (109.9, "109"), (float("inf"), "∞"),
])
def test_hours_never_round_up_across_the_target(hours: float, shown: str) -> None:
    """Hours round down to a tenth (whole hours from 100): 71.96 h never reads 72."""
    assert hours_number(hours) == shown


def test_percent_and_rate() -> None:
    """74.96 % reads 74.9 %; a rate keeps two decimals, rounded half up."""
    assert percent_number(0.7496) == "74.9" and percent_number(0.96) == "96"
    assert rate_number(1.075) == "1.08" and rate_number(2.0) == "2"


def test_times_show_the_date_only_on_another_day() -> None:
    """17:40 today; 12-06 17:40 tomorrow (Asia/Shanghai)."""
    w = Wording("zh", now=T)
    assert re.fullmatch(r"\d\d:\d\d", w.time(T + 60))
    assert re.fullmatch(r"\d\d-\d\d \d\d:\d\d", w.time(T + 2 * 86400))
