"""A terminal table of sites x scenarios and ``now``, from the API's JSON (``commsmon status``).

The cells and reasons come rendered from the daemon (in the language asked
for); the headings and states here, from the same catalogs.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping, Sequence
from typing import Any

from commsmon.core.readiness import VIEWS
from commsmon.outputs.wording import Language, Wording

__all__ = ["render_status"]


def _width(text: str) -> int:
    """Columns a string takes on a terminal (CJK characters take two)."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _pad(text: str, width: int) -> str:
    return text + " " * max(0, width - _width(text))


def render_status(
    sites: Sequence[Mapping[str, Any]], reasons: bool = False, language: Language = "zh"
) -> str:
    """One row per site: state, each scenario's verdict and endurance, how long it stays
    reachable ``now`` (a clock time while an outage bears on it), active outages; with
    ``reasons``, why, below its row."""
    w = Wording(language)
    header = [w._("SITE"), w._("NAME"), w._("TOWN"), w._("STATE"),
              *(w.scenario_heading(s) for s in VIEWS), w._("OUTAGES")]
    rows = []
    for site in sites:
        scenarios = site.get("scenarios", {})
        outages = site.get("outages", {})
        rows.append([
            site["id"], site["name"], site.get("town", ""),
            site.get("state_text") or w.state(site["state"]),
            *(scenarios[s].get("cell", "?") if s in scenarios else "-" for s in VIEWS),
            w.list_sep.join(w.outage(k) for k in outages) or "-",
        ])
    widths = [max(_width(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(_pad(c, wd) for c, wd in zip(header, widths, strict=True)).rstrip()]
    for site, row in zip(sites, rows, strict=True):
        lines.append("  ".join(_pad(c, wd) for c, wd in zip(row, widths, strict=True)).rstrip())
        if reasons:
            lines.extend(_reasons(site, w))
    return "\n".join(lines)


def _reasons(site: Mapping[str, Any], w: Wording) -> list[str]:
    out = []
    scenarios = site.get("scenarios", {})
    for name in VIEWS:
        reason = scenarios.get(name, {}).get("reason")
        if reason:
            out.append(f"    {w.scenario(name)}{w.colon}{reason}")
    for kind, outage in site.get("outages", {}).items():
        evidence = w.clause_sep.join(outage.get("evidence", []))
        since = outage.get("since", "")
        out.append(f"    {w.outage(kind)} {since}{w.colon}{evidence}")
    return out
