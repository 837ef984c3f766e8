"""Facts into words, in Chinese or English: one renderer for every output.

Messages, the status table, the API's reasons and the console all call
:class:`Wording` (alert titles are composed from it in
:mod:`commsmon.outputs.alerts.messages`).  Every text it produces comes from the catalogs
(:mod:`commsmon.outputs.wording.catalogs`); the only other words in a Chinese
text are what the configuration names (device ids and names, sites), units
and the acronyms of the kit (UPS, PDT, SNMP, MQTT, 4G).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo

from commsmon.core.endurance import Endurance
from commsmon.core.facts import Fact
from commsmon.core.readings import (
    CHARGE,
    FUEL,
    FUEL_LITRES,
    INPUT_LINE_BADS,
    LOAD,
    MAINS_PRESENT,
    OUTPUT_SOURCE,
    RUNNING,
    RUNTIME,
    SUPPLY_TYPE,
)
from commsmon.outputs.wording.catalogs import N_, Language, translations
from commsmon.outputs.wording.numbers import (
    decimal,
    down,
    hours_number,
    percent_number,
    rate_number,
)

__all__ = ["DEFAULT_TZ", "Wording"]

DEFAULT_TZ: tzinfo = ZoneInfo("Asia/Shanghai")

_ZH_SPACES = re.compile(r"\s*([（）：；，、])\s*")

_CHANNELS = {
    "pdt370": N_("PDT 370 MHz"),
    "satellite": N_("satellite"),
    "public": N_("public network"),
    "beidou": N_("BeiDou"),
}
_SCENARIOS = {
    "network": N_("network outage"),
    "road": N_("road outage"),
    "power": N_("power outage"),
    "all": N_("all three outages"),
    "now": N_("now"),
}
_SCENARIOS_SHORT = {
    "network": N_("NETWORK"),
    "road": N_("ROAD"),
    "power": N_("POWER"),
    "all": N_("ALL"),
    "now": N_("NOW"),
}
_RULES = {
    "site_isolated": N_("isolated"), "site_channel_lost": N_("channel lost"),
    "device_down": N_("device down"), "device_lost": N_("device cannot carry its channel"),
    "device_degraded": N_("device needs attention"),
    "scenario_not_ready": N_("not ready for an outage"), "outage_active": N_("outage now"),
    "endurance_low": N_("will not last its target"), "countdown": N_("countdown"),
    "checkin_stale": N_("test call overdue"), "trap_path_down": N_("trap path down"),
    "monitor_cut_off": N_("monitor cut off"), "monitor_fault": N_("monitor fault"),
    "monitor_heartbeat": N_("monitor heartbeat"),
}
_SEVERITIES = {"critical": N_("critical"), "warning": N_("warning"), "info": N_("info")}
_ROLES = {"viewer": N_("viewer"), "duty": N_("duty officer"), "admin": N_("administrator"),
          "deputy": N_("deputy"), "leader": N_("duty leader")}
_METHODS = {"test_call": N_("test call"), "roll_call": N_("PDT roll call"),
            "on_site": N_("checked on site"), "other": N_("other")}
_DUTY_ACTIONS = {
    "checkin": N_("recorded a test call"),
    "declare": N_("declared roads cut"),
    "clear": N_("cleared the road outage"),
    "silence": N_("silenced alerts"),
    "unsilence": N_("expired a silence"),
    "ack": N_("acknowledged the alerts"),
    "unack": N_("withdrew an acknowledgement"),
    "escalate": N_("escalated now"),
    "roster": N_("replaced the duty roster"),
    "handover": N_("handed over the shift"),
    "login": N_("logged in"),
    "logout": N_("logged out"),
    "login_failed": N_("failed to log in"),
    "drill_start": N_("started a drill"),
    "drill_stop": N_("stopped a drill"),
}
_KIT_STATES = {"working": N_("present and working"), "down": N_("present but down"),
               "unknown": N_("present, not known to work"), "missing": N_("missing"),
               "present": N_("named")}
_KINDS = {"pdt_repeater": N_("PDT repeater"), "pdt_terminal": N_("PDT terminal"),
          "satphone": N_("satellite phone"), "generator": N_("generator"), "ups": N_("UPS"),
          "camera": N_("camera"), "router": N_("router"), "beidou": N_("BeiDou terminal"),
          "gateway": N_("gateway")}
_OUTAGES = {"power": N_("power cut"), "network": N_("network cut"), "road": N_("roads cut")}
_STATES = {
    "up": N_("up"),
    "degraded": N_("degraded"),
    "lost": N_("unusable"),
    "down": N_("down"),
    "unknown": N_("unknown"),
}
_READINGS = {
    CHARGE: N_("battery charge"),
    RUNTIME: N_("battery runtime"),
    FUEL: N_("fuel level"),
    FUEL_LITRES: N_("fuel level"),
    LOAD: N_("load"),
    RUNNING: N_("running state"),
    MAINS_PRESENT: N_("mains presence"),
    OUTPUT_SOURCE: N_("output source"),
    SUPPLY_TYPE: N_("supply type"),
    INPUT_LINE_BADS: N_("input fault count"),
    # the other readings of the shipped profiles (config/profiles)
    "alarms": N_("alarms"),
    "alarms_present": N_("alarms present"),
    "battery_alarm": N_("battery alarm"),
    "battery_connected": N_("battery connection"),
    "battery_status": N_("battery status"),
    "battery_volts": N_("battery voltage"),
    "cpu": N_("CPU usage"),
    "disk": N_("storage"),
    "manufacturer": N_("manufacturer"),
    "memory": N_("memory usage"),
    "model": N_("model"),
    "on_battery": N_("time on battery"),
    "pa_temperature": N_("amplifier temperature"),
    "registered": N_("registered"),
    "rssi": N_("signal strength"),
    "signal": N_("signal bars"),
    "slot1_rssi": N_("slot 1 signal strength"),
    "supply_volts": N_("supply voltage"),
    "temperature_alarm": N_("temperature alarm"),
    "uplink_receive": N_("uplink received"),
    "uplink_status": N_("uplink status"),
    "uplink_transmit": N_("uplink sent"),
    "uptime": N_("time since restart"),
    "voltage_alarm": N_("voltage alarm"),
    "vswr_alarm": N_("antenna VSWR alarm"),
}
#: The shipped profiles' enum labels (a reading's decoded value).
_VALUES = {
    "abnormal": N_("abnormal"), "alarm": N_("alarm"), "battery": N_("on battery"),
    "booster": N_("boosting"), "bypass": N_("bypass"), "connected": N_("connected"),
    "dc": N_("DC supply"), "depleted": N_("depleted"), "disconnected": N_("disconnected"),
    "dormant": N_("dormant"), "down": N_("down"), "high": N_("high"), "low": N_("low"),
    "lowerLayerDown": N_("lower layer down"), "none": N_("none"), "normal": N_("normal"),
    "notPresent": N_("not present"), "other": N_("other"), "reducer": N_("reducing"),
    "testing": N_("testing"), "unknown": N_("unknown"), "up": N_("up"),
}
_SOURCES = {"mqtt": N_("MQTT broker"), "snmp": N_("SNMP agents")}
#: The shipped profiles' trap names (``traps:`` ... ``name``).
_TRAPS = {
    "on_battery": N_("on battery (mains lost)"),
    "alarm_added": N_("alarm raised"),
    "alarm_removed": N_("alarm cleared"),
    "cold_start": N_("restarted (cold start)"),
    "warm_start": N_("restarted (warm start)"),
    "link_down": N_("link down"),
    "link_up": N_("link up"),
    "power_on": N_("powered on"),
    "power_off": N_("powered off"),
    "reboot": N_("rebooting"),
}

#: USM report counters an agent answers a rejected request with (RFC 3414 §3.2), and
#: the community an agent ignores, by the name the SNMP backends give.
_USM = {
    "usmStatsUnknownUserNames": N_("unknown user"),
    "usmStatsWrongDigests": N_("wrong authentication password"),
    "usmStatsDecryptionErrors": N_("wrong privacy password"),
    "usmStatsNotInTimeWindows": N_("not in the agent's time window"),
    "usmStatsUnknownEngineIDs": N_("unknown engine ID"),
    "usmStatsUnsupportedSecLevels": N_("security level not supported"),
    "authenticationFailed": N_("user or password wrong"),
}

#: Why an SNMP reply did not fit its request (commsmon.sources.snmp.wire.Misfit).
_MISFITS = {
    "request_id_cut": N_("the agent cuts request ids to 16 bits"),
    "undecodable": N_("a reply is not an SNMP message"),
    "varbind_count": N_("a reply carries a different number of values than asked"),
    "not_a_response": N_("a reply is not a Response PDU"),
}

#: What a robot's rejection code usually means (its vendor's documentation), by code.
_REJECTIONS = {
    "310000": N_("DingTalk: the keyword, signature or IP whitelist of the robot does not "
                 "match: check the robot's security settings and the secret"),
    "19021": N_("Feishu: the signature does not match: usually a skewed clock or a wrong "
                "secret"),
    "19024": N_("Feishu: the message lacks the robot's keyword"),
    "93000": N_("WeCom: the robot's webhook key is not valid"),
    "401": N_("the receiver refuses our credentials"),
    "403": N_("the receiver refuses our credentials"),
}


class Wording:
    """Renders facts, verdicts and alerts in one language.

    Args:
        language: ``zh`` (the district's default) or ``en``.
        tz: time zone of the times shown (default Asia/Shanghai).
        now: epoch seconds to show times against: a time on the same local day
            shows as ``17:40``, another as ``12-06 17:40``; ``None`` always
            shows the date.
    """

    def __init__(self, language: Language = "zh", tz: tzinfo = DEFAULT_TZ,
                 now: float | None = None) -> None:
        self.language: Language = language
        self.tz = tz
        self.now = now
        self._catalog = translations(language)
        zh = language == "zh"
        self.list_sep = "、" if zh else ", "
        self.clause_sep = "；" if zh else "; "
        self.colon = "：" if zh else ": "

    def at(self, now: float | None) -> Wording:
        """The same wording, showing times against ``now``."""
        return Wording(self.language, self.tz, now)

    def _(self, message: str) -> str:
        return self._catalog.gettext(message)

    def _n(self, singular: str, plural: str, n: int) -> str:
        return self._catalog.ngettext(singular, plural, n)

    def paren(self, text: str) -> str:
        """``text`` in brackets, as each language writes them."""
        return f"（{text}）" if self.language == "zh" else f" ({text})"

    # --- names and numbers --------------------------------------------------------

    def channel(self, name: str) -> str:
        """A channel's name (``pdt370`` -> ``PDT 370M 集群``)."""
        return self._(_CHANNELS[name]) if name in _CHANNELS else name

    def scenario(self, name: str) -> str:
        """A scenario's name (``power`` -> ``断电``)."""
        return self._(_SCENARIOS[name]) if name in _SCENARIOS else name

    def scenario_heading(self, name: str) -> str:
        """A scenario's column heading in the status table."""
        return self._(_SCENARIOS_SHORT[name]) if name in _SCENARIOS_SHORT else name

    def rule(self, rule: str) -> str:
        """An alert rule's short name (``site_isolated`` -> ``失联``)."""
        return self._(_RULES[rule]) if rule in _RULES else rule

    def severity(self, severity: str) -> str:
        """A severity's name (``critical`` -> ``严重``)."""
        return self._(_SEVERITIES[severity]) if severity in _SEVERITIES else severity

    def role(self, role: str) -> str:
        """A console role's name (``duty`` -> ``值班员``)."""
        return self._(_ROLES[role]) if role in _ROLES else role

    def checkin_method(self, method: str) -> str:
        """How a check-in was made (``test_call`` -> ``卫星电话测试通话``)."""
        return self._(_METHODS[method]) if method in _METHODS else method

    def duty_action(self, action: str) -> str:
        """A duty-log action's name (``checkin`` -> ``记录测试通话``)."""
        return self._(_DUTY_ACTIONS[action]) if action in _DUTY_ACTIONS else action

    def kind(self, kind: str) -> str:
        """A device kind's name (``satphone`` -> ``卫星电话``)."""
        return self._(_KINDS[kind]) if kind in _KINDS else kind

    def kit_state(self, state: str) -> str:
        """Where a village stands on one item of the kit standard (``working`` -> ``在用完好``)."""
        return self._(_KIT_STATES[state]) if state in _KIT_STATES else state

    def kit_heading(self, item: str) -> str:
        """An item of the kit standard: a device kind, or ``keeper`` (``管理员``)."""
        return self._("keeper") if item == "keeper" else self.kind(item)

    def outage(self, kind: str) -> str:
        """An outage's name (``power`` -> ``断电``)."""
        return self._(_OUTAGES[kind]) if kind in _OUTAGES else kind

    def state(self, state: str) -> str:
        """A state's name (``down`` -> ``中断``)."""
        return self._(_STATES[state]) if state in _STATES else state

    def reading(self, name: str) -> str:
        """What a reading measures (``charge`` -> ``电量``); other readings by their id."""
        return self._(_READINGS[name]) if name in _READINGS else name

    def value(self, label: str) -> str:
        """A reading's decoded label in words (``battery`` -> ``电池供电``); others as
        they are (a vendor's text)."""
        return self._(_VALUES[label]) if label in _VALUES else label

    def trap(self, name: str) -> str:
        """What a trap says, by its profile's name (``on_battery`` -> ``转电池供电``);
        other names, and OIDs of traps no profile knows, as they are."""
        return self._(_TRAPS[name]) if name in _TRAPS else name

    def hours(self, hours: float) -> str:
        """Hours in prose: ``57.6 小时`` / ``57.6 h``, ``不受限`` / ``unbounded``."""
        if math.isinf(hours):
            return self._("unbounded")
        return self._("{n} h").format(n=hours_number(hours))

    def hours_short(self, hours: float) -> str:
        """Hours in a table cell: ``57.6h``, ``∞``."""
        return "∞" if math.isinf(hours) else f"{hours_number(hours)}h"

    def percent(self, ratio: float) -> str:
        """A ratio 0-1 as ``74.9 %``."""
        return f"{percent_number(ratio)} %"

    def age(self, seconds: float) -> str:
        """A duration: ``40 s``, ``12 min``, ``5.5 h``, ``8 d`` (rounded down)."""
        seconds = max(seconds, 0.0)
        if seconds < 90:
            return self._("{n} s").format(n=int(seconds))
        if seconds < 90 * 60:
            return self._("{n} min").format(n=int(seconds // 60))
        if seconds < 48 * 3600:
            return self._("{n} h").format(n=decimal(down(seconds / 3600)))
        return self._("{n} d").format(n=decimal(down(seconds / 86400)))

    def time(self, epoch: float) -> str:
        """A local time: ``17:40`` today (against ``now``), else ``12-06 17:40``."""
        local = datetime.fromtimestamp(epoch, UTC).astimezone(self.tz)
        if self.now is not None:
            today = datetime.fromtimestamp(self.now, UTC).astimezone(self.tz).date()
            if local.date() == today:
                return local.strftime("%H:%M")
        return local.strftime("%m-%d %H:%M")

    def label(self, fact: Fact, here: str | None = None) -> str:
        """A device as ``天通卫星电话（v01-satphone）``, with its site when not ``here``."""
        device, name = fact.text("device"), fact.text("name")
        if not device:
            return ""
        text = device if not name or name == device else f"{name}{self.paren(device)}".strip()
        site = fact.text("site")
        if site and here is not None and site != here and fact.text("site_name"):
            text = f"{fact.text('site_name')} {text}"
        return text

    # --- facts --------------------------------------------------------------------

    def fact(self, f: Fact, here: str | None = None) -> str:
        """One fact in words; ``here`` is the site being described (a device at
        another site is named with its site)."""
        method = getattr(self, f"_fact_{f.code}", None)
        if method is None:
            return f.code
        text: str = method(f, here)
        return self.tidy(text)

    def tidy(self, text: str) -> str:
        """No stray spaces: around Chinese punctuation, or where a name was left out."""
        if self.language == "zh":
            text = _ZH_SPACES.sub(r"\1", text)
        return " ".join(text.split())

    def facts(self, facts: Iterable[Fact], here: str | None = None) -> str:
        """Several facts as clauses."""
        return self.clause_sep.join(t for f in facts if (t := self.fact(f, here)))

    def _causes(self, f: Fact, here: str | None) -> str:
        causes = self.facts(f.facts("causes"), here)
        return f"{self.colon}{causes}" if causes else ""

    def _fact_not_seen(self, f: Fact, here: str | None) -> str:
        return self._("not heard from since the monitor started")

    def _fact_source_lost(self, f: Fact, here: str | None) -> str:
        source = f.text("source")
        return self._("the monitor lost its link to the {source}").format(
            source=self._(_SOURCES[source]) if source in _SOURCES else source)

    def _fact_monitor_blind(self, f: Fact, here: str | None) -> str:
        return self._("every site went silent at once: the monitor itself is likely cut off")

    def _fact_behind_parent(self, f: Fact, here: str | None) -> str:
        return self._("behind {parent}, which is {state}").format(
            parent=self.label(f, here), state=self.state(f.text("state")))

    def _fact_parent_loop(self, f: Fact, here: str | None) -> str:
        return self._("its parents form a loop in the configuration")

    def _fact_checkin_missing(self, f: Fact, here: str | None) -> str:
        return self._("no test call recorded yet: ask the village keeper for one")

    def _fact_checkin_stale(self, f: Fact, here: str | None) -> str:
        return self._("last test call {age} ago, beyond its {validity} validity: ask the "
                      "village keeper for a test call").format(
            age=self.age(f.number("age") or 0), validity=self.age(f.number("validity") or 0))

    def _fact_checkin_failed(self, f: Fact, here: str | None) -> str:
        text = self._("test call failed at {at}").format(at=self.time(f.number("at") or 0))
        note = f.text("note")
        return f"{text}{self.colon}{note}" if note else text

    def _fact_no_answer(self, f: Fact, here: str | None) -> str:
        return self._("SNMP request timed out")

    def _fact_snmp_error(self, f: Fact, here: str | None) -> str:
        return self._("the SNMP agent answers with an error")

    def _fact_offline(self, f: Fact, here: str | None) -> str:
        return self._("reported offline over MQTT")

    def _fact_unexpected_source(self, f: Fact, here: str | None) -> str:
        return self._("replies came from {address}, not the device's address: if it is "
                      "the same agent, allow that address in the device's SNMP settings "
                      "(reply_from)").format(address=f.text("address") or "?")

    def _fact_protocol_error(self, f: Fact, here: str | None) -> str:
        text = self._("the SNMP agent's replies do not match our requests (protocol error)")
        detail = f.text("detail")
        if detail in _MISFITS:
            return f"{text}{self.colon}{self._(_MISFITS[detail])}"
        return text

    def _fact_auth_error(self, f: Fact, here: str | None) -> str:
        detail = f.text("detail")
        why = self._(_USM[detail]) if detail in _USM else self._("credentials refused")
        text = self._("the SNMP agent rejects the monitor's credentials ({why}): not "
                      "monitored; check the user, passwords and community in the "
                      "configuration").format(why=why)
        device = self.label(f, here)
        return f"{device}{self.colon}{text}" if device else text

    def _fact_retained(self, f: Fact, here: str | None) -> str:
        at = self.time(f.number("at") or 0)
        if f.arg("online"):
            return self._("last known online (retained message, {at}); waiting for a live "
                          "message").format(at=at)
        return self._("last known offline (retained message, {at}); waiting for a live "
                      "message").format(at=at)

    def _fact_relearning(self, f: Fact, here: str | None) -> str:
        return self._("the monitor reconnected to the broker; waiting for the device's "
                      "live presence")

    def _fact_silent(self, f: Fact, here: str | None) -> str:
        return self._("no message for {age}").format(age=self.age(f.number("age") or 0))

    def _fact_health(self, f: Fact, here: str | None) -> str:
        text = f.text("text_zh") if self.language == "zh" else f.text("text_en")
        return text or f.text("text_en") or f.text("reading")

    def _fact_link(self, f: Fact, here: str | None) -> str:
        return self.label(f, here)

    def _fact_mains(self, f: Fact, here: str | None) -> str:
        return self._("{device} on mains").format(device=self.label(f, here))

    def _fact_charger(self, f: Fact, here: str | None) -> str:
        return self._("{device} charged by hand while mains and roads hold").format(
            device=self.label(f, here))

    def _fact_mains_lost(self, f: Fact, here: str | None) -> str:
        if f.arg("actual") is True:
            return self._("{device} is on mains only, and mains is out at {site} now").format(
                device=self.label(f, here), site=f.text("site_name") or f.text("site"))
        return self._("{device} is on mains only: nothing once mains is lost").format(
            device=self.label(f, here))

    def _fact_battery(self, f: Fact, here: str | None) -> str:
        return self._("{device} battery {charge} × {rated} ≈ {hours}").format(
            device=self.label(f, here), charge=self.percent(f.number("ratio") or 0),
            rated=self.hours(f.number("rated_hours") or 0),
            hours=self.hours(f.number("hours") or 0))

    def _fact_battery_decayed(self, f: Fact, here: str | None) -> str:
        at, since = f.number("at") or 0, f.number("since") or 0
        terms = {
            "device": self.label(f, here), "then": self.percent(f.number("checkin_ratio") or 0),
            "when": self.time(at), "rated": self.hours(f.number("rated_hours") or 0),
            "charge": self.percent(f.number("ratio") or 0),
            "hours": self.hours(f.number("hours") or 0), "since": self.time(since),
        }
        if since > at:
            return self._("{device} battery {then} at the test call of {when}, on its own "
                          "since mains went at {since} ({rated} standby): now {charge} ≈ "
                          "{hours}").format(**terms)
        return self._("{device} battery {then} at the test call of {when}, not on a charger "
                      "({rated} standby): now {charge} ≈ {hours}").format(**terms)

    def _fact_ups_runtime(self, f: Fact, here: str | None) -> str:
        return self._("{device} runtime {hours}").format(
            device=self.label(f, here), hours=self.hours(f.number("hours") or 0))

    def _fact_fuel(self, f: Fact, here: str | None) -> str:
        return self._("{device} fuel {litres} L ÷ {rate} L/h ≈ {hours}").format(
            device=self.label(f, here), litres=decimal(down(f.number("litres") or 0)),
            rate=rate_number(f.number("rate") or 0), hours=self.hours(f.number("hours") or 0))

    def _fact_feed_down(self, f: Fact, here: str | None) -> str:
        return self._("{device} is {state}: it feeds nothing").format(
            device=self.label(f, here), state=self.state(f.text("state")))

    def _fact_feed_unknown(self, f: Fact, here: str | None) -> str:
        return self._("{device} state unknown").format(device=self.label(f, here)) \
            + self._causes(f, here)

    def _fact_reading_missing(self, f: Fact, here: str | None) -> str:
        return self._("{device} has not reported its {reading}").format(
            device=self.label(f, here), reading=self.reading(f.text("reading")))

    def _fact_reading_stale(self, f: Fact, here: str | None) -> str:
        return self._("{device} last reported its {reading} {age} ago (true for {max_age}): "
                      "check its reporting").format(
            device=self.label(f, here), reading=self.reading(f.text("reading")),
            age=self.age(f.number("age") or 0), max_age=self.age(f.number("max_age") or 0))

    def _fact_reading_unavailable(self, f: Fact, here: str | None) -> str:
        return self._("{device} reports its {reading} as not available since {since}: "
                      "check it on site").format(
            device=self.label(f, here), reading=self.reading(f.text("reading")),
            since=self.time(f.number("since") or 0))

    def _fact_reading_unconfirmed(self, f: Fact, here: str | None) -> str:
        return self._("{device} told its {reading} in an SNMP trap at {at}: not yet "
                      "confirmed by a poll").format(
            device=self.label(f, here), reading=self.reading(f.text("reading")),
            at=self.time(f.number("at") or 0))

    def _fact_trap_path_silent(self, f: Fact, here: str | None) -> str:
        return self._("no trap or inform from its kit for {age} (expected within {limit})"
                      ).format(age=self.age(f.number("age") or 0),
                               limit=self.age(f.number("limit") or 0))

    def _fact_trap_path_waiting(self, f: Fact, here: str | None) -> str:
        return self._("no trap from its kit yet since {since} (expected within {limit})"
                      ).format(since=self.time(f.number("since") or 0),
                               limit=self.age(f.number("limit") or 0))

    def _fact_traps_not_listening(self, f: Fact, here: str | None) -> str:
        return self._("commsmon is not listening for traps: the trap path is not known")

    def _fact_no_fuel_curve(self, f: Fact, here: str | None) -> str:
        return self._("{device} has no fuel consumption in the configuration").format(
            device=self.label(f, here))

    def _fact_powered_unexplained(self, f: Fact, here: str | None) -> str:
        return self._("{device} still answers though mains is out at {site}: what powers it "
                      "is not in the configuration").format(
            device=self.label(f, here), site=f.text("site_name") or f.text("site"))

    def _fact_public_network(self, f: Fact, here: str | None) -> str:
        if f.arg("actual") is True:
            return self._("the public network is out now")
        return self._("lost with the public network")

    def _fact_digest(self, f: Fact, here: str | None) -> str:
        return self.clause_sep.join(f.texts("titles"))

    def _fact_escalation(self, f: Fact, here: str | None) -> str:
        """``升级第 2 步：通知副班 李四（13800000002），自 10:00 起未确认``."""
        phones = f.texts("phones")
        names = self.list_sep.join(
            f"{n}{self.paren(phones[i])}" if i < len(phones) and phones[i] else n
            for i, n in enumerate(f.texts("names")))
        role = self.role(f.text("role"))
        who = f"{role} {names}" if names else \
            self._("{role} (nobody on the roster now)").format(role=role)
        return self._("escalation step {n}: to {who}; unacknowledged since {since}").format(
            n=int(f.number("step") or 0) + 1, who=who, since=self.time(f.number("since") or 0))

    def _fact_public_backup(self, f: Fact, here: str | None) -> str:
        hours, remaining = f.number("hours") or 0, f.number("remaining") or 0
        if f.arg("since") is None:
            return self._("the public network's base stations hold {hours} without mains"
                          ).format(hours=self.hours(hours))
        return self._("the public network's base stations hold {hours} without mains, "
                      "{remaining} left since {since}").format(
            hours=self.hours(hours), remaining=self.hours(remaining),
            since=self.time(f.number("since") or 0))

    def _fact_public_backup_unknown(self, f: Fact, here: str | None) -> str:
        return self._("how long the public network's base stations hold without mains is not "
                      "known (not configured)")

    def _fact_link_down(self, f: Fact, here: str | None) -> str:
        return self._("{device} {state} since {since}").format(
            device=self.label(f, here), state=self.state(f.text("state")),
            since=self.time(f.number("since") or 0)) + self._causes(f, here)

    def _fact_link_unknown(self, f: Fact, here: str | None) -> str:
        return self._("{device} state unknown").format(device=self.label(f, here)) \
            + self._causes(f, here)

    def _fact_no_channels(self, f: Fact, here: str | None) -> str:
        return self._("no channel to the command centre is configured")

    def _fact_channel_state(self, f: Fact, here: str | None) -> str:
        return f"{self.channel(f.text('channel'))}{self.paren(self.state(f.text('state')))}"

    def _fact_ups_on_battery(self, f: Fact, here: str | None) -> str:
        return self._unconfirmed(f, self._("{device} on battery: mains lost").format(
            device=self.label(f, here)))

    def _fact_generator_without_mains(self, f: Fact, here: str | None) -> str:
        return self._unconfirmed(f, self._("{device} running without mains").format(
            device=self.label(f, here)))

    def _fact_repeater_on_battery(self, f: Fact, here: str | None) -> str:
        return self._unconfirmed(f, self._("{device} on battery supply").format(
            device=self.label(f, here)))

    def _unconfirmed(self, f: Fact, text: str) -> str:
        """Evidence a trap told and no poll has confirmed yet says so."""
        if f.arg("unconfirmed") is True:
            return self._("{evidence} (SNMP trap, awaiting a poll to confirm)").format(
                evidence=text)
        return text

    def _fact_input_line_bad(self, f: Fact, here: str | None) -> str:
        return self._("{device} saw its input power fail at {at}").format(
            device=self.label(f, here), at=self.time(f.number("at") or 0))

    def _fact_public_silent(self, f: Fact, here: str | None) -> str:
        return self._("every public-network device is silent ({devices}) while {working} "
                      "works").format(
            devices=self.list_sep.join(_texts(f.arg("devices"))),
            working=self.list_sep.join(self.channel(c) for c in _texts(f.arg("working"))))

    def _fact_road_declared(self, f: Fact, here: str | None) -> str:
        by, note, until = f.text("by"), f.text("note"), f.number("until")
        text = (self._("roads declared cut by {by}").format(by=by) if by
                else self._("roads declared cut"))
        if until is not None:
            text += self._(", until {until}").format(until=self.time(until))
        return f"{text}{self.colon}{note}" if note else text

    def _fact_outage(self, f: Fact, here: str | None) -> str:
        site = f.text("site")
        what = self.outage(f.text("outage"))
        since = f.number("since")
        where = f.text("site_name") or site
        text = what if here is not None and site == here else f"{where} {what}"
        if since is not None:
            text = self._("{what} since {since}").format(what=text, since=self.time(since))
        evidence = self.facts(f.facts("evidence"), here)
        return f"{text}{self.colon}{evidence}" if evidence else text

    def _fact_device(self, f: Fact, here: str | None) -> str:
        state = f.text("state")
        text = f"{self.label(f, here)} {self.state(state)}"
        since = f.number("since")
        if since is not None and state != "up":
            text = self._("{what} since {since}").format(what=text, since=self.time(since))
        return text + self._causes(f, here)

    def _fact_cut_off(self, f: Fact, here: str | None) -> str:
        sources = _texts(f.arg("sources"))
        if sources:
            return self.list_sep.join(self._fact_source_lost(Fact("source_lost", {"source": s}),
                                                             here) for s in sources)
        return self._fact_monitor_blind(f, here)

    def _fact_state_dir(self, f: Fact, here: str | None) -> str:
        text = self._("the monitor's state directory refuses writes (disk full or "
                      "read-only); its state is kept in memory")
        detail = f.text("detail")  # the system's own words: for the English reader only
        return f"{text} ({detail})" if detail and self.language == "en" else text

    def _fact_client_id_taken(self, f: Fact, here: str | None) -> str:
        return self._("another instance uses this MQTT client id ({client_id}): the broker "
                      "dropped our session {count} times right after it began; give each "
                      "instance its own client id").format(
            client_id=f.text("client_id"), count=int(f.number("count") or 0))

    def _fact_receiver_rejecting(self, f: Fact, here: str | None) -> str:
        receiver, code = f.text("receiver"), f.text("code")
        hint = _REJECTIONS.get(code)
        text = self._("the receiver {receiver} rejects our messages (error {code})").format(
            receiver=receiver, code=code or "?")
        return f"{text}{self.colon}{self._(hint)}" if hint else text

    def _fact_countdown(self, f: Fact, here: str | None) -> str:
        return self._("under {hours}").format(hours=self.hours(f.number("hours") or 0))

    def _fact_endurance(self, f: Fact, here: str | None) -> str:
        return self.endurance(Endurance.from_fact(f), None, here)

    def _fact_outlook(self, f: Fact, here: str | None) -> str:
        return self.outlook(f, None, here)

    def _fact_verdict(self, f: Fact, here: str | None) -> str:
        return self.verdict(f, here)

    # --- endurance and verdicts ---------------------------------------------------

    def endurance(self, e: Endurance, target: float | None = None,
                  here: str | None = None) -> str:
        """How long, with the arithmetic (see :meth:`_endurance`)."""
        return self.tidy(self._endurance(e, target, here))

    def _endurance(self, e: Endurance, target: float | None = None,
                   here: str | None = None) -> str:
        """How long, with the arithmetic (and ``< 72 h`` when short of ``target``).

        Known lost gives why; unknown says what is at least certain and what is
        not known (with what to do); never 0, never ∞, for want of knowledge.
        """
        if e.unbounded:  # what keeps it going, not which device: it never gives out
            why = self._chain(e.stages, here, named=False)
            return self._("unbounded") + (self.paren(why) if why else "")
        if e.lost:  # why, without the link heads (each cause names its device)
            return self.facts((f for f in e.stages if f.code != "link"), here) \
                or self._("nothing works")
        if e.exact:
            text = self._chain(e.stages, here, total=e.lower)
            if target is not None and e.lower < target:
                text = self._("{what} < {target}").format(what=text, target=self.hours(target))
            return text
        text = self._("endurance unknown")
        if e.lower > 0:
            text = self._("at least {hours}").format(hours=self.hours(e.lower))
        if not math.isinf(e.upper):
            text += self.list_sep + self._("at most {hours}").format(hours=self.hours(e.upper))
        unknowns = self.facts(e.unknowns, here)
        known = self._chain(e.stages, here) if e.stages and e.lower > 0 else ""
        text += self.paren(known) if known else ""
        return f"{text}{self.colon}{unknowns}" if unknowns else text

    def _chain(self, stages: Iterable[Fact], here: str | None, total: float | None = None,
               named: bool = True) -> str:
        """``link: stage + stage = total``; a stage about the link itself (its own
        battery) does not name it twice; ``named=False`` names no device at all."""
        head = [s for s in stages if s.code == "link"]
        subject = head[0].text("device") if head and named else None
        parts = [self.fact(_unnamed(s) if not named or s.text("device") == subject else s, here)
                 for s in stages if s.code != "link"]
        text = " + ".join(p for p in parts if p)
        if total is not None and len(parts) > 1:
            text = f"{text} = {self.hours(total)}"
        if head and text and named:
            return f"{self.fact(head[0], here)}{self.colon}{text}"
        return text or (self.fact(head[0], here) if head and named else "")

    def outlook(self, o: Fact, target: float | None, here: str | None) -> str:
        """One channel (``卫星：…``) or support in words."""
        e = Endurance.from_fact(o.facts("endurance")[0]) if o.facts("endurance") \
            else Endurance(0.0, math.inf)
        text = self.endurance(e, target, here)
        channel = o.text("channel")
        if channel:
            return f"{self.channel(channel)}{self.colon}{text}"
        count = len(_texts(o.arg("dependent_sites")))
        names = self.list_sep.join(self.channel(c) for c in _texts(o.arg("dependent_channels")))
        if count:
            text += self.clause_sep + self._n(
                "{channels} at {n} village depends on it",
                "{channels} at {n} villages depend on it", count).format(
                    channels=names or self._("a channel"), n=count)
        return text

    def verdict(self, v: Fact, here: str | None = None) -> str:
        """A scenario's (or ``now``'s) reason: what carries it, or what fails and why."""
        return self.tidy(self._verdict(v, here))

    def _verdict(self, v: Fact, here: str | None) -> str:
        scenario = v.text("scenario")
        target = v.number("target_hours")
        e = Endurance.from_fact(v.facts("endurance")[0]) if v.facts("endurance") \
            else Endurance(0.0, math.inf)
        outlooks = [*v.facts("outlooks"), *v.facts("supports")]
        outages = self.list_sep.join(self.fact(f, here) for f in v.facts("outages"))
        if scenario == "now":
            return self._now(v, e, outages, here)
        lead = self._("with {outages} now").format(outages=outages) if outages else ""
        parts = []
        if v.arg("ready") is True:
            carrier = next((o for o in v.facts("outlooks") if o.arg("survives") is True
                            and _lower(o) == e.lower), None)
            carries = self.endurance(e, None, here)
            if carrier is not None:
                parts.append(self._("ready via {channel}: {how}").format(
                    channel=self.channel(carrier.text("channel")), how=carries))
            else:
                parts.append(self._("ready: {how}").format(how=carries))
            others = [o for o in outlooks if o.arg("survives") is not True]
        else:
            others = outlooks
        parts += [self.outlook(o, target, here) for o in others]
        if not outlooks:
            parts.append(self.endurance(e, target, here))
        text = self.clause_sep.join(p for p in parts if p)
        return self.clause_sep.join(p for p in (lead, text) if p)

    def _now(self, v: Fact, e: Endurance, outages: str, here: str | None) -> str:
        """How long the site stays reachable with the outages active now, what gives out
        first, and each channel (or what depends on a hub) that gives out before."""
        if not outages and e.unbounded:
            return self._("no outage now: unbounded")
        lead = self._("with {outages} now").format(outages=outages) if outages else ""
        until, at = v.number("until"), v.number("at") or 0.0
        if e.lost:
            why = self.facts(e.stages, here)
            body = self._("no channel works now") + (f"{self.colon}{why}" if why else "")
        elif e.exact and until is not None:
            body = self._("reachable until about {time} ({hours} left): {how}").format(
                time=self.time(until), hours=self.hours(e.lower),
                how=self._chain(e.stages, here, total=e.lower))
        else:
            body = self._endurance(e, None, here)
            if until is not None:
                body = self._("reachable until at least {time}").format(time=self.time(until)) \
                    + self.clause_sep + body
        parts = [lead, body]
        for o in v.facts("outlooks"):  # channels that give out while the village holds
            oe = Endurance.from_fact(o.facts("endurance")[0]) if o.facts("endurance") else None
            if oe is None or oe.lost or oe.unbounded or (oe.lower == e.lower and oe.exact):
                continue
            name = self.channel(o.text("channel"))
            if oe.exact:
                parts.append(self._("{channel} gives out at about {time}: {how}").format(
                    channel=name, time=self.time(at + oe.lower * 3600),
                    how=self._chain(oe.stages, here)))
            else:
                parts.append(f"{name}{self.colon}{self._endurance(oe, None, here)}")
        for o in v.facts("supports"):  # what others lose when the hub gives out
            oe = Endurance.from_fact(o.facts("endurance")[0]) if o.facts("endurance") else None
            count = len(_texts(o.arg("dependent_sites")))
            if oe is None or not oe.exact or oe.unbounded or not count:
                continue
            names = self.list_sep.join(self.channel(c) for c in _texts(o.arg("dependent_channels")))
            parts.append(self._n(
                "{channels} at {n} village lost at about {time}",
                "{channels} at {n} villages lost at about {time}", count).format(
                    channels=names or self._("a channel"), n=count,
                    time=self.time(at + oe.lower * 3600)))
        return self.clause_sep.join(p for p in parts if p)

    def cell(self, v: Fact, words: bool = False) -> str:
        """A verdict in a status-table cell: ``就绪 ∞``, ``不足 57.6h``, ``未知 ≥19h``;
        for ``now``: ``∞``, the clock time it lasts to, or ``失联``.  With ``words``
        (the console, read by officers at a glance): ``就绪 101 小时``, ``不受限``,
        ``未知，至少 19 小时``, ``至少到 12-07 19:36`` — no bare symbols."""
        e = Endurance.from_fact(v.facts("endurance")[0]) if v.facts("endurance") \
            else Endurance(0.0, math.inf)
        hours = self.hours if words else self.hours_short
        if v.text("scenario") == "now":
            until = v.number("until")
            if e.unbounded:
                return self._("unbounded") if words else "∞"
            if e.lost:
                return self._("isolated")
            if until is not None:
                if e.exact:
                    return self.time(until)
                if words:
                    return self._("at least until {time}").format(time=self.time(until))
                return f"≥{self.time(until)}"
            return self.state("unknown") if words else "?"
        if v.arg("ready") is True:
            return self._("ready {hours}").format(hours=hours(e.lower))
        if e.lost:
            return self._("NOT: none")
        if e.exact:
            if words:  # "不足 57.6 小时" would read as "less than 57.6 h"
                return self._("NOT: lasts {hours}").format(hours=hours(e.lower))
            return self._("NOT {hours}").format(hours=hours(e.lower))
        if e.upper < (v.number("target_hours") or 0):  # short for sure, by how much unknown
            if words:
                return self._("NOT, at most {hours}").format(hours=hours(e.upper))
            return self._("NOT ≤{hours}").format(hours=hours(e.upper))
        if e.lower > 0:
            if words:
                return self._("unknown, at least {hours}").format(hours=hours(e.lower))
            return self._("unknown ≥{hours}").format(hours=hours(e.lower))
        return self.state("unknown") if words else self._("unknown ?")


def _unnamed(fact: Fact) -> Fact:
    """``fact`` without its device's name, for a sentence that has named it already."""
    return Fact(fact.code, {**fact.args, "device": "", "name": ""})


def _texts(value: object) -> tuple[str, ...]:
    """A fact term that lists ids, as texts (``()`` when it is anything else)."""
    if isinstance(value, tuple):
        return tuple(v for v in value if isinstance(v, str))
    return ()


def _lower(outlook: Fact) -> float | None:
    e = outlook.facts("endurance")
    return e[0].number("lower") if e else None
