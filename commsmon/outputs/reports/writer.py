"""Count and write: a period's report or a drill's record, from a store, to the files
asked for (the CLI and the console's reports page)."""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Sequence
from pathlib import Path

from commsmon.config.settings import Settings
from commsmon.core.model import Inventory
from commsmon.operations.drills import record_of
from commsmon.outputs.reports.document import (
    drill_document,
    drill_html,
    report_html,
    write_pdf,
)
from commsmon.outputs.reports.figures import Report, count
from commsmon.outputs.reports.xlsx import write_sections_xlsx, write_xlsx
from commsmon.outputs.wording import Wording
from commsmon.state.store import Store

__all__ = ["count_report", "write_drill", "write_report"]


def count_report(store: Store, settings: Settings, inventory: Inventory, period: str,
                 site: str | None, w: Wording, now: float | None = None) -> Report:
    """The figures of ``period`` (every site, or ``site``) by the configuration's
    maintenance windows, drill expectations and kit standard, as of ``now`` (epoch
    seconds; ``None``: the daemon's last alive note).

    Raises:
        ValueError: the period does not read, or the site is unknown.
    """
    return count(store, inventory, period, w.tz, settings.alerting.config_silences(),
                 site, settings.drills.expectations(),
                 (settings.kit_standard.kinds, settings.kit_standard.keeper), now)


def write_report(store: Store, settings: Settings, inventory: Inventory, period: str,
                 site: str | None, w: Wording, formats: Sequence[str],
                 out: Path, now: float | None = None) -> list[tuple[Path, str]]:
    """Write the report of ``period`` in ``formats`` (``xlsx``, ``pdf``, ``html``) under ``out``;
    (path, SHA-256) of each file.

    Raises:
        ValueError: the period does not read, or the site is unknown.
        FileNotFoundError: the CJK font is missing (PDF).
    """
    report = count_report(store, settings, inventory, period, site, w, now)
    stem = out / f"commsmon-report-{period}{'-' + site if site else ''}"
    written = []
    if "xlsx" in formats:
        path = stem.with_suffix(".xlsx")
        written.append((path, write_xlsx(report, inventory, w, path)))
    if "pdf" in formats or "html" in formats:
        html = report_html(report, inventory, w, settings.district)
        written += _documents(html, stem, formats)
    return written


def write_drill(store: Store, settings: Settings, inventory: Inventory, drill_id: str,
                w: Wording, formats: Sequence[str], out: Path, now: float | None = None
                ) -> list[tuple[Path, str]]:
    """Write drill ``drill_id``'s record in ``formats`` under ``out``; (path, SHA-256)
    of each file.

    Raises:
        KeyError: no such drill in the store.
    """
    found = store.drills(0.0, math.inf, drill_id)
    if not found:
        raise KeyError(f"no drill {drill_id!r} in the history")
    drill, seen = found[0]
    record = record_of(drill, seen, store, inventory, settings.drills.expectations(),
                       time.time() if now is None else now)
    stem = out / f"commsmon-drill-{drill_id}"
    written = []
    if "xlsx" in formats:
        title, _, plan, sections = drill_document(record, inventory, w, settings.district)
        path = stem.with_suffix(".xlsx")
        written.append((path, write_sections_xlsx(title, plan, sections, path)))
    if "pdf" in formats or "html" in formats:
        written += _documents(drill_html(record, inventory, w, settings.district), stem,
                              formats)
    return written


def _documents(html: str, stem: Path, formats: Sequence[str]) -> list[tuple[Path, str]]:
    """The document as PDF and/or HTML, as asked."""
    out = []
    if "pdf" in formats:
        path = stem.with_suffix(".pdf")
        out.append((path, write_pdf(html, path)))
    if "html" in formats:
        path = stem.with_suffix(".html")
        path.write_text(html, encoding="utf-8")
        out.append((path, hashlib.sha256(html.encode()).hexdigest()))
    return out
