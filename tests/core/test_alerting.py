"""Alert rules and notification dispatch on injected time (pure core)."""

from __future__ import annotations

from commsmon.core.alerting import Alert, Notification
from commsmon.core.dispatch import Dispatcher, Route, Silence, Timing, site_context
from commsmon.core.facts import Fact
from commsmon.core.fleet import Fleet
from commsmon.core.model import Device, Inventory, Site
from commsmon.core.rules import AlertEngine, RuleSpec
from commsmon.core.snapshot import Snapshot
from commsmon.core.types import Observation

T0 = 1_764_400_000.0


def _fleet() -> Fleet:
    devices = [
        Device("rpt", "c", "pdt_repeater", "rpt", "snmp", "p"),
        Device("router", "v1", "router", "router", "snmp", "p", channel="public"),
        Device("cam", "v1", "camera", "cam", "snmp", "p", parent="router"),
        Device("sat", "v1", "satphone", "sat", "mqtt", "p", channel="satellite"),
        Device("router2", "v2", "router", "router2", "snmp", "p", channel="public"),
    ]
    sites = [Site("c", "Centre", "t", "centre"), Site("v1", "村一", "店子镇"),
             Site("v2", "村二", "西集镇")]
    fleet = Fleet(Inventory.build(sites, devices), T0)
    fleet.set_source("mqtt", True, T0)
    return fleet


class Harness:
    """Fleet -> rules -> dispatcher, stepping injected time one second at a time."""

    def __init__(self, timing: Timing | None = None, rules: dict[str, RuleSpec] | None = None):
        self.fleet = _fleet()
        self.engine = AlertEngine(rules)
        self.dispatcher = Dispatcher([Route({"severity": ("critical",)}, ("pager",))],
                                     ["log"], {"pager": "zh", "log": "en"}, timing or Timing())
        self.now = T0
        self.sent: list[Notification] = []
        self.snap: Snapshot | None = None

    def observe(self, device: str, ok: bool) -> None:
        self.fleet.observe(Observation(device, self.now, ok, conclusive=not ok))

    def run(self, seconds: float, every: dict[str, float] | None = None) -> None:
        """Advance time; devices in ``every`` answer (their state stays as set)."""
        end = self.now + seconds
        while self.now < end:
            self.now += 1
            for d in every or {}:
                self.fleet.observe(Observation(d, self.now, True))
            self.step()

    def step(self) -> None:
        snap = self.snap = self.fleet.evaluate(self.now)
        resolved = self.engine.update(snap)
        self.sent += self.dispatcher.tick(
            self.now, self.engine.firing, resolved, lambda s: site_context(snap, s))

    def to(self, receiver: str) -> list[Notification]:
        return [n for n in self.sent if n.receiver == receiver]


ALL = {"rpt": 1.0, "router": 1.0, "cam": 1.0, "sat": 1.0, "router2": 1.0}


def test_isolated_village_one_critical_then_one_resolution() -> None:
    """A village losing every channel: one critical notification naming it, one resolved."""
    h = Harness()
    h.run(5, ALL)
    assert h.sent == []
    h.observe("router", False)
    h.observe("sat", False)
    h.run(600, {"rpt": 1, "router2": 1})
    pager = h.to("pager")
    assert len(pager) == 1
    (note,) = pager
    assert note.status == "firing" and note.group == "site:v1"
    assert [a.rule for a in note.alerts] == ["site_isolated"]
    assert note.site is not None and note.site.name == "村一" and note.site.town == "店子镇"
    assert set(note.site.channels_lost) == {"public", "satellite"}
    assert note.language == "zh"
    # device alerts of an isolated village are folded in, not sent one by one
    assert all(n.group != "site:v1" or n.alerts[0].rule == "site_isolated" for n in h.sent
               if n.status == "firing")
    h.run(10, ALL)
    h.run(300, ALL)
    pager = h.to("pager")
    assert len(pager) == 2
    assert pager[1].status == "resolved"
    assert pager[1].alerts[0].rule == "site_isolated" and pager[1].alerts[0].resolved


def test_group_wait_gathers_and_for_delays() -> None:
    """Nothing fires before `for`; then the group waits group_wait before sending."""
    h = Harness(Timing(group_wait=30))
    h.run(2, ALL)
    h.observe("router", False)
    h.observe("sat", False)
    h.run(60 + 29, {"rpt": 1, "router2": 1})  # for 60 s, then 29 s of group_wait
    assert h.to("pager") == []
    h.run(2, {"rpt": 1, "router2": 1})
    assert len(h.to("pager")) == 1


def test_repeat_interval() -> None:
    """An unchanged firing group is repeated every repeat_interval."""
    h = Harness(Timing(repeat_interval=3600))
    h.run(2, ALL)
    h.observe("router", False)
    h.observe("sat", False)
    h.run(2 * 3600 + 200, {"rpt": 1, "router2": 1})
    assert len(h.to("pager")) == 3


def flap(h: Harness) -> None:
    """router2 down then up, every 30 s, for 10 minutes."""
    others = {"rpt": 1.0, "router": 1.0, "sat": 1.0}
    for i in range(20):
        if i % 2:
            h.run(30, {**others, "router2": 1.0})
        else:
            h.observe("router2", False)
            h.run(30, others)


def test_flapping_device_is_bounded_and_final_state_delivered() -> None:
    """A device up/down every 30 s for 10 min: few notifications, the last one says how it ended."""
    rules = {"device_down": RuleSpec(0, "critical")}
    h = Harness(rules=rules)
    h.run(2, ALL)
    flap(h)
    h.observe("router2", False)  # ends down
    h.run(1800, {"rpt": 1, "router": 1, "sat": 1})
    mine = [n for n in h.to("pager") if n.group == "site:v2"]
    assert 1 <= len(mine) <= 6, [n.status for n in mine]
    last = mine[-1]
    assert last.status == "firing"
    # its only device is down, so the village is isolated; the device alert rides inside
    assert [a.rule for a in last.alerts if not a.resolved] == ["site_isolated"]
    assert [a.rule for a in last.folded] == ["device_down"]
    assert not any(a.resolved for a in last.alerts)  # folded in, not resolved


def test_flapping_that_ends_up_is_resolved() -> None:
    """When the flapping stops with the device up, a resolution follows."""
    rules = {"device_down": RuleSpec(0, "critical")}
    h = Harness(rules=rules)
    h.run(2, ALL)
    flap(h)
    h.run(1800, ALL)
    mine = [n for n in h.to("pager") if n.group == "site:v2"]
    assert mine[-1].status == "resolved"


def test_silence_holds_back_without_resolving() -> None:
    """A silenced alert makes no news; when the silence ends it is told."""
    h = Harness()
    h.dispatcher.silences["m"] = Silence("m", {"site": "v1"}, T0, T0 + 1000, "eng", "maintenance")
    h.run(2, ALL)
    h.observe("router", False)
    h.observe("sat", False)
    h.run(900, {"rpt": 1, "router2": 1})
    assert h.to("pager") == []
    h.run(200, {"rpt": 1, "router2": 1})
    assert len(h.to("pager")) == 1


def test_monitor_cut_off_one_alert_no_flood() -> None:
    """Everything silent at once: one monitor_cut_off alert, no isolated villages."""
    h = Harness()
    h.run(2, ALL)
    for d in ("rpt", "router", "cam", "router2"):
        for _ in range(3):
            h.observe(d, False)
    h.observe("sat", False)
    h.run(600)
    pager = h.to("pager")
    assert [n.group for n in pager] == ["monitor"]
    assert pager[0].alerts[0].rule == "monitor_cut_off"


def test_restart_keeps_what_was_told() -> None:
    """Rule and dispatch memory survive dump/load: no re-send after a restart."""
    h = Harness()
    h.run(2, ALL)
    h.observe("router", False)
    h.observe("sat", False)
    h.run(300, {"rpt": 1, "router2": 1})
    assert len(h.to("pager")) == 1
    engine, dispatch = list(h.engine.dump()), h.dispatcher.dump()
    # a new process: fresh fleet (everything unknown), restored alerting memory
    h2 = Harness()
    h2.now = h.now + 900
    h2.fleet = Fleet(h.fleet.inventory, h2.now)
    h2.fleet.set_source("mqtt", True, h2.now)
    h2.engine.load(engine)
    h2.dispatcher.load(dispatch)
    h2.run(60)  # unknown while re-polling: nothing resolves, nothing re-fires
    h2.observe("router", False)
    h2.observe("sat", False)
    h2.run(600, {"rpt": 1, "router2": 1})
    assert [n for n in h2.to("pager") if n.group == "site:v1"] == []


def test_restored_alerts_are_found_whatever_order_their_labels_were_saved_in() -> None:
    """The rules find an alert by its labels in any order (a memory saved by another
    version): a restored alert goes on, never begins again beside itself."""
    h = Harness()
    h.run(2, ALL)
    h.observe("router", False)
    h.observe("sat", False)
    h.run(300, {"rpt": 1, "router2": 1})
    before = {fp: (f.alert.starts_at, f.pending_since) for fp, f in h.engine.active.items()}
    assert before
    saved = list(h.engine.dump())
    for item in saved:
        item["labels"] = dict(reversed(item["labels"].items()))
    h.engine.load(saved)
    h.run(60, {"rpt": 1, "router2": 1})
    after = {fp: (f.alert.starts_at, f.pending_since) for fp, f in h.engine.active.items()}
    assert after == before


def _alert(rule: str, **labels: str) -> Alert:
    return Alert(rule, "critical", {"alertname": rule, "severity": "critical", **labels})


def test_routes_union_and_default() -> None:
    """Every matching route applies; unmatched alerts go to the default receivers."""
    d = Dispatcher([Route({"severity": ("critical",)}, ("a",)), Route({"site": ("v1",)}, ("b",))],
                   ["log"], {})
    assert d.receivers_for({"severity": "critical", "site": "v1"}) == ("a", "b")
    assert d.receivers_for({"severity": "warning", "site": "v2"}) == ("log",)


def test_second_isolation_gets_a_new_key() -> None:
    """After a resolution the group is forgotten, but its notification keys never repeat:
    the outbox would take a repeated key for a re-send and drop the news."""
    h = Harness()
    for _ in range(3):
        h.run(2, ALL)
        h.observe("router", False)
        h.observe("sat", False)
        h.run(300, {"rpt": 1, "router2": 1})
        h.run(400, ALL)
    pager = h.to("pager")
    assert [n.status for n in pager] == ["firing", "resolved"] * 3
    keys = [n.key for n in pager]
    assert len(keys) == len(set(keys)), keys
    # and across a restart of the dispatcher's memory
    d = Dispatcher([], ["x"], {})
    d.load(h.dispatcher.dump())
    assert d.dump()["seq"] == h.dispatcher.dump()["seq"]


def test_state_dir_fault_warns_once_and_resolves() -> None:
    """A state directory the disk refuses is one monitor warning (villages untouched),
    resolved when the disk takes writes again."""
    h = Harness()
    h.run(5, ALL)
    h.fleet.set_fault("state_dir", Fact("state_dir",
                                        {"detail": "outbox.db: database or disk is full"}))
    h.run(120, ALL)
    (note,) = h.to("log")
    assert note.group == "monitor" and note.status == "firing"
    (alert,) = note.alerts
    assert (alert.rule, alert.severity, alert.labels["fault"]) == \
        ("monitor_fault", "warning", "state_dir")
    assert alert.facts == (Fact("state_dir", {"detail": "outbox.db: database or disk is full"}),)
    h.fleet.set_fault("state_dir", None)
    h.run(600, ALL)
    assert [n.status for n in h.to("log")] == ["firing", "resolved"]
    assert h.to("pager") == []


def test_clock_stepping_back_an_hour_does_not_delay_alerts() -> None:
    """A village isolated just before the wall clock steps back an hour is paged one
    `for` plus group_wait later on the new clock, not an hour later; so is its
    resolution."""
    h = Harness()
    h.run(5, ALL)
    h.observe("router", False)
    h.observe("sat", False)
    h.run(30, {"rpt": 1, "router2": 1})  # pending: `for` is 60 s
    h.now -= 3600
    h.run(120, {"rpt": 1, "router2": 1})
    assert [n.status for n in h.to("pager")] == ["firing"]
    h.run(310, ALL)
    assert [n.status for n in h.to("pager")] == ["firing", "resolved"]
