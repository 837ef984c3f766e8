"""The human text of a notification, in Chinese or English, and fitting it into a byte budget.

A message reads, top to bottom: one title line (severity, village, town, what
happened), the village's context (surviving and lost channels, while an
outage bears on it how long it stays reachable and what gives out first,
readiness per scenario, active outages), one line per alert (firing ones
newest first, then the resolved ones, each with its facts and arithmetic) and
the folded alerts (a count, then one line each).  Every word comes from the
shared renderer (:mod:`commsmon.outputs.wording`) in the receiver's language.

Robots cap messages in UTF-8 *bytes*, not characters (a Chinese character is
3 bytes, an emoji 4), so :func:`fit` drops whole detail lines from the end —
folded alerts first, then the oldest alert lines, then context — and says how
many it dropped; only when the title alone is too long is it cut, and then on a
character boundary.

Times are shown in the district's time zone (default ``Asia/Shanghai``):
``HH:MM`` on the notification's own day, else ``MM-DD HH:MM``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import tzinfo

from commsmon.core.alerting import SEVERITIES, Alert, Notification, Severity
from commsmon.core.endurance import Endurance
from commsmon.core.facts import Fact
from commsmon.outputs.wording import DEFAULT_TZ, Language, Wording
from commsmon.outputs.wording.catalogs import N_

__all__ = [
    "DEFAULT_TZ",
    "Language",
    "Line",
    "Rendering",
    "alert_description",
    "alert_summary",
    "fit",
    "format_time",
    "place",
    "render_markdown",
    "render_text",
    "title",
    "truncate_utf8",
]

# Drop ranks: a higher rank is dropped first, from the end of the message; the
# escalation line and the ack link never before the context.
LINK, CONTEXT, ALERT, FOLDED = -1, 0, 1, 2

_SEVERITY = {"critical": N_("CRITICAL"), "warning": N_("WARNING"), "info": N_("INFO")}
# Which alert names the title when several fire: the worst, by rule.
_RULE_ORDER = (
    "monitor_cut_off",
    "site_isolated",
    "countdown",
    "endurance_low",
    "outage_active",
    "site_channel_lost",
    "device_down",
    "device_lost",
    "scenario_not_ready",
    "checkin_stale",
    "trap_path_down",
    "device_degraded",
    "monitor_fault",
)


@dataclass(frozen=True, slots=True)
class Line:
    """One detail line of a message.

    Attributes:
        text: the line as shown.
        rank: drop order: ``2`` folded alerts go first, then ``1`` alert lines,
            then ``0`` context; within a rank, from the end.
    """

    text: str
    rank: int


@dataclass(frozen=True, slots=True)
class Rendering:
    """A message in one format, as lines that :func:`fit` can drop.

    Attributes:
        head: the first line (title), never dropped, cut only as a last
            resort; ``""`` for none (a Feishu card carries its title apart).
        lines: detail lines, in display order.
        separator: between detail lines.
        head_separator: between the head and the first detail line.
        language: ``zh`` or ``en`` (for the "lines omitted" line).
        bullet: put before the "lines omitted" line, as before the others.
    """

    head: str
    lines: tuple[Line, ...]
    separator: str = "\n"
    head_separator: str = "\n"
    language: Language = "zh"
    bullet: str = ""

    @property
    def text(self) -> str:
        """The whole message, nothing dropped."""
        return _join(self, [line.text for line in self.lines], "")


def format_time(epoch: float, tz: tzinfo = DEFAULT_TZ) -> str:
    """``MM-DD HH:MM`` of epoch seconds in ``tz``."""
    return Wording("en", tz).time(epoch)


def _clean(text: str) -> str:
    """One line of valid UTF-8: newlines folded, lone surrogates replaced."""
    text = text.encode("utf-8", "replace").decode("utf-8")
    return " ".join(text.splitlines()).strip()


def alert_summary(alert: Alert, language: Language, tz: tzinfo = DEFAULT_TZ,
                  now: float | None = None) -> str:
    """What happened, in a few words ("天通卫星电话 离线", "PDT 370 MHz channel lost");
    times against ``now`` (epoch seconds: the notification's)."""
    w = Wording(language, tz, now)
    return _clean(w.tidy(_summary(w, alert)))


def alert_description(alert: Alert, language: Language, tz: tzinfo = DEFAULT_TZ,
                      now: float | None = None, *, detail: bool = True) -> str:
    """One line: what failed, why (the facts and the arithmetic, unless ``detail`` is
    false), since when (and until when, once resolved); times against ``now`` (the
    notification's), ``HH:MM`` that day."""
    w = Wording(language, tz, now)
    what = _summary(w, alert)
    why = _detail(w, alert, alert.labels.get("site")) if detail else ""
    if why:
        what = f"{what}{w.paren(why)}"
    since = w.time(alert.starts_at)
    if alert.ends_at is not None:
        text = w._("resolved: {what}, {since} to {until}").format(
            what=what, since=since, until=w.time(alert.ends_at))
    else:
        text = w._("{what}, since {since}").format(what=what, since=since)
    return _clean(w.tidy(text))


# Rules whose facts are the site's "now" verdict, which the context line already tells.
_NOW_RULES = ("endurance_low", "countdown")


def _summary(w: Wording, alert: Alert) -> str:
    """What happened, in a few words (``天通卫星电话 离线``, ``正在断电``, ``预计可维持至
    15:40，约 5.9 小时：不足 6 小时``)."""
    rule = alert.rule
    device = next((f for f in alert.facts if f.code == "device"), None)
    name = w.label(device) if device is not None else alert.labels.get("device", "")
    verdict = next((f for f in alert.facts if f.code == "verdict"), None)
    if rule == "site_isolated":
        return w._("isolated: no channel works")
    if rule == "site_channel_lost":
        return w._("{channel} channel lost").format(
            channel=w.channel(alert.labels.get("channel", "")))
    if rule == "device_down":
        return w._("{device} down").format(device=name)
    if rule == "device_lost":
        return w._("{device} cannot carry its channel").format(device=name)
    if rule == "device_degraded":
        return w._("{device} needs attention").format(device=name)
    if rule == "checkin_stale":
        return w._("{device} test call overdue").format(device=name)
    if rule == "trap_path_down":
        return w._("trap path down: its kit's traps no longer arrive")
    if rule == "scenario_not_ready":
        return w._("not ready for a {scenario}").format(
            scenario=w.scenario(alert.labels.get("scenario", "")))
    if rule == "outage_active":
        return w._("{outage} in progress").format(
            outage=w.outage(alert.labels.get("outage", "")))
    if rule in _NOW_RULES:
        if verdict is not None:
            return _countdown_summary(w, verdict, alert)
        # Kept by a version whose alerts had no verdict: say what the rule means.
        if rule == "countdown":
            return w._("reachable for under {hours} with the outages active now").format(
                hours=w.hours(float(alert.labels.get("hours", "0") or 0)))
        return w._("would not last its target with the outages active now")
    if rule == "monitor_cut_off":
        return w._("monitor cut off from the villages (the fault is likely at the "
                      "monitor)")
    if rule == "monitor_fault":
        return w.fact(alert.facts[0]) if alert.facts else w._("the monitor has a fault")
    return rule

def _countdown_summary(w: Wording, v: Fact, alert: Alert) -> str:
    e = Endurance.from_fact(v.facts("endurance")[0]) if v.facts("endurance") \
        else Endurance(0.0, math.inf)
    target = v.number("target_hours") or 0
    until = v.number("until")
    if e.exact and until is not None:
        text = w._("reachable until about {time}, {hours} left").format(
            time=w.time(until), hours=w.hours(e.lower))
    elif e.lost:
        text = w._("no channel works now")
    else:
        text = w._("endurance unknown")
        if e.lower > 0:
            text = w._("at least {hours}").format(hours=w.hours(e.lower))
    if alert.rule == "countdown":
        return w._("{what}: under {hours}").format(
            what=text, hours=w.hours(float(alert.labels.get("hours", "0") or 0)))
    return w._("would not last {target}: {what}").format(
        target=w.hours(target), what=text)

def _detail(w: Wording, alert: Alert, here: str | None) -> str:
    """The facts behind an alert, in a line (the why, the arithmetic); ``here`` is the
    alert's site."""
    rule = alert.rule
    if rule == "monitor_fault":  # its summary is its one fact already
        return ""
    parts = []
    for f in alert.facts:
        if f.code == "device":  # a device alert's summary names the device already
            parts.append(w.fact(f, here) if rule == "site_channel_lost"
                         else w.facts(f.facts("causes"), here))
        elif f.code == "verdict":
            parts.append(w.verdict(f, here))
        elif f.code == "outage":
            parts.append(w.facts(f.facts("evidence"), here))
        elif f.code == "channel_state":
            if rule == "site_isolated":
                parts.append(w.fact(f, here))
        elif f.code != "countdown":
            parts.append(w.fact(f, here))
    sep = w.list_sep if rule == "site_isolated" else w.clause_sep
    return sep.join(p for p in parts if p)


def _headline(alerts: Sequence[Alert]) -> Alert | None:
    def worst(a: Alert) -> tuple[int, int, float]:
        sev = SEVERITIES.index(a.severity) if a.severity in SEVERITIES else len(SEVERITIES)
        rule = _RULE_ORDER.index(a.rule) if a.rule in _RULE_ORDER else len(_RULE_ORDER)
        return sev, rule, a.starts_at

    return min(alerts, key=worst) if alerts else None


def _shown(alerts: Sequence[Alert]) -> list[Alert]:
    """``alerts`` less the countdowns a lower one of the same site supersedes (under
    6 h says all that under 24 h did)."""
    lowest: dict[str, float] = {}
    for a in alerts:
        if a.rule == "countdown" and not a.resolved:
            hours = float(a.labels.get("hours", "inf") or "inf")
            site = a.labels.get("site", "")
            lowest[site] = min(hours, lowest.get(site, hours))
    return [a for a in alerts if not (
        a.rule == "countdown" and not a.resolved
        and float(a.labels.get("hours", "inf") or "inf") > lowest[a.labels.get("site", "")])]


def place(notification: Notification) -> str:
    """Where it happens: ``龙潭镇 石门村`` / ``Shimen (Longtan)``, or the monitor."""
    site = notification.site
    if site is None:
        return Wording(notification.language)._("commsmon monitor")
    name, town = _clean(site.name), _clean(site.town)
    if notification.language == "zh":
        return f"{town} {name}" if town else name
    return f"{name} ({town})" if town else name


def title(notification: Notification, tz: tzinfo = DEFAULT_TZ) -> str:
    """The title line: ``【严重】龙潭镇 石门村：失联，无可用通信通道``.

    Severity (or "resolved"), the village and its town (or the monitor), and
    what happened: the worst firing alert, with a count of the others.
    """
    w = Wording(notification.language, tz, notification.created_at)
    if notification.kind == "digest" and notification.escalation is not None:
        n = len(notification.escalation.texts("titles"))
        badge = w._("STILL FIRING")
        badge = f"【{badge}】" if w.language == "zh" else f"[{badge}] "
        return badge + w._n("{n} alert group still firing, told together",
                            "{n} alert groups still firing, told together", n).format(n=n)
    firing = _shown([a for a in notification.alerts if not a.resolved])
    pool = firing or list(notification.alerts)
    if notification.status == "resolved" or not firing:
        badge = w._("RESOLVED")
    else:
        severity: Severity = notification.severity
        badge = w._(_SEVERITY.get(severity, severity))
    badge = f"【{badge}】" if w.language == "zh" else f"[{badge}] "
    if notification.kind == "escalation":
        word = w._("ESCALATION")
        badge = (f"【{word}】" if w.language == "zh" else f"[{word}] ") + badge
    if notification.drill:  # first of all: nobody may take a drill for the real thing
        word = w._("DRILL")
        badge = (f"【{word}】" if w.language == "zh" else f"[{word}] ") + badge
    top = _headline(pool)
    what = _clean(w.tidy(_summary(w, top))) if top is not None \
        else _clean(notification.group)
    if len(pool) > 1:
        what = f"{what} " + w._n("(+{n} more)", "(+{n} more)", len(pool) - 1).format(
            n=len(pool) - 1)
    return f"{badge}{place(notification)}{w.colon}{what}"


def _context(notification: Notification, w: Wording) -> list[tuple[str, str]]:
    """(label, value) pairs of the site's context (no markup)."""
    site = notification.site
    if site is None:
        return []
    out = []
    if site.channels_up or site.channels_lost:  # a hub (the centre) has none of its own
        up = w.list_sep.join(w.channel(c) for c in site.channels_up) or w._("none")
        out.append((w._("Channels up"), up))
    if site.channels_lost:
        lost = w.list_sep.join(f"{w.channel(c)}{w.paren(w.state(st))}"
                               for c, st in site.channels_lost.items())
        out.append((w._("Channels lost"), lost))
    if site.now is not None:
        out.append((w._("Now"), _clean(w.verdict(site.now, site.id))))
    if site.readiness:
        order = [s for s in ("network", "road", "power", "all") if s in site.readiness]
        order += sorted(s for s in site.readiness if s not in order)
        ready, not_ready = w._("ready"), w._("NOT ready")
        words = [f"{w.scenario(s)} {ready if site.readiness[s] else not_ready}" for s in order]
        out.append((w._("Readiness"), w.list_sep.join(words)))
    if site.outages:
        out.append((w._("Outages"), w.list_sep.join(w.outage(k) for k in site.outages)))
    return out


def _ordered(alerts: Sequence[Alert]) -> list[Alert]:
    """Firing alerts newest first, then resolved ones newest first (oldest last)."""
    firing = sorted((a for a in alerts if not a.resolved), key=lambda a: -a.starts_at)
    resolved = sorted((a for a in alerts if a.resolved), key=lambda a: -(a.ends_at or 0.0))
    return firing + resolved


def _lines(notification: Notification, tz: tzinfo, bullet: str, sub: str, bold: bool,
           link: Callable[[str, str], str] = lambda text, url: f"{text} {url}") -> list[Line]:
    lang: Language = notification.language
    w = Wording(lang, tz, notification.created_at)
    lines = []
    if notification.kind == "digest" and notification.escalation is not None:
        return [Line(f"{bullet}{_clean(t)}", ALERT)
                for t in notification.escalation.texts("titles")]
    if notification.drill:
        drill = w._("Drill {id}: not a real outage").format(id=notification.drill)
        lines.append(Line(f"{bullet}{drill}", LINK))
    if notification.escalation is not None:
        lines.append(Line(f"{bullet}{w.fact(notification.escalation, None)}", LINK))
    for label, value in _context(notification, w):
        value = _clean(value)
        shown = f"**{label}**{w.colon}{value}" if bold else f"{label}{w.colon}{value}"
        lines.append(Line(f"{bullet}{shown}", CONTEXT))
    now = notification.created_at
    told = notification.site is not None and notification.site.now is not None
    for alert in _ordered(_shown(notification.alerts)):
        brief = told and alert.rule in _NOW_RULES
        text = alert_description(alert, lang, tz, now, detail=not brief)
        lines.append(Line(f"{bullet}{text}", ALERT))
    if notification.folded:
        n = len(notification.folded)
        count = w._n("{n} more device alert folded into this one",
                     "{n} more device alerts folded into this one", n).format(n=n)
        lines.append(Line(f"{bullet}{count}", CONTEXT))
        for alert in _ordered(notification.folded):
            lines.append(Line(f"{sub}{alert_description(alert, lang, tz, now)}", FOLDED))
    if notification.ack_url:
        lines.append(Line(f"{bullet}{link(w._('Acknowledge'), notification.ack_url)}", LINK))
    return lines


def render_text(notification: Notification, *, tz: tzinfo = DEFAULT_TZ) -> Rendering:
    """Plain text: the title, then one line per fact (SMS, WeCom/DingTalk ``text``)."""
    return Rendering(
        head=title(notification, tz),
        lines=tuple(_lines(notification, tz, "- ", "  · ", bold=False)),
        language=notification.language,
        bullet="- ",
    )


def render_markdown(
    notification: Notification,
    *,
    tz: tzinfo = DEFAULT_TZ,
    heading: str | None = "#### ",
    prefix: str = "",
) -> Rendering:
    """Markdown (DingTalk/WeCom ``markdown``, Feishu ``lark_md``): a heading, then a list.

    Args:
        notification: what to tell.
        tz: time zone of the times shown.
        heading: markup before the title line; ``None`` leaves the title out
            (for a card whose header carries it).
        prefix: text put before the title (a robot's required keyword).
    """
    head = "" if heading is None else f"{heading}{prefix}{title(notification, tz)}"
    return Rendering(
        head=head,
        lines=tuple(_lines(notification, tz, "- ", "    - ", bold=True,
                           link=lambda text, url: f"[{text}]({url})")),
        head_separator="\n\n",
        language=notification.language,
        bullet="- ",
    )


def _size(text: str) -> int:
    return len(text.encode("utf-8"))


def truncate_utf8(text: str, budget: int, ellipsis: str = "…") -> str:
    """``text`` cut to at most ``budget`` UTF-8 bytes on a character boundary.

    When cut, ``ellipsis`` ends it if there is room for it.
    """
    raw = text.encode("utf-8", "replace")
    if len(raw) <= budget:
        return raw.decode("utf-8")
    if budget <= 0:
        return ""
    mark = ellipsis.encode("utf-8")
    room = budget - len(mark)
    if room < 0:
        mark, room = b"", budget
    # Back off to a character start: UTF-8 continuation bytes are 0b10xxxxxx.
    while room > 0 and (raw[room] & 0xC0) == 0x80:
        room -= 1
    return (raw[:room] + mark).decode("utf-8")


def _join(r: Rendering, kept: Sequence[str], omitted: str) -> str:
    body = r.separator.join([*kept, omitted] if omitted else kept)
    if not r.head:
        return body
    return f"{r.head}{r.head_separator}{body}" if body else r.head


def fit(rendering: Rendering, budget: int) -> str:
    """The rendering in at most ``budget`` UTF-8 bytes.

    Drops detail lines — folded alerts first, then alert lines from the end
    (the oldest), then context — and ends with "… N lines omitted"; if the
    title alone does not fit, it is cut on a character boundary.  Never
    returns more than ``budget`` bytes (``""`` for a budget of 0 or less).
    """
    r = Rendering(
        head=_clean(rendering.head) if rendering.head else "",
        lines=tuple(
            Line(ln.text.encode("utf-8", "replace").decode("utf-8"), ln.rank)
            for ln in rendering.lines
        ),
        separator=rendering.separator,
        head_separator=rendering.head_separator,
        language=rendering.language,
        bullet=rendering.bullet,
    )
    full = r.text
    if _size(full) <= budget:
        return full
    w = Wording(r.language)

    def omitted_line(n: int) -> str:
        return r.bullet + w._n("… {n} line omitted", "… {n} lines omitted", n).format(n=n)

    sizes = [_size(ln.text) for ln in r.lines]
    sep = _size(r.separator)
    head = _size(r.head) + _size(r.head_separator) if r.head else 0
    order = sorted(range(len(r.lines)), key=lambda i: (-r.lines[i].rank, -i))
    keep = [True] * len(r.lines)
    kept_bytes = sum(sizes)
    kept_count = len(sizes)
    for dropped, i in enumerate(order, start=1):
        keep[i] = False
        kept_bytes -= sizes[i]
        kept_count -= 1
        omitted = omitted_line(dropped)
        # detail lines plus the omitted line, with separators between them
        total = head + kept_bytes + _size(omitted) + sep * kept_count
        if total <= budget:
            kept = [ln.text for ln, k in zip(r.lines, keep, strict=True) if k]
            out = _join(r, kept, omitted)
            assert _size(out) <= budget
            return out
    # Nothing but the head (and perhaps the omitted line) can remain.
    omitted = omitted_line(len(r.lines)) if r.lines else ""
    if r.head:
        room = budget - (_size(r.head_separator) + _size(omitted) if omitted else 0)
        if omitted and room >= _size(r.head) // 2:
            return f"{truncate_utf8(r.head, room)}{r.head_separator}{omitted}"
        return truncate_utf8(r.head, budget)
    return truncate_utf8(omitted, budget)
