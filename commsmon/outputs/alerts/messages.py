"""The human text of a notification, in Chinese or English, and fitting it into a byte budget.

A message reads, top to bottom: one title line (severity, village, town, what
happened), the village's context (surviving and lost channels, readiness per
scenario, active outages), one line per alert (firing ones newest first, then
the resolved ones) and the folded alerts (a count, then one line each).

Robots cap messages in UTF-8 *bytes*, not characters (a Chinese character is
3 bytes, an emoji 4), so :func:`fit` drops whole detail lines from the end —
folded alerts first, then the oldest alert lines, then context — and says how
many it dropped; only when the title alone is too long is it cut, and then on a
character boundary.

Times are shown as ``MM-DD HH:MM`` in the district's time zone (default
``Asia/Shanghai``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Literal
from zoneinfo import ZoneInfo

from commsmon.core.alerting import SEVERITIES, Alert, Notification, Severity

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

Language = Literal["zh", "en"]

DEFAULT_TZ: tzinfo = ZoneInfo("Asia/Shanghai")

# Drop ranks: a higher rank is dropped first, from the end of the message.
CONTEXT, ALERT, FOLDED = 0, 1, 2

_SEVERITY: Mapping[Language, Mapping[str, str]] = {
    "zh": {"critical": "严重", "warning": "警告", "info": "提示"},
    "en": {"critical": "CRITICAL", "warning": "WARNING", "info": "INFO"},
}
_RESOLVED: Mapping[Language, str] = {"zh": "已恢复", "en": "RESOLVED"}
_CHANNEL: Mapping[Language, Mapping[str, str]] = {
    "zh": {
        "pdt370": "PDT 370M 集群",
        "satellite": "卫星",
        "public": "公网",
        "beidou": "北斗短报文",
    },
    "en": {
        "pdt370": "PDT 370 MHz",
        "satellite": "satellite",
        "public": "public network",
        "beidou": "BeiDou",
    },
}
_SCENARIO: Mapping[Language, Mapping[str, str]] = {
    "zh": {"network": "断网", "road": "断路", "power": "断电", "all": "三断"},
    "en": {"network": "network", "road": "road", "power": "power", "all": "all three"},
}
_OUTAGE: Mapping[Language, Mapping[str, str]] = {
    "zh": {"network": "断网", "road": "断路", "power": "断电"},
    "en": {"network": "network", "road": "road", "power": "power"},
}
_STATE: Mapping[Language, Mapping[str, str]] = {
    "zh": {"down": "中断", "unknown": "未知", "degraded": "异常", "up": "正常"},
    "en": {"down": "down", "unknown": "unknown", "degraded": "degraded", "up": "up"},
}
_WORDS: Mapping[Language, Mapping[str, str]] = {
    "zh": {
        "up": "现存通道",
        "lost": "已断通道",
        "ready": "三断准备",
        "outages": "正在发生",
        "none": "无",
        "is_ready": "就绪",
        "not_ready": "未就绪",
        "sep": "、",
        "colon": "：",
        "monitor": "监控中心",
        "more": "等 {n} 项",
        "folded": "另有 {n} 项设备告警已归入本村告警",
        "omitted": "… 另有 {n} 行省略",
    },
    "en": {
        "up": "Channels up",
        "lost": "Channels lost",
        "ready": "Readiness",
        "outages": "Outages",
        "none": "none",
        "is_ready": "ready",
        "not_ready": "NOT ready",
        "sep": ", ",
        "colon": ": ",
        "monitor": "commsmon monitor",
        "more": "(+{n} more)",
        "folded": "{n} more device alerts folded into this one",
        "omitted": "… {n} lines omitted",
    },
}
# Which alert names the title when several fire: the worst, by rule.
_RULE_ORDER = (
    "monitor_cut_off",
    "site_isolated",
    "outage_active",
    "endurance_low",
    "site_channel_lost",
    "device_down",
    "scenario_not_ready",
    "checkin_stale",
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
    return datetime.fromtimestamp(epoch, UTC).astimezone(tz).strftime("%m-%d %H:%M")


def _clean(text: str) -> str:
    """One line of valid UTF-8: newlines folded, lone surrogates replaced."""
    text = text.encode("utf-8", "replace").decode("utf-8")
    return " ".join(text.splitlines()).strip()


def _fact(alert: Alert, name: str) -> str:
    return _clean(alert.facts.get(name, "") or alert.labels.get(name, ""))


def _channel(name: str, lang: Language) -> str:
    return _CHANNEL[lang].get(name, _clean(name))


def _channel_list(text: str, lang: Language) -> str:
    """``"pdt370 down, satellite unknown"`` (the rules' ``channels`` fact) in words."""
    parts = []
    for item in text.split(","):
        words = item.split()
        if not words:
            continue
        name = _channel(words[0], lang)
        state = " ".join(words[1:])
        if state:
            state = _STATE[lang].get(state, _clean(state))
            parts.append(f"{name}（{state}）" if lang == "zh" else f"{name} ({state})")
        else:
            parts.append(name)
    return _WORDS[lang]["sep"].join(parts)


def _hours(text: str, lang: Language) -> str:
    if not text or text == "unknown":
        return "续航未知" if lang == "zh" else "endurance unknown"
    if text == "unbounded":
        return "不受限" if lang == "zh" else "unbounded"
    return f"约 {text} 小时" if lang == "zh" else f"≈ {text} h"


def alert_summary(alert: Alert, language: Language) -> str:
    """What happened, in a few words ("卫星电话 离线", "PDT 370 MHz channel lost")."""
    zh = language == "zh"
    rule = alert.rule
    device = _fact(alert, "device_name") or _fact(alert, "device") or ("设备" if zh else "device")
    if rule == "site_isolated":
        return "失联，无可用通信通道" if zh else "isolated, no working channel"
    if rule == "site_channel_lost":
        ch = _channel(_fact(alert, "channel"), language) or ("某" if zh else "a")
        return f"{ch}通道中断" if zh else f"{ch} channel lost"
    if rule == "device_down":
        return f"{device} 离线" if zh else f"{device} down"
    if rule == "device_degraded":
        return f"{device} 异常" if zh else f"{device} degraded"
    if rule == "checkin_stale":
        return f"{device} 测试通话超期" if zh else f"{device} check-in overdue"
    if rule == "scenario_not_ready":
        sc = _SCENARIO[language].get(_fact(alert, "scenario"), _fact(alert, "scenario"))
        return f"{sc}准备不足" if zh else f"not ready for a {sc} outage"
    if rule == "outage_active":
        kind = _fact(alert, "outage")
        out = _OUTAGE[language].get(kind, kind)
        return f"正在{out}" if zh else f"{out} outage in progress"
    if rule == "endurance_low":
        hours = _hours(_fact(alert, "hours"), language)
        target = _fact(alert, "target")
        if zh:
            return f"续航不足：{hours}" + (f"，目标 {target} 小时" if target else "")
        return f"endurance low: {hours}" + (f", target {target} h" if target else "")
    if rule == "monitor_cut_off":
        return (
            "监控中心与各村失去联系（疑为监控端故障）"
            if zh
            else "monitor cut off from the villages (fault likely at the monitor)"
        )
    if rule == "monitor_fault" and _fact(alert, "fault") == "state_dir":
        return (
            "监控端状态目录无法写入（磁盘满或只读），数据暂存内存"
            if zh
            else "monitor's state directory not writable (disk full or read-only); "
            "state kept in memory"
        )
    return _fact(alert, "alertname") or _clean(rule)


def _alert_extra(alert: Alert, language: Language) -> str:
    """The supporting facts of an alert, in words, or ``""``."""
    if alert.rule == "site_isolated":
        channels = _fact(alert, "channels")
        return _channel_list(channels, language) if channels else ""
    if alert.rule == "outage_active":
        return _fact(alert, "evidence")
    return _fact(alert, "reason") or _fact(alert, "evidence")


def alert_description(alert: Alert, language: Language, tz: tzinfo = DEFAULT_TZ) -> str:
    """One line: what failed, why, since when (and until when, once resolved)."""
    zh = language == "zh"
    what = alert_summary(alert, language)
    extra = _alert_extra(alert, language)
    if extra:
        what = f"{what}（{extra}）" if zh else f"{what} ({extra})"
    since = format_time(alert.starts_at, tz)
    if alert.ends_at is not None:
        until = format_time(alert.ends_at, tz)
        return (
            f"已恢复：{what}，{since} 至 {until}" if zh else f"resolved: {what}, {since} – {until}"
        )
    return f"{what}，自 {since} 起" if zh else f"{what} since {since}"


def _headline(alerts: Sequence[Alert]) -> Alert | None:
    def worst(a: Alert) -> tuple[int, int, float]:
        sev = SEVERITIES.index(a.severity) if a.severity in SEVERITIES else len(SEVERITIES)
        rule = _RULE_ORDER.index(a.rule) if a.rule in _RULE_ORDER else len(_RULE_ORDER)
        return sev, rule, a.starts_at

    return min(alerts, key=worst) if alerts else None


def place(notification: Notification) -> str:
    """Where it happens: ``龙潭镇 石门村`` / ``Shimen (Longtan)``, or the monitor."""
    site = notification.site
    if site is None:
        return _WORDS[notification.language]["monitor"]
    name, town = _clean(site.name), _clean(site.town)
    if notification.language == "zh":
        return f"{town} {name}" if town else name
    return f"{name} ({town})" if town else name


def title(notification: Notification) -> str:
    """The title line: ``【严重】龙潭镇 石门村：失联，无可用通信通道``.

    Severity (or "resolved"), the village and its town (or the monitor), and
    what happened: the worst firing alert, with a count of the others.
    """
    lang: Language = notification.language
    w = _WORDS[lang]
    firing = [a for a in notification.alerts if not a.resolved]
    pool = firing or list(notification.alerts)
    if notification.status == "resolved" or not firing:
        badge = _RESOLVED[lang]
    else:
        severity: Severity = notification.severity
        badge = _SEVERITY[lang].get(severity, severity)
    badge = f"【{badge}】" if lang == "zh" else f"[{badge}] "
    where = place(notification)
    top = _headline(pool)
    what = alert_summary(top, lang) if top is not None else _clean(notification.group)
    if len(pool) > 1:
        what = f"{what} {w['more'].format(n=len(pool) - 1)}"
    return f"{badge}{where}{w['colon']}{what}"


def _context(notification: Notification) -> list[str]:
    """Label/value pairs as ``label：value`` strings (no markup)."""
    site = notification.site
    if site is None:
        return []
    lang: Language = notification.language
    w = _WORDS[lang]
    out = []
    up = w["sep"].join(_channel(c, lang) for c in site.channels_up) or w["none"]
    out.append(f"{w['up']}{w['colon']}{up}")
    if site.channels_lost:
        lost = w["sep"].join(
            _channel_list(f"{c} {st}", lang) for c, st in site.channels_lost.items()
        )
        out.append(f"{w['lost']}{w['colon']}{lost}")
    if site.readiness:
        order = [s for s in ("network", "road", "power", "all") if s in site.readiness]
        order += sorted(s for s in site.readiness if s not in order)
        words = [
            f"{_SCENARIO[lang].get(s, _clean(s))} "
            f"{w['is_ready'] if site.readiness[s] else w['not_ready']}"
            for s in order
        ]
        out.append(f"{w['ready']}{w['colon']}{w['sep'].join(words)}")
    if site.outages:
        kinds = w["sep"].join(_OUTAGE[lang].get(k, _clean(k)) for k in site.outages)
        out.append(f"{w['outages']}{w['colon']}{kinds}")
    return out


def _ordered(alerts: Sequence[Alert]) -> list[Alert]:
    """Firing alerts newest first, then resolved ones newest first (oldest last)."""
    firing = sorted((a for a in alerts if not a.resolved), key=lambda a: -a.starts_at)
    resolved = sorted((a for a in alerts if a.resolved), key=lambda a: -(a.ends_at or 0.0))
    return firing + resolved


def _lines(notification: Notification, tz: tzinfo, bullet: str, sub: str, bold: bool) -> list[Line]:
    lang: Language = notification.language
    colon = _WORDS[lang]["colon"]
    lines = []
    for text in _context(notification):
        label, _, value = text.partition(colon)
        shown = f"**{label}**{colon}{value}" if bold else text
        lines.append(Line(f"{bullet}{shown}", CONTEXT))
    for alert in _ordered(notification.alerts):
        lines.append(Line(f"{bullet}{alert_description(alert, lang, tz)}", ALERT))
    if notification.folded:
        count = _WORDS[lang]["folded"].format(n=len(notification.folded))
        lines.append(Line(f"{bullet}{count}", CONTEXT))
        for alert in _ordered(notification.folded):
            lines.append(Line(f"{sub}{alert_description(alert, lang, tz)}", FOLDED))
    return lines


def render_text(notification: Notification, *, tz: tzinfo = DEFAULT_TZ) -> Rendering:
    """Plain text: the title, then one line per fact (SMS, WeCom/DingTalk ``text``)."""
    return Rendering(
        head=title(notification),
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
    head = "" if heading is None else f"{heading}{prefix}{title(notification)}"
    return Rendering(
        head=head,
        lines=tuple(_lines(notification, tz, "- ", "    - ", bold=True)),
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
    omitted_fmt = r.bullet + _WORDS[r.language]["omitted"]
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
        omitted = omitted_fmt.format(n=dropped)
        # detail lines plus the omitted line, with separators between them
        total = head + kept_bytes + _size(omitted) + sep * kept_count
        if total <= budget:
            kept = [ln.text for ln, k in zip(r.lines, keep, strict=True) if k]
            out = _join(r, kept, omitted)
            assert _size(out) <= budget
            return out
    # Nothing but the head (and perhaps the omitted line) can remain.
    omitted = omitted_fmt.format(n=len(r.lines)) if r.lines else ""
    if r.head:
        room = budget - (_size(r.head_separator) + _size(omitted) if omitted else 0)
        if omitted and room >= _size(r.head) // 2:
            return f"{truncate_utf8(r.head, room)}{r.head_separator}{omitted}"
        return truncate_utf8(r.head, budget)
    return truncate_utf8(omitted, budget)
