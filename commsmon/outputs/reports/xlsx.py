"""A report as an XLSX workbook (openpyxl): a sheet per section in the officer's
language, numbers as numbers (hours, ratios formatted as percentages), the period and
the rules' version in the header rows of every sheet, and a sheet of the raw spans so
the bureau can recount.  The workbook's metadata carries the SHA-256 of its figures;
the file's own SHA-256 is returned (a file cannot hold its own digest)."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font

from commsmon.core.model import Inventory
from commsmon.outputs.reports.document import Section
from commsmon.outputs.reports.figures import Report
from commsmon.outputs.wording import Wording

__all__ = ["write_sections_xlsx", "write_xlsx"]

H = 3600.0
PERCENT = "0.00%"
HOURS = "0.00"
WHEN = "yyyy-mm-dd hh:mm"


def write_xlsx(report: Report, inventory: Inventory, w: Wording, path: Path) -> str:
    """Write ``report`` to ``path``; the file's SHA-256 (hex).

    Raises:
        OSError: the file cannot be written.
    """
    sheets = _sheets(report, inventory, w)
    figures = json.dumps([[name, rows] for name, _, rows in sheets], ensure_ascii=False,
                         default=str, sort_keys=True)
    # write-only: rows stream to the file (a year's raw spans are 10^5 rows; openpyxl's
    # ordinary sheets find their last row by scanning every cell, quadratic in rows)
    book = Workbook(write_only=True)
    for name, columns, rows in sheets:
        sheet = book.create_sheet(name)
        sheet.append([w._("Period"), report.period, w._("Accounting rules"), report.rules])
        sheet.append([w._("Period starts"), _cell(sheet, _local(report.start, w)),
                      w._("Period ends"), _cell(sheet, _local(report.end, w)),
                      w._("Counted to"), _cell(sheet, _local(report.until, w))])
        sheet.append([])
        sheet.append([_cell(sheet, c, bold=True) for c in columns])
        formats = [PERCENT if str(c).endswith("%") else HOURS for c in columns]
        for row in rows:
            sheet.append([_cell(sheet, v, formats[i]) if isinstance(v, datetime | float)
                          else v for i, v in enumerate(row)])
    book.properties.title = f"commsmon {report.period}"
    book.properties.description = (f"rules {report.rules}; figures sha256 "
                                   f"{hashlib.sha256(figures.encode()).hexdigest()}")
    book.save(path)
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _cell(sheet: Any, value: Any, number_format: str = "", bold: bool = False) -> Any:
    """A cell of a write-only sheet, styled: a time as a time, a float in
    ``number_format``, a heading in bold."""
    cell = WriteOnlyCell(sheet, value=value)
    if isinstance(value, datetime):
        cell.number_format = WHEN
    elif number_format:
        cell.number_format = number_format
    if bold:
        cell.font = Font(bold=True)
    return cell


def _hours(h: float) -> float | str:
    """Hours as a number; unbounded as the sign an officer reads (∞)."""
    return "∞" if math.isinf(h) else h


def _local(epoch: float, w: Wording) -> datetime:
    """A local time Excel shows as it is (no zone)."""
    return datetime.fromtimestamp(epoch, w.tz).replace(tzinfo=None)


def _sheets(report: Report, inventory: Inventory,
            w: Wording) -> list[tuple[str, list[str], list[list[Any]]]]:
    states = [w._("Up (h)"), w._("Degraded (h)"), w._("Down (h)"), w._("Unknown (h)"),
              w._("Monitor cut off (h)"), w._("Maintenance and drills (h)"),
              w._("Not monitored (h)"), w._("Availability %")]

    def row(a: Any) -> list[Any]:
        return [a.up / H, a.degraded / H, a.down / H, a.unknown / H, a.cut_off / H,
                a.maintenance / H, a.not_monitored / H, a.ratio]

    site_name = {s: inventory.sites[s].name for s in inventory.sites}
    devices = [[site_name[inventory.devices[d].site], inventory.devices[d].name, d,
                w.kind(inventory.devices[d].kind), *row(a)] for d, a in report.devices.items()]
    sites = [[site_name[s], s, *row(a)] for s, a in report.sites.items()]
    channels = [[site_name[s], w.channel(c), *row(a)] for (s, c), a in report.channels.items()]
    ready = [[site_name[s], w.scenario_heading(name), r.ready / H, r.judged / H, r.ratio]
             for (s, name), r in report.readiness.items()]
    calls = [[site_name[inventory.devices[d].site], inventory.devices[d].name, c.on_time,
              c.due, c.ratio] for d, c in report.checkins.items()]
    outages = [[site_name[o.site], w.outage(o.kind), _local(o.start, w),
                _local(o.end, w) if o.end is not None else None, o.seconds(report.until) / H,
                w._("yes") if o.end is None else w._("no"), o.drill]
               for o in report.outages + report.drill_outages]
    kit_heads = [*report.kit_kinds, "keeper"] if report.kit else []
    kit = [[site_name[s], *(w.kit_state(got.get(k, "")) for k in kit_heads)]
           for s, got in report.kit.items()]
    drills = [[d.drill.id, site_name[d.drill.site], w.scenario_heading(d.drill.scenario),
               _local(d.drill.start, w), d.duration / 60, d.drill.by,
               d.first_contact / 60 if d.first_contact is not None else None,
               _hours(d.at_end.now_lower) if d.at_end else None,
               w._("passed") if d.passed else w._("not passed")] for d in report.drills]
    acks = [[site_name[s], seconds / 60] for s, seconds in report.acks]
    apart = [[w._("Maintenance"), x.label, _local(x.start, w), _local(x.end, w)]
             for x in report.maintenance] + [
        [w._("Drill"), d.drill.id, _local(d.drill.start, w),
         _local(d.drill.start + d.duration, w)] for d in report.drills] + [
        [w._("Monitor not running"), "", _local(x.start, w), _local(x.end, w)]
        for x in report.gaps]
    raw = [[who, span.state, _local(span.start, w), _local(span.end, w), span.end - span.start]
           for who, span in report.raw]
    return [
        (w._("Villages reachable"), [w._("Village"), w._("Id"), *states], sites),
        (w._("Channels"), [w._("Village"), w._("Channel"), *states], channels),
        (w._("Devices"), [w._("Village"), w._("Device"), w._("Id"), w._("Kind"), *states],
         devices),
        (w._("Readiness"), [w._("Village"), w._("Scenario"), w._("Ready (h)"),
                            w._("Judged (h)"), w._("Readiness %")], ready),
        (w._("Test calls"), [w._("Village"), w._("Device"), w._("On time"), w._("Due"),
                             w._("Compliance %")], calls),
        (w._("Outage record"), [w._("Village"), w._("Outage"), w._("Began"), w._("Ended"),
                          w._("Hours"), w._("Ongoing"), w._("Drill")], outages),
        (w._("Kit standard"), [w._("Village"), *(w.kit_heading(k) for k in kit_heads)], kit),
        (w._("Drills"), [w._("Drill"), w._("Village"), w._("Scenario"), w._("Began"),
                         w._("Minutes"), w._("Started by"), w._("Minutes to first contact"),
                         w._("Now: hours reachable at the end"), w._("Result")], drills),
        (w._("Acknowledgements"), [w._("Village"), w._("Minutes to acknowledge")], acks),
        (w._("Set apart"), [w._("What"), w._("Why"), w._("Began"), w._("Ended")], apart),
        (w._("Raw spans"), [w._("Id"), w._("State"), w._("Began"), w._("Ended"),
                            w._("Seconds")], raw),
    ]


def write_sections_xlsx(title: str, summary: Sequence[tuple[str, str]],
                        sections: Sequence[Section], path: Path) -> str:
    """A document's sections (a drill's record) as a workbook: the summary first, a
    sheet per section, numeric cells as numbers; the file's SHA-256 (hex).

    Raises:
        OSError: the file cannot be written.
    """
    book = Workbook(write_only=True)
    first = book.create_sheet(title[:31].translate(_SHEET))
    first.append([title])
    for label, value in summary:
        first.append([label, value])
    for section in sections:
        sheet = book.create_sheet(section.title[:31].translate(_SHEET))
        sheet.append([_cell(sheet, c, bold=True) for c in section.columns])
        for row in section.rows:
            sheet.append([_number(c.text) if "n" in c.cls.split() else c.text for c in row])
    figures = json.dumps([[s.title, [[c.text for c in r] for r in s.rows]] for s in sections],
                         ensure_ascii=False)
    book.properties.title = title
    book.properties.description = f"figures sha256 {hashlib.sha256(figures.encode()).hexdigest()}"
    book.save(path)
    return hashlib.sha256(path.read_bytes()).hexdigest()


_SHEET = str.maketrans({c: " " for c in "[]:*?/\\"})


def _number(text: str) -> float | str:
    """A figure as a number (``95.20%`` -> 0.952, ``12.5`` -> 12.5); other text as it is."""
    try:
        return float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        return text
