"""Writes commsmon's Grafana dashboards (deploy/grafana/dashboards/*.json).

Dashboards are code: edit the panels here and run
``.venv/bin/python deploy/grafana/dashboards.py``; a test fails if the JSON
files differ from what this writes, and a real Prometheus evaluates every
query in them.  Every panel reads the ``datasource`` variable, never a fixed
data-source UID, so the dashboards import into any Grafana.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent / "dashboards"
DS = {"type": "prometheus", "uid": "${datasource}"}
SCENARIOS = "network, road, power, all, now"


def _datasource_var() -> dict[str, Any]:
    return {"name": "datasource", "label": "Prometheus", "type": "datasource",
            "query": "prometheus", "current": {}, "hide": 0}


def _query_var(name: str, label: str, query: str, *, multi: bool = False) -> dict[str, Any]:
    return {"name": name, "label": label, "type": "query", "datasource": DS,
            "query": {"query": query, "refId": f"{name}-var"}, "definition": query,
            "refresh": 2, "sort": 1, "multi": multi, "includeAll": multi,
            "current": {}, "hide": 0}


def _target(expr: str, legend: str = "", *, instant: bool = False,
            table: bool = False, ref: str = "A") -> dict[str, Any]:
    target: dict[str, Any] = {"datasource": DS, "expr": expr, "refId": ref,
                              "legendFormat": legend or "__auto"}
    if instant:
        target.update(instant=True, range=False)
    if table:
        target["format"] = "table"
    return target


class _Layout:
    """Places panels left to right, 24 columns wide, and numbers them."""

    def __init__(self) -> None:
        self.panels: list[dict[str, Any]] = []
        self._x = self._y = self._row_h = 0

    def add(self, kind: str, title: str, targets: list[dict[str, Any]], *, w: int, h: int,
            description: str = "", **extra: Any) -> None:
        if self._x + w > 24:
            self._x, self._y, self._row_h = 0, self._y + self._row_h, 0
        panel = {"id": len(self.panels) + 1, "type": kind, "title": title,
                 "description": description, "datasource": DS, "targets": targets,
                 "gridPos": {"x": self._x, "y": self._y, "w": w, "h": h}, **extra}
        self.panels.append(panel)
        self._x += w
        self._row_h = max(self._row_h, h)


def _dashboard(uid: str, title: str, layout: _Layout, variables: list[dict[str, Any]],
               *, time_from: str = "now-6h", refresh: str = "30s") -> dict[str, Any]:
    return {
        "uid": uid, "title": title, "tags": ["commsmon"], "timezone": "browser",
        "schemaVersion": 39, "version": 1, "editable": True, "refresh": refresh,
        "time": {"from": time_from, "to": "now"},
        "templating": {"list": [_datasource_var(), *variables]},
        "annotations": {"list": []}, "panels": layout.panels,
    }


_STATE_COLOURS = {"mappings": [{"type": "value", "options": {
    "0": {"text": "no", "color": "red"}, "1": {"text": "yes", "color": "green"}}}]}


def overview() -> dict[str, Any]:
    """District overview: every village x scenario, reachability, outages, map."""
    p = _Layout()
    p.add("stat", "Villages isolated", [_target(
        'count(commsmon_site_reachable == 0) or vector(0)', instant=True)], w=6, h=4,
        description="Villages where no channel to the command centre works.",
        fieldConfig={"defaults": {"thresholds": {"mode": "absolute", "steps": [
            {"color": "green", "value": None}, {"color": "red", "value": 1}]}}})
    p.add("stat", "Active outages", [_target(
        "sum(commsmon_site_outage_active) or vector(0)", instant=True)], w=6, h=4,
        description="Outages (power, network, road) detected or declared now.")
    p.add("stat", "Devices down or unusable", [_target(
        "count(commsmon_device_up == 0) or vector(0)", instant=True)], w=6, h=4,
        description="Down (no answer), or lost: answering but unable to carry the channel "
                    "(not registered, no signal).")
    p.add("stat", "Villages not ready for 72 h without mains", [_target(
        'count(commsmon_site_scenario_ready{scenario="power"} == 0) or vector(0)',
        instant=True)], w=6, h=4)
    p.add("table", f"Readiness per village and scenario ({SCENARIOS})", [
        _target("max by (site, scenario) (commsmon_site_scenario_ready)", instant=True,
                table=True, ref="A"),
    ], w=12, h=14, description="1: the village keeps a channel for its target hours.",
        transformations=[{"id": "groupingToMatrix", "options": {
            "columnField": "scenario", "rowField": "site", "valueField": "Value"}}],
        fieldConfig={"defaults": _STATE_COLOURS})
    p.add("table", "Reachable, outages and channels surviving a power cut", [
        _target("max by (site) (commsmon_site_reachable)", instant=True, table=True, ref="A"),
        _target("sum by (site) (commsmon_site_outage_active)", instant=True, table=True,
                ref="B"),
        _target('max by (site) (commsmon_site_channels_surviving{scenario="power"})',
                instant=True, table=True, ref="C"),
    ], w=12, h=14, transformations=[{"id": "merge", "options": {}}])
    p.add("geomap", "Villages on the map (green reachable, red isolated)", [_target(
        "max by (site) (commsmon_site_reachable)"
        " * on (site) group_left (name, town, latitude, longitude) commsmon_site_info",
        instant=True, table=True)], w=24, h=14,
        options={"view": {"id": "fit"}, "layers": [{
            "type": "markers", "name": "villages",
            "location": {"mode": "coords", "latitude": "latitude", "longitude": "longitude"},
            "config": {"color": {"field": "Value"}, "size": {"fixed": 6}}}]},
        fieldConfig={"defaults": {"thresholds": {"mode": "absolute", "steps": [
            {"color": "red", "value": None}, {"color": "green", "value": 1}]}}})
    p.add("timeseries", "Isolated villages and active outages over time", [
        _target("count(commsmon_site_reachable == 0) or vector(0)", "isolated", ref="A"),
        _target("sum(commsmon_site_outage_active) or vector(0)", "outages", ref="B"),
    ], w=24, h=8)
    return _dashboard("commsmon-overview", "commsmon: district overview", p, [])


def village() -> dict[str, Any]:
    """One village: devices, channels, endurance, readings over time."""
    s = '{site="$site"}'
    p = _Layout()
    p.add("table", "Devices (current state)", [_target(
        f"(commsmon_device_state{s} == 1) * on (device) group_left (name, profile)"
        f" commsmon_device_info{s}", instant=True, table=True)], w=12, h=10)
    p.add("table", "Channels to the command centre", [_target(
        f"commsmon_site_channel_state{s} == 1", instant=True, table=True)], w=12, h=10)
    # Endurance is exported in seconds (base unit); officers read hours.
    p.add("bargauge", "Scenario endurance, hours (target line at the village's target)", [
        _target(f"(commsmon_site_scenario_endurance_seconds{s}"
                f" or commsmon_site_scenario_endurance_at_least_seconds{s}) / 3600",
                "{{scenario}}", instant=True, ref="A"),
        _target(f"commsmon_site_target_seconds{s} / 3600", "target", instant=True, ref="B"),
    ], w=12, h=8, description="now: with the outages active now. Where endurance is "
                              "unknown, the hours that are certain (at least).",
        fieldConfig={"defaults": {"unit": "h"}})
    p.add("stat", "Reachable until (outages active now)", [_target(
        f"commsmon_site_reachable_until_timestamp_seconds{s} * 1000", "until",
        instant=True)], w=12, h=8, fieldConfig={"defaults": {"unit": "dateTimeAsLocal"}},
        description="Absent while no outage bears on the village (it lasts).")
    p.add("bargauge", "Device endurance without mains, hours", [_target(
        f"commsmon_device_endurance_seconds{s} / 3600", "{{device}}", instant=True)],
        w=12, h=8, fieldConfig={"defaults": {"unit": "h"}})
    p.add("timeseries", "Battery charge", [_target(
        f"commsmon_battery_charge_ratio{s}", "{{device}}")], w=8, h=8,
        fieldConfig={"defaults": {"unit": "percentunit", "min": 0, "max": 1}})
    p.add("timeseries", "Generator fuel", [_target(
        f"commsmon_generator_fuel_ratio{s}", "{{device}}")], w=8, h=8,
        fieldConfig={"defaults": {"unit": "percentunit", "min": 0, "max": 1}})
    p.add("timeseries", "Radio signal, dBm", [_target(
        f"commsmon_signal_strength_dbm{s}", "{{device}}")], w=8, h=8)
    p.add("timeseries", "Uplink traffic (4G router)", [
        _target(f"commsmon_uplink_receive_bytes_per_second{s}", "{{device}} in", ref="A"),
        _target(f"commsmon_uplink_transmit_bytes_per_second{s}", "{{device}} out", ref="B"),
    ], w=24, h=8, fieldConfig={"defaults": {"unit": "Bps"}})
    p.add("state-timeline", "Outages", [_target(
        f"commsmon_site_outage_active{s}", "{{outage}}")], w=12, h=6)
    p.add("state-timeline", "Device states", [_target(
        f"commsmon_device_up{s}", "{{device}}")], w=12, h=6)
    return _dashboard("commsmon-village", "commsmon: village detail", p, [
        _query_var("site", "Village", 'label_values(commsmon_site_info{role="village"}, site)'),
    ])


def availability() -> dict[str, Any]:
    """Availability per village and device from the seconds-in-state counters."""
    up, known = 'state=~"up|degraded"', 'state=~"up|degraded|lost|down"'
    p = _Layout()
    for window in ("1d", "7d", "30d"):
        p.add("stat", f"Mean village availability, {window}", [_target(
            f"avg(commsmon:site_availability:ratio{window})", instant=True)], w=8, h=4,
            description="Time up or degraded over time known; unknown (not seen, monitor "
                        "cut off) is left out, and shown apart below.",
            fieldConfig={"defaults": {"unit": "percentunit", "decimals": 2}})
    p.add("table", "Villages over the dashboard's range (unknown apart)", [
        _target(f"sum by (site) (increase(commsmon_site_state_seconds_total{{{up}}}[$__range]))"
                f" / sum by (site) (increase(commsmon_site_state_seconds_total{{{known}}}"
                "[$__range]))", instant=True, table=True, ref="A"),
        _target('sum by (site) (increase(commsmon_site_state_seconds_total{state="unknown"}'
                "[$__range])) / sum by (site) (increase(commsmon_site_state_seconds_total"
                "[$__range]))", instant=True, table=True, ref="B"),
    ], w=12, h=14, transformations=[{"id": "merge", "options": {}}],
        fieldConfig={"defaults": {"unit": "percentunit", "decimals": 2}})
    p.add("table", "Devices over the dashboard's range (unknown apart)", [
        _target("sum by (site, device, kind) (increase(commsmon_device_state_seconds_total"
                f"{{{up}}}[$__range])) / sum by (site, device, kind) "
                f"(increase(commsmon_device_state_seconds_total{{{known}}}[$__range]))",
                instant=True, table=True, ref="A"),
        _target('sum by (site, device, kind) (increase(commsmon_device_state_seconds_total'
                '{state="unknown"}[$__range])) / sum by (site, device, kind) '
                "(increase(commsmon_device_state_seconds_total[$__range]))",
                instant=True, table=True, ref="B"),
    ], w=12, h=14, transformations=[{"id": "merge", "options": {}}],
        fieldConfig={"defaults": {"unit": "percentunit", "decimals": 2}})
    p.add("timeseries", "Village availability per day", [_target(
        "commsmon:site_availability:ratio1d", "{{site}}")], w=24, h=8,
        fieldConfig={"defaults": {"unit": "percentunit"}})
    return _dashboard("commsmon-availability", "commsmon: availability", p, [],
                      time_from="now-7d", refresh="5m")


def self_health() -> dict[str, Any]:
    """The monitor itself: polls, MQTT, evaluation, alert delivery, memory."""
    r = "[$__rate_interval]"
    p = _Layout()
    p.add("stat", "Scraped", [_target('up{job="commsmon"}', "{{instance}}", instant=True)],
          w=6, h=4, fieldConfig={"defaults": _STATE_COLOURS})
    p.add("stat", "MQTT session", [_target("commsmon_mqtt_connected", "{{instance}}",
                                           instant=True)], w=6, h=4,
          fieldConfig={"defaults": _STATE_COLOURS})
    p.add("stat", "Last config reload good", [_target(
        "commsmon_config_last_reload_success", "{{instance}}", instant=True)], w=6, h=4,
        fieldConfig={"defaults": _STATE_COLOURS})
    p.add("stat", "Alerts waiting in the outbox", [_target(
        "sum(commsmon_outbox_pending)", instant=True)], w=6, h=4)
    p.add("timeseries", "SNMP polls by result, per second", [_target(
        f"sum by (result) (rate(commsmon_snmp_requests_total{r}))", "{{result}}")], w=12, h=8)
    p.add("timeseries", "SNMP poll duration and lateness, p99", [
        _target("histogram_quantile(0.99, sum by (le) "
                f"(rate(commsmon_snmp_request_duration_seconds_bucket{r})))", "duration",
                ref="A"),
        _target("histogram_quantile(0.99, sum by (le) "
                f"(rate(commsmon_snmp_poll_lateness_seconds_bucket{r})))", "lateness",
                ref="B"),
    ], w=12, h=8, fieldConfig={"defaults": {"unit": "s"}})
    p.add("timeseries", "MQTT messages by result, per second", [_target(
        f"sum by (kind, result) (rate(commsmon_mqtt_messages_total{r}))",
        "{{kind}} {{result}}")], w=12, h=8)
    p.add("timeseries", "Evaluation time per run", [_target(
        f"rate(commsmon_evaluation_duration_seconds_sum{r})"
        f" / rate(commsmon_evaluation_duration_seconds_count{r})", "{{instance}}")],
        w=12, h=8, fieldConfig={"defaults": {"unit": "s"}})
    p.add("timeseries", "Notifications by receiver and result, per second", [_target(
        f"sum by (receiver, result) (rate(commsmon_alert_notifications_total{r}))",
        "{{receiver}} {{result}}")], w=12, h=8)
    p.add("timeseries", "Oldest notification waiting", [_target(
        "max(commsmon_outbox_oldest_age_seconds)", "oldest")], w=12, h=8,
        fieldConfig={"defaults": {"unit": "s"}})
    p.add("timeseries", "State files on disk (0: kept in memory, disk full or read-only)", [
        _target("commsmon_state_file_writable", "{{instance}} {{file}}")], w=12, h=8)
    p.add("timeseries", "Event-loop tasks (growth is a leak)", [_target(
        "commsmon_event_loop_tasks", "{{instance}}")], w=12, h=8)
    p.add("timeseries", "Resident memory", [_target(
        'process_resident_memory_bytes{job="commsmon"}', "{{instance}}")], w=12, h=8,
        fieldConfig={"defaults": {"unit": "bytes"}})
    p.add("timeseries", "CPU, share of one core", [_target(
        f'rate(process_cpu_seconds_total{{job="commsmon"}}{r})', "{{instance}}")], w=12, h=8,
        fieldConfig={"defaults": {"unit": "percentunit"}})
    return _dashboard("commsmon-self", "commsmon: self-health", p, [], time_from="now-3h")


DASHBOARDS = {"overview": overview, "village": village, "availability": availability,
              "self-health": self_health}


def render() -> dict[str, str]:
    """File name -> JSON text of every dashboard."""
    return {f"commsmon-{name}.json": json.dumps(build(), indent=2, ensure_ascii=False) + "\n"
            for name, build in DASHBOARDS.items()}


if __name__ == "__main__":
    OUT.mkdir(exist_ok=True)
    for file_name, text in render().items():
        (OUT / file_name).write_text(text, encoding="utf-8")
        print(OUT / file_name)
