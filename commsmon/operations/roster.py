"""Reading a duty roster uploaded as CSV (值班表), as the bureau keeps it in a sheet.

One shift per row: ``start,end,role,name,phone`` (or the Chinese headings
``开始,结束,角色,姓名,电话``); times as ``2026-12-05 08:00`` in the district's
time zone, or ISO 8601 with an offset; roles ``duty`` (值班员), ``deputy`` (副班),
``leader`` (带班领导) or any role a policy names.
"""

from __future__ import annotations

import csv
import io
from datetime import datetime, tzinfo

from commsmon.core.roster import Shift

__all__ = ["ROLE_ALIASES", "RosterError", "parse_roster_csv"]

_HEADINGS = {"start": "start", "开始": "start", "end": "end", "结束": "end", "role": "role",
             "角色": "role", "name": "name", "姓名": "name", "phone": "phone", "电话": "phone"}
#: Roles as a sheet may write them in Chinese.
ROLE_ALIASES = {"值班员": "duty", "值班": "duty", "副班": "deputy", "带班领导": "leader",
                "带班": "leader"}
MAX_ROWS = 5000


class RosterError(ValueError):
    """A sheet that does not read: ``line`` (1-based), ``problem`` (``empty``,
    ``columns``, ``time``, ``order``, ``missing``, ``rows``) and ``detail`` (the missing
    columns, the cell that is not a time)."""

    def __init__(self, line: int, problem: str, detail: str = "") -> None:
        super().__init__(f"line {line}: {problem}" + (f": {detail}" if detail else ""))
        self.line, self.problem, self.detail = line, problem, detail


def parse_roster_csv(text: str, tz: tzinfo) -> list[Shift]:
    """The shifts of a roster sheet.

    Raises:
        RosterError: naming the line of the first problem (a missing heading, a time
            that does not read, an end before its start, an empty role or name, too
            many rows).
    """
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    try:
        header = next(reader)
    except StopIteration:
        raise RosterError(1, "empty") from None
    columns = [_HEADINGS.get(h.strip().lower(), "") for h in header]
    missing = [c for c in ("start", "end", "role", "name") if c not in columns]
    if missing:
        raise RosterError(1, "columns", ",".join(missing))
    shifts: list[Shift] = []
    for line, row in enumerate(reader, start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(shifts) >= MAX_ROWS:
            raise RosterError(line, "rows", str(MAX_ROWS))
        cells = {col: (row[i].strip() if i < len(row) else "")
                 for i, col in enumerate(columns) if col}
        start, end = _time(cells["start"], tz, line, "start"), _time(cells["end"], tz, line, "end")
        if end <= start:
            raise RosterError(line, "order")
        role = ROLE_ALIASES.get(cells["role"], cells["role"])
        if not role or not cells["name"]:
            raise RosterError(line, "missing")
        shifts.append(Shift(start, end, role, cells["name"], cells.get("phone", "")))
    return shifts


def _time(text: str, tz: tzinfo, line: int, column: str) -> float:
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise RosterError(line, "time", text) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=tz)
    return when.timestamp()
