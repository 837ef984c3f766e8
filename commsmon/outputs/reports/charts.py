"""The report's charts (matplotlib, object API: safe in a worker thread, no pyplot
state), as SVG with its text kept as text in Noto Sans CJK SC — the PDF embeds the
font and ``pdftotext`` reads the village names back.

The font is named explicitly: matplotlib's default (DejaVu Sans) has no CJK glyphs and
draws empty boxes.  Debian's ``fonts-noto-cjk`` installs it at :data:`CJK_FONT`; it
is added to matplotlib's font list on first use, whatever its font cache holds.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Sequence
from pathlib import Path

from matplotlib import font_manager, rcParams
from matplotlib.backends.backend_svg import FigureCanvasSVG
from matplotlib.figure import Figure

__all__ = ["CJK_FAMILY", "CJK_FONT", "availability_chart", "heatmap", "outage_timeline"]

CJK_FONT = Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc")
CJK_FAMILY = "Noto Sans CJK SC"
_COLOURS = {"pdt370": "#1f5fa8", "satellite": "#c47a00", "public": "#4d8a3d",
            "beidou": "#7a4da8"}
_OUTAGE_COLOURS = {"power": "#b8322a", "network": "#c47a00", "road": "#6b5b3e"}
_ready = False


def _setup() -> None:
    """Add the CJK font to matplotlib (once).

    Raises:
        FileNotFoundError: the font is not installed (``apt-get install fonts-noto-cjk``).
    """
    global _ready
    if _ready:
        return
    if not CJK_FONT.is_file():
        raise FileNotFoundError(f"{CJK_FONT}: the reports need Debian's fonts-noto-cjk")
    font_manager.fontManager.addfont(str(CJK_FONT))
    # this process draws only the reports' charts: their settings may be everyone's
    rcParams["font.family"] = [CJK_FAMILY, "DejaVu Sans"]
    rcParams["svg.fonttype"] = "none"  # text stays text (pdftotext reads it back)
    rcParams["svg.hashsalt"] = "commsmon"  # the same figures draw the same file
    _ready = True


def _figure(width: float, height: float) -> Figure:
    _setup()
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasSVG(fig)
    return fig


def _svg(fig: Figure, prefix: str) -> str:
    out = io.StringIO()
    fig.savefig(out, format="svg")
    text = out.getvalue()
    text = text[text.index("<svg"):]  # the XML prologue cannot sit inside HTML
    # several charts in one document: their element ids (text_25 ...) must not collide
    return re.sub(r'(id="|href="#|url\(#)', lambda m: f"{m.group(1)}{prefix}-", text)


def availability_chart(rows: Sequence[tuple[str, dict[str, float | None]]],
                       channel_names: dict[str, str], title: str) -> str:
    """Grouped horizontal bars: per village (``rows``: name, channel -> ratio 0-1 or
    ``None`` when not known), the availability of each channel, in percent."""
    channels = [c for c in _COLOURS if any(c in got for _, got in rows)]
    fig = _figure(7.0, 0.3 * max(len(rows), 1) + 1.2)
    ax = fig.add_subplot()
    height = 0.8 / max(len(channels), 1)
    for i, channel in enumerate(channels):
        ys = [n - 0.4 + height * (i + 0.5) for n in range(len(rows))]
        values = [(got.get(channel) or 0.0) * 100 for _, got in rows]
        ax.barh(ys, values, height=height, color=_COLOURS[channel],
                label=channel_names.get(channel, channel))
    ax.set_yticks(range(len(rows)), [name for name, _ in rows])
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_xlabel("%")
    ax.set_title(title)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=max(len(channels), 1),
              fontsize=8, frameon=False)  # below the bars, never over them
    return _svg(fig, "availability")


def heatmap(rows: Sequence[str], columns: Sequence[str],
            values: Sequence[Sequence[float | None]], title: str, unknown: str) -> str:
    """A grid of ratios 0-1 (``None``: not judged, shown as ``unknown``), each cell
    with its percentage written in."""
    fig = _figure(6.0, 0.3 * max(len(rows), 1) + 1.2)
    ax = fig.add_subplot()
    grid = [[math.nan if v is None else v * 100 for v in row] for row in values]
    # a softened scale: the figures written in stay readable on every colour
    ax.imshow(grid, cmap="RdYlGn", vmin=-40, vmax=140, aspect="auto")
    for r, row in enumerate(values):
        for c, v in enumerate(row):
            ax.text(c, r, unknown if v is None else f"{v * 100:.1f}%", ha="center",
                    va="center", fontsize=7)
    ax.set_xticks(range(len(columns)), list(columns))
    ax.set_yticks(range(len(rows)), list(rows))
    ax.set_title(title)
    return _svg(fig, "readiness")


def outage_timeline(rows: Sequence[tuple[str, Sequence[tuple[float, float, str]]]],
                    start: float, end: float, kinds: dict[str, str], title: str,
                    axis: str) -> str:
    """Per village (``rows``: name, [(from, to, kind)]), its outages as bars across the
    period [start, end) (epoch seconds), days since ``start`` along the axis (``axis``
    names them)."""
    fig = _figure(7.0, 0.3 * max(len(rows), 1) + 1.2)
    ax = fig.add_subplot()
    day = 86400.0
    for n, (_, spans) in enumerate(rows):
        for kind in _OUTAGE_COLOURS:
            bars = [((a - start) / day, max((b - a) / day, 0.05)) for a, b, k in spans
                    if k == kind]
            if bars:
                ax.broken_barh(bars, (n - 0.35, 0.7), color=_OUTAGE_COLOURS[kind])
    ax.set_yticks(range(len(rows)), [name for name, _ in rows])
    ax.invert_yaxis()
    ax.set_xlim(0, (end - start) / day)
    ax.set_xlabel(axis)
    for kind, colour in _OUTAGE_COLOURS.items():
        ax.barh([], [], color=colour, label=kinds.get(kind, kind))
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.15), ncol=len(_OUTAGE_COLOURS),
              fontsize=8, frameon=False)
    ax.set_title(title)
    return _svg(fig, "outages")
