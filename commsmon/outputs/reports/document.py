"""A report (or a drill's record) as one HTML document in the officer's language — the
console shows it as it is, WeasyPrint prints it to PDF.

Why WeasyPrint, not ReportLab: the document is the console's HTML template, so the page
an officer reads and the PDF the bureau files cannot drift apart; and WeasyPrint draws
Debian's Noto CJK fonts (OpenType CFF in a .ttc) through Pango and HarfBuzz, which
ReportLab's TrueType-only embedding cannot.  The font is named explicitly
(:data:`~commsmon.outputs.reports.charts.CJK_FAMILY`): without it both draw empty boxes.
The PDF's metadata carries the accounting rules' version and the SHA-256 of its figures;
the file's own SHA-256 is returned (a file cannot hold its own digest).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import jinja2

from commsmon.core.accounting import Availability
from commsmon.core.drills import DRILL_KINDS, DrillRecord
from commsmon.core.model import Inventory
from commsmon.core.readiness import VIEWS
from commsmon.outputs.reports import charts
from commsmon.outputs.reports.figures import Report
from commsmon.outputs.reports.rules import rules_text
from commsmon.outputs.wording import Wording

__all__ = ["Cell", "Section", "drill_document", "drill_html", "report_html", "write_pdf"]

_ENV = jinja2.Environment(loader=jinja2.PackageLoader("commsmon.outputs.reports", "templates"),
                          autoescape=jinja2.select_autoescape(default=True))
H = 3600.0


@dataclass(frozen=True, slots=True)
class Cell:
    """A table cell: its words and its class (``bad``, ``good``, ``unknown``, ``n``)."""

    text: str
    cls: str = ""


@dataclass
class Section:
    """A heading, an optional chart (SVG) and note, and a table."""

    title: str
    columns: list[str] = field(default_factory=list)
    rows: list[list[Cell]] = field(default_factory=list)
    chart: str = ""
    note: str = ""


def _pct(ratio: float | None, w: Wording) -> Cell:
    if ratio is None:
        return Cell(w._("unknown"), "unknown")
    return Cell(f"{ratio * 100:.2f}%", "n" if ratio >= 0.99 else "n bad")


def _hours(seconds: float) -> Cell:
    return Cell(f"{seconds / H:.2f}", "n")  # a drill of 20 minutes is 0.33, not 0.0


def _when(epoch: float, w: Wording) -> str:
    return datetime.fromtimestamp(epoch, w.tz).strftime("%Y-%m-%d %H:%M")


def _availability_row(a: Availability, w: Wording) -> list[Cell]:
    return [_pct(a.ratio, w), _hours(a.degraded), _hours(a.down), _hours(a.unknown),
            _hours(a.cut_off), _hours(a.maintenance)]


def report_html(report: Report, inventory: Inventory, w: Wording, district: str = "") -> str:
    """The report as a standalone HTML document (the PDF's source and the console's
    page), charts inline.

    Raises:
        FileNotFoundError: the CJK font is not installed (charts).
    """
    name = {s: inventory.sites[s].name for s in inventory.sites}
    villages = [s for s in report.sites if inventory.sites[s].role == "village"]
    avail_cols = [w._("Availability %"), w._("Degraded (h)"), w._("Down (h)"),
                  w._("Unknown (h)"), w._("Monitor cut off (h)"), w._("Maintenance and drills (h)")]
    sections = []

    reach = Section(w._("Villages reachable"), [w._("Village"), *avail_cols],
                    [[Cell(name[s]), *_availability_row(report.sites[s], w)]
                     for s in report.sites])
    by_site: dict[str, dict[str, float | None]] = {}
    for (s, c), a in report.channels.items():
        by_site.setdefault(s, {})[c] = a.ratio
    if by_site:
        reach.chart = charts.availability_chart(
            [(name[s], by_site[s]) for s in by_site],
            {c: w.channel(c) for c in ("pdt370", "satellite", "public", "beidou")},
            w._("Availability of each channel"))
    reach.note = w._("Unknown and cut-off time is never counted as up.")
    sections.append(reach)

    scenarios = [v for v in VIEWS if v != "now"]
    grid = [[report.readiness[s, v].ratio if (s, v) in report.readiness else None
             for v in scenarios] for s in villages]
    ready = Section(w._("Readiness"))  # the chart writes each figure in
    if villages:
        ready.chart = charts.heatmap([name[s] for s in villages],
                                     [w.scenario_heading(v) for v in scenarios], grid,
                                     w._("Readiness % over the period"), w._("unknown"))
    sections.append(ready)

    out = Section(w._("Outage record"), [w._("Village"), w._("Outage"), w._("Began"), w._("Ended"),
                                   w._("Hours")],
                  [[Cell(name[o.site]), Cell(w.outage(o.kind)), Cell(_when(o.start, w)),
                    Cell(_when(o.end, w) if o.end is not None else w._("ongoing"),
                         "" if o.end is not None else "bad"),
                    _hours(o.seconds(report.until))] for o in report.outages])
    if report.outages:
        spans: dict[str, list[tuple[float, float, str]]] = {}
        for o in report.outages:
            spans.setdefault(o.site, []).append(
                (max(o.start, report.start), min(o.end or report.until, report.end), o.kind))
        out.chart = charts.outage_timeline(
            [(name[s], spans[s]) for s in name if s in spans], report.start, report.end,
            {k: w.outage(k) for k in ("power", "network", "road")}, w._("Outage timeline"),
            w._("days from {date}").format(date=_when(report.start, w)[:10]))
    sections.append(out)

    sections.append(Section(
        w._("Test calls"), [w._("Village"), w._("Device"), w._("On time"), w._("Due"),
                            w._("Compliance %")],
        [[Cell(name[inventory.devices[d].site]), Cell(inventory.devices[d].name or d),
          Cell(str(c.on_time), "n"), Cell(str(c.due), "n"), _pct(c.ratio, w)]
         for d, c in report.checkins.items()]))

    heads = [*report.kit_kinds, "keeper"]
    sections.append(Section(
        w._("Kit standard"), [w._("Village"), *(w.kit_heading(k) for k in heads)],
        [[Cell(name[s]), *(Cell(w.kit_state(got.get(k, "")),
                                "good" if got.get(k) in ("working", "present") else "bad")
                           for k in heads if k in got)]
         for s, got in report.kit.items()]))

    sections.append(Section(
        w._("Drills"), [w._("Drill"), w._("Village"), w._("Scenario"), w._("Began"),
                        w._("Minutes"), w._("Minutes to first contact"),
                        w._("Now: hours reachable at the end"), w._("Result")],
        [_drill_row(d, name, w) for d in report.drills],
        note=w._("Drills are set apart: their alerts and outages are not in the real "
                 "figures.")))

    minutes = [seconds / 60 for _, seconds in report.acks]
    acks = {s: [sec / 60 for site, sec in report.acks if site == s] for s in report.sites}
    sections.append(Section(
        w._("Alerts and acknowledgements"),
        [w._("Village"), w._("Alerts"), w._("Acknowledged"), w._("Median minutes"),
         w._("Longest minutes")],
        [[Cell(name[s]), Cell(str(report.alerts.get(s, 0)), "n"), Cell(str(len(acks[s])), "n"),
          Cell(f"{statistics.median(acks[s]):.1f}" if acks[s] else "—", "n"),
          Cell(f"{max(acks[s]):.1f}" if acks[s] else "—", "n")]
         for s in report.sites if report.alerts.get(s) or acks[s]]))

    apart = [[Cell(w._("Maintenance")), Cell(x.label), Cell(_when(x.start, w)),
              Cell(_when(x.end, w))] for x in report.maintenance]
    apart += [[Cell(w._("Drill")), Cell(d.drill.id), Cell(_when(d.drill.start, w)),
               Cell(_when(d.drill.start + d.duration, w))] for d in report.drills]
    apart += [[Cell(w._("Monitor not running")), Cell(""), Cell(_when(x.start, w)),
               Cell(_when(x.end, w))] for x in report.gaps]
    sections.append(Section(w._("Set apart"), [w._("What"), w._("Why"), w._("Began"),
                                               w._("Ended")], apart))

    judged = {v: [report.readiness[s, v] for s in villages if (s, v) in report.readiness]
              for v in scenarios}
    summary = [(w._("Villages"), str(len(villages)))]
    for v in scenarios:
        ready_s = sum(r.ready for r in judged[v])
        total = sum(r.judged for r in judged[v])
        summary.append((w._("Readiness ({scenario})").format(scenario=w.scenario_heading(v)),
                        _pct(ready_s / total if total else None, w).text))
    summary += [
        (w._("Outages in the period"), str(len(report.outages))),
        (w._("Drills"), f"{sum(d.passed for d in report.drills)} / {len(report.drills)} "
         + w._("passed")),
        (w._("Median minutes to acknowledge"),
         f"{statistics.median(minutes):.1f}" if minutes else "—"),
    ]
    heading = w._("Emergency communications report")
    title = f"{district}{heading} {report.period}"
    subtitle = w._("{start} to {end}, rules {rules}").format(
        start=_when(report.start, w), end=_when(report.end, w), rules=report.rules)
    if report.until < report.end:
        subtitle += w.clause_sep + w._("counted to {until}").format(
            until=_when(report.until, w))
    return _render(w, title, subtitle, summary, sections, report.rules)


def _drill_row(d: DrillRecord, name: dict[str, str], w: Wording) -> list[Cell]:
    end = d.at_end
    lasts = "—" if end is None else "∞" if math.isinf(end.now_lower) \
        else f"{end.now_lower:.1f}"
    return [Cell(d.drill.id), Cell(name.get(d.drill.site, d.drill.site)),
            Cell(w.scenario_heading(d.drill.scenario)), Cell(_when(d.drill.start, w)),
            Cell(f"{d.duration / 60:.0f}", "n"),
            Cell(f"{d.first_contact / 60:.1f}" if d.first_contact is not None else "—", "n"),
            Cell(lasts, "n"),
            Cell(w._("in progress") if d.drill.stopped is None else
                 w._("passed") if d.passed else w._("not passed"),
                 "" if d.drill.stopped is None else "good" if d.passed else "bad")]


def drill_html(record: DrillRecord, inventory: Inventory, w: Wording,
               district: str = "") -> str:
    """A drill's record as a standalone HTML document (the PDF's source)."""
    return _render(w, *drill_document(record, inventory, w, district), "")


def drill_document(record: DrillRecord, inventory: Inventory, w: Wording, district: str = ""
                   ) -> tuple[str, str, list[tuple[str, str]], list[Section]]:
    """A drill's record as (title, subtitle, the plan as label/value pairs, sections)."""
    d = record.drill
    site = inventory.sites.get(d.site)
    where = site.name if site else d.site
    device = {k: (v.name or k) for k, v in inventory.devices.items()}

    def reading(k: str) -> str:
        return w._("state") if k == "state" else w.reading(k)

    def value(k: str, v: str) -> str:
        if k == "state":
            return w.state(v) if v else "—"
        return {"True": w._("yes"), "False": w._("no"), "": "—"}.get(v) or w.value(v)

    place = w._("Village") if site is None or site.role == "village" else w._("Site")
    plan = [(place, where), (w._("Scenario"), w.scenario_heading(d.scenario)),
            (w._("Began"), _when(d.start, w)),
            (w._("Ended"), _when(d.stopped, w) if d.stopped is not None else w._("ongoing")),
            (w._("Started by"), d.by), (w._("Note"), d.note or "—"),
            (w._("Result"), w._("passed") if record.passed else w._("not passed"))]
    checks = Section(w._("Expectations"), [w._("Check"), w._("Expected"), w._("Actual"),
                                           w._("Result")])
    for c in record.checks:
        if c.name == "played":
            label = w._("The scenario's outages seen")
            expected = w.list_sep.join(w.outage(k) for k in DRILL_KINDS[d.scenario])
            actual = w.list_sep.join(w.outage(k) for k in record.outages) or w._("none")
        elif c.name == "first_contact":
            label = w._("First contact within")
            expected = f"{c.expected / 60:.0f} " + w._("min")
            actual = "—" if c.actual is None else f"{c.actual / 60:.1f} " + w._("min")
        else:
            label = w._("Now: reachable for at least")
            expected = f"{c.expected:.0f} " + w._("hours")
            actual = "—" if c.actual is None else "∞" if math.isinf(c.actual) \
                else f"{c.actual:.1f} " + w._("hours")
        checks.rows.append([Cell(label), Cell(expected, "n"), Cell(actual, "n"),
                            Cell(w._("passed") if c.passed else w._("not passed"),
                                 "good" if c.passed else "bad")])
    kit = Section(w._("What the kit did"), [w._("After"), w._("Device"), w._("Reading"),
                                            w._("Was"), w._("Became")],
                  [[Cell(_offset(k.offset, w)), Cell(device.get(k.device, k.device)),
                    Cell(reading(k.reading)), Cell(value(k.reading, k.old)),
                    Cell(value(k.reading, k.new))] for k in record.kit])
    words = {"outage_start": w._("outage began"), "outage_end": w._("outage ended"),
             "alert_firing": w._("alert fired"), "alert_resolved": w._("alert resolved"),
             "escalation_step": w._("escalated to")}
    marks = Section(w._("Outages and alerts"), [w._("After"), w._("What"), w._("Which")],
                    [[Cell(_offset(at, w)), Cell(words.get(kind, kind)),
                      Cell(w.outage(subject) if kind.startswith("outage") else
                           w.role(subject) if kind == "escalation_step" else w.rule(subject))]
                     for at, kind, subject in record.marks])
    calls = Section(w._("Test calls during the drill"),
                    [w._("After"), w._("Device"), w._("Channel"), w._("Caller"), w._("Result")],
                    [[Cell(_offset(c.offset, w)), Cell(device.get(c.device, c.device)),
                      Cell(w.channel(c.channel) if c.channel else "—"), Cell(c.by),
                      Cell(w._("ok") if c.ok else w._("failed"), "good" if c.ok else "bad")]
                     for c in record.contacts])
    seen = Section(w._("At the start and at the end"),
                   [w._("When"), w._("Now: hours reachable"),
                    w.scenario_heading(d.scenario), w._("Channels then")])
    for label, f in ((w._("Start"), record.at_start), (w._("End"), record.at_end)):
        if f is None:
            continue
        hours = "∞" if math.isinf(f.now_lower) else f"{f.now_lower:.1f}"
        seen.rows.append([Cell(f"{label} {_when(f.at, w)}"), Cell(hours, "n"),
                          Cell(_verdict(f.scenario_ready, w)),
                          Cell(w.list_sep.join(f"{w.channel(c)} {w.state(s)}"
                                               for c, s in f.channels.items()))])
    burn = Section(w._("Fuel and battery used"), [w._("Device"), w._("Per hour")],
                   [[Cell(device.get(k, k)), Cell(f"{v * 100:.1f}%", "n")]
                    for k, v in record.burn.items()])
    heading = w._("Drill record")
    title = f"{district}{heading} {d.id}"
    return title, where, plan, [checks, kit, marks, calls, seen, burn]


def _verdict(verdict: str, w: Wording) -> str:
    return {"ready": w._("ready"), "not_ready": w._("NOT ready")}.get(verdict, w._("unknown"))


def _offset(seconds: float, w: Wording) -> str:
    """Time since the drill began as officers read it: ``+6 分 05 秒``, ``+1 小时 02 分``."""
    s = round(seconds)
    if s >= 3600:
        return "+" + w._("{h} h {m:02d} min").format(h=s // 3600, m=s % 3600 // 60)
    return "+" + w._("{m} min {s:02d} s").format(m=s // 60, s=s % 60)


def _render(w: Wording, title: str, subtitle: str, summary: Sequence[tuple[str, str]],
            sections: list[Section], rules: str) -> str:
    figures = json.dumps([[s.title, [[c.text for c in row] for row in s.rows]]
                          for s in sections] + [list(summary)], ensure_ascii=False)
    return _ENV.get_template("report.html").render(
        lang="zh-CN" if w.language == "zh" else "en", title=title, subtitle=subtitle,
        summary=summary, sections=sections, empty_text=w._("none"), font=charts.CJK_FAMILY,
        rules=rules, rules_heading=w._("Accounting rules") if rules else "",
        rules_text=rules_text(w.language) if rules else "",
        figures_label=w._("Figures"),
        figures_sha256=hashlib.sha256(figures.encode()).hexdigest())


def write_pdf(html: str, path: Path) -> str:
    """Print ``html`` to a PDF at ``path``; the file's SHA-256 (hex).

    Raises:
        OSError: the file cannot be written.
    """
    from weasyprint import HTML  # slow to import: only when a PDF is asked for

    for name in ("weasyprint", "fontTools"):  # its progress is not the operator's news
        logging.getLogger(name).setLevel(logging.WARNING)
    HTML(string=html).write_pdf(path, custom_metadata=True)
    return hashlib.sha256(path.read_bytes()).hexdigest()
