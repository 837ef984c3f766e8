"""The duty roster as the bureau keeps it in a sheet, and who holds a role when."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from commsmon.core.roster import Roster
from commsmon.operations.roster import parse_roster_csv

TZ = ZoneInfo("Asia/Shanghai")
SHEET = """\ufeff开始,结束,角色,姓名,电话
2026-12-05 08:00,2026-12-06 08:00,值班员,张三,13800000001
2026-12-05 08:00,2026-12-06 08:00,副班,李四,13800000002
2026-12-05 08:00,2026-12-06 08:00,带班领导,王五,
2026-12-05 12:00,2026-12-05 14:00,duty,赵六,13800000006
"""


def _at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=TZ).timestamp()


def test_a_sheet_in_chinese_reads() -> None:
    roster = Roster.of(parse_roster_csv(SHEET, TZ))
    morning = roster.holders(_at("2026-12-05 10:00"))
    assert {r: s.name for r, s in morning.items()} == {"duty": "张三", "deputy": "李四",
                                                        "leader": "王五"}
    # a swap entered on top of the day's plan: the later-starting shift holds it
    assert roster.holder("duty", _at("2026-12-05 12:00")).name == "赵六"  # type: ignore[union-attr]
    assert roster.holder("duty", _at("2026-12-05 14:00")).name == "张三"  # type: ignore[union-attr]
    # the shift ends at 08:00 the next day (exclusive): nobody after it
    assert roster.holder("leader", _at("2026-12-06 08:00")) is None


@pytest.mark.parametrize(("sheet", "message"), [
    ("", "line 1: empty"),
    ("start,end,name\n", "line 1: columns: role"),
    ("start,end,role,name\n2026-12-05,tomorrow,duty,张三\n", "line 2: time: tomorrow"),
    ("start,end,role,name\n2026-12-05 10:00,2026-12-05 09:00,duty,张三\n", "line 2: order"),
    ("start,end,role,name\n2026-12-05 08:00,2026-12-05 09:00,duty,\n", "line 2: missing"),
])
def test_a_bad_sheet_names_the_line(sheet: str, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_roster_csv(sheet, TZ)
