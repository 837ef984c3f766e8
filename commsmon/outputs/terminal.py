"""A terminal table of villages x scenarios, from the API's JSON (``commsmon status``)."""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["render_status"]

SCENARIO_ORDER = ("network", "road", "power", "all")


def _width(text: str) -> int:
    """Columns a string takes on a terminal (CJK characters take two)."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _pad(text: str, width: int) -> str:
    return text + " " * max(0, width - _width(text))


def _cell(scenario: Mapping[str, Any]) -> str:
    if scenario.get("unbounded"):
        hours = "∞"
    elif scenario.get("endurance_hours") is None:
        hours = "?"
    else:
        hours = f"{scenario['endurance_hours']:.0f}h"
    return f"{'ready' if scenario['ready'] else 'NOT'} {hours}"


def render_status(sites: Sequence[Mapping[str, Any]], reasons: bool = False) -> str:
    """One row per site: state, reachability, each scenario's readiness and endurance,
    active outages; with ``reasons``, each unready scenario's reason below its row."""
    header = ["SITE", "NAME", "TOWN", "STATE", *(s.upper() for s in SCENARIO_ORDER), "OUTAGES"]
    rows = []
    for site in sites:
        scenarios = site.get("scenarios", {})
        rows.append([
            site["id"], site["name"], site.get("town", ""), site["state"],
            *(_cell(scenarios[s]) if s in scenarios else "-" for s in SCENARIO_ORDER),
            ",".join(site.get("outages", {})) or "-",
        ])
    widths = [max(_width(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(_pad(c, w) for c, w in zip(header, widths, strict=True)).rstrip()]
    for site, row in zip(sites, rows, strict=True):
        lines.append("  ".join(_pad(c, w) for c, w in zip(row, widths, strict=True)).rstrip())
        if reasons:
            for name in SCENARIO_ORDER:
                reason = site.get("scenarios", {}).get(name, {}).get("reason")
                if reason:
                    lines.append(f"    {reason}")
            for kind, outage in site.get("outages", {}).items():
                lines.append(f"    outage {kind} since {outage['since']}: "
                             + "; ".join(outage["evidence"]))
    return "\n".join(lines)
