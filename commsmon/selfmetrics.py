"""The daemon's own counters and histograms (ordinary module-level metrics).

State-held metrics (devices, sites) come from the custom collector in
:mod:`commsmon.outputs.metrics`; these count what the daemon did.  Label
values are fixed sets, never taken from payloads.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import REGISTRY, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

__all__ = [
    "ACKS",
    "ACKS_BROKEN",
    "CONFIG_RELOAD_SUCCESS",
    "CONFIG_RELOAD_TIME",
    "ESCALATION_STEPS",
    "EVALUATION_DURATION",
    "EVENT_LOOP_TASKS",
    "HA_ROLE",
    "MQTT_CONNECTED",
    "MQTT_CONNECTS",
    "MQTT_MESSAGES",
    "NOTIFICATIONS",
    "OUTBOX_OLDEST_AGE",
    "OUTBOX_PENDING",
    "READING_ERRORS",
    "RECEIVER_REJECTING",
    "RECEIVER_THROTTLED",
    "SHARD_FORWARDED",
    "SNMP_DURATION",
    "SNMP_LATENESS",
    "SNMP_REPLIES_DROPPED",
    "SNMP_REQUESTS",
    "SNMP_RETRANSMISSIONS",
    "STATE_FILE_WRITABLE",
    "TIME_TO_ACK",
    "TRAPS_DROPPED",
    "TRAPS_LISTENING",
    "TRAPS_RECEIVED",
]

SNMP_REQUESTS = Counter(
    "commsmon_snmp_requests",
    "SNMP polls by result: ok, timeout, error, auth_error, unexpected_source "
    "(answered only from an address the target does not allow), protocol_error.",
    ["result"],
)
SNMP_DURATION = Histogram(
    "commsmon_snmp_request_duration_seconds",
    "Seconds from sending an SNMP poll to its answer or give-up.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 16),
)
SNMP_LATENESS = Histogram(
    "commsmon_snmp_poll_lateness_seconds",
    "Seconds a poll started after its scheduled slot (event loop or concurrency bound "
    "too busy).",
    buckets=(0.01, 0.05, 0.1, 0.5, 1, 2, 5, 10, 30, 60),
)
SNMP_REPLIES_DROPPED = Counter(
    "commsmon_snmp_replies_dropped",
    "SNMP datagrams dropped instead of answering a request, by reason: unexpected_source "
    "(a matching reply from an address the target does not allow), protocol_error (a "
    "request id cut to 16 bits, an undecodable datagram, a varbind count that does not "
    "fit), unmatched (a duplicate, or later than the last attempt).",
    ["reason"],
)
SNMP_RETRANSMISSIONS = Counter(
    "commsmon_snmp_retransmissions",
    "SNMP requests sent again, same request id, after a timeout passed without a reply.",
)
EVALUATION_DURATION = Histogram(
    "commsmon_evaluation_duration_seconds",
    "Seconds one evaluation of the fleet (state, readiness, outages, alert rules) took.",
    buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5),
)
MQTT_MESSAGES = Counter(
    "commsmon_mqtt_messages",
    "MQTT messages received by topic kind (status, telemetry, checkin, peer: an "
    "observation from another shard; unrouted) and result: ok, unknown_topic, bad_payload, "
    "too_large, not_object, bad_json, bad_checkin, dropped (internal queue full).",
    ["kind", "result"],
)
SHARD_FORWARDED = Counter(
    "commsmon_shard_forwarded",
    "Observations handed to another shard over the broker, by result: sent, dropped "
    "(outgoing queue full while the broker was away).",
    ["result"],
)
MQTT_CONNECTED = Gauge(
    "commsmon_mqtt_connected",
    "1 while the daemon holds a session with the MQTT broker.",
)
MQTT_CONNECTS = Counter(
    "commsmon_mqtt_connect_attempts",
    "Connection attempts to the MQTT broker by result: ok, error, taken_over (another "
    "client uses our client id).",
    ["result"],
)
READING_ERRORS = Counter(
    "commsmon_reading_errors",
    "Readings that would not decode, by source and reason; the value is skipped.",
    ["source", "reason"],
)
CONFIG_RELOAD_SUCCESS = Gauge(
    "commsmon_config_last_reload_success",
    "1 if the last configuration load (start or SIGHUP) succeeded, 0 if the file was "
    "rejected and the previous configuration keeps running.",
)
CONFIG_RELOAD_TIME = Gauge(
    "commsmon_config_last_reload_success_timestamp_seconds",
    "When the configuration was last loaded successfully, Unix epoch seconds.",
)
STATE_FILE_WRITABLE = Gauge(
    "commsmon_state_file_writable",
    "1 while a state file (outbox, store) is written to disk, 0 while the disk refuses "
    "it (full, read-only) and it is kept in memory.",
    ["file"],
)
EVENT_LOOP_TASKS = Gauge(
    "commsmon_event_loop_tasks",
    "asyncio tasks alive in the daemon's event loop, counted at each evaluation (a leak "
    "shows as growth).",
)
RECEIVER_REJECTING = Gauge(
    "commsmon_receiver_rejecting",
    "1 while an alert receiver refuses our messages or credentials (a robot's keyword, "
    "signature or IP allow-list check, a wrong key, HTTP 401/403), 0 once it accepts one "
    "again; timeouts and 5xx are not rejections.",
    ["receiver"],
)
NOTIFICATIONS = Counter(
    "commsmon_alert_notifications",
    "Notification outcomes by receiver and result: delivered (accepted), failed "
    "(one failed attempt; it is retried), given_up (no more attempts), withdrawn (an "
    "escalation step no longer due when its turn came: acknowledged or resolved), "
    "handed_on (an escalation step passed to its next receiver), told_by_peer (the "
    "other replica of an HA pair, the leader, told the receiver; dropped here).",
    ["receiver", "result"],
)
RECEIVER_THROTTLED = Gauge(
    "commsmon_receiver_throttled",
    "1 while an alert receiver's budget is spent (a robot's per-minute or per-second "
    "limit) and notifications wait for it, 0 otherwise; escalation steps pass to the "
    "step's next receiver meanwhile.",
    ["receiver"],
)
ACKS = Counter(
    "commsmon_alert_acks",
    "Alert groups acknowledged (console, ack link or API).",
)
ACKS_BROKEN = Counter(
    "commsmon_alert_acks_broken",
    "Acknowledgements broken because the group got worse (a new alert, a higher severity).",
)
ESCALATION_STEPS = Counter(
    "commsmon_alert_escalation_steps",
    "Escalation steps taken, by the role notified.",
    ["role"],
)
TIME_TO_ACK = Histogram(
    "commsmon_alert_time_to_ack_seconds",
    "Seconds from a group beginning to fire to its acknowledgement.",
    buckets=(60, 120, 300, 600, 900, 1800, 3600, 7200, 14400),
)
HA_ROLE = Gauge(
    "commsmon_ha_role",
    "This replica's role, 1 for the one it holds: single (no ha section), leader (holds "
    "the pair's lease: sends to every receiver), standby (pushes to Alertmanager only, "
    "takes over when the lease lapses), alone (etcd unreachable: sends everything).",
    ["role"],
)
OUTBOX_PENDING = Gauge(
    "commsmon_outbox_pending",
    "Notifications in the alert outbox not yet delivered or given up.",
)
OUTBOX_OLDEST_AGE = Gauge(
    "commsmon_outbox_oldest_age_seconds",
    "Seconds since the oldest pending notification was added to the outbox; 0 when none.",
)
TRAPS_RECEIVED = Counter(
    "commsmon_traps_received",
    "SNMP traps and informs applied, by site, device and trap (the profile's name for it; "
    "'other' for a trap OID its profile does not know).",
    ["site", "device", "trap"],
)
TRAPS_LISTENING = Gauge(
    "commsmon_traps_listening",
    "1 while every traps.listen address is bound, 0 while one cannot be (retried every "
    "30 s; the log says why).",
)
TRAPS_DROPPED = Counter(
    "commsmon_traps_dropped",
    "SNMP traps and informs dropped, by reason: unknown_source (outside traps.allow, or no "
    "or several devices match), bad_community, v3_unknown_engine (an engine ID or user not "
    "configured), v3_auth (a wrong key), rate_limited, "
    "malformed (no snmpTrapOID), queue_full.",
    ["reason"],
)


class _UdpReceiveErrors(Collector):
    """The kernel's count of UDP datagrams dropped because a socket's receive buffer was
    full (``RcvbufErrors`` in /proc/net/snmp, the whole host): a trap storm that
    outruns the receiver shows here, not in commsmon_traps_dropped_total."""

    def collect(self) -> Iterator[CounterMetricFamily]:
        try:
            with open("/proc/self/net/snmp", encoding="ascii") as table:  # ProcSubset=pid
                udp = [line.split()[1:] for line in table if line.startswith("Udp:")]
            value = float(dict(zip(udp[0], udp[1], strict=True))["RcvbufErrors"])
        except (OSError, LookupError, ValueError):
            return
        yield CounterMetricFamily(
            "commsmon_udp_receive_buffer_errors",
            "UDP datagrams the kernel dropped for a full socket receive buffer, whole host "
            "(/proc/net/snmp RcvbufErrors).", value=value)


REGISTRY.register(_UdpReceiveErrors())
