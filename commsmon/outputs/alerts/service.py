"""Alerting, wired: rules, dispatch and escalation (core) -> persistent outbox -> receivers.

Each fleet evaluation goes through the rules engine, the dispatcher and the
escalation state (acks, policies' steps); the notifications they decide are
written to the outbox, with the engine's, the dispatcher's and the
escalation's memory, before the deliverer is woken to send them.  On start
that memory comes back from the outbox, so a restart neither re-sends what
was delivered nor forgets what was pending, acknowledged or changed meanwhile.
An escalation step is checked again just before it is sent (still firing,
still unacknowledged, the same episode), and each message gets its own ack
link as it goes (:mod:`commsmon.outputs.alerts.links`).
"""

from __future__ import annotations

import asyncio
import json
import uuid
import zlib
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import tzinfo
from pathlib import Path
from typing import Literal

import orjson
import structlog

from commsmon.config.alerting import AlertingSpec
from commsmon.core.alerting import Alert, Notification, group_of
from commsmon.core.dispatch import Dispatcher, Silence, site_context
from commsmon.core.drills import Drill
from commsmon.core.escalation import Ack, Escalation, Step, group_levels
from commsmon.core.facts import Fact
from commsmon.core.roster import Roster, Shift
from commsmon.core.rules import AlertEngine, dump_held
from commsmon.core.snapshot import Snapshot
from commsmon.outputs.alerts.delivery import Deliverer, FaultCallback, Handover
from commsmon.outputs.alerts.links import AckLinks
from commsmon.outputs.alerts.receivers import build_receiver
from commsmon.selfmetrics import ACKS, ACKS_BROKEN, ESCALATION_STEPS, TIME_TO_ACK
from commsmon.state.dutylog import Event
from commsmon.state.outbox import Outbox, PackedText

__all__ = ["AlertService"]

log = structlog.get_logger("commsmon.alerts")
_MAX_CHANGES = 10_000
# Seconds the engine's saved memory may lag in firing alerts' facts alone (which
# alerts are pending or firing, and since when, is saved at once; unchanged, nothing
# is saved again; a pending alert's facts are not saved): encoding the facts of
# thousands of alerts at every evaluation was a tenth of a large fleet's CPU.
_SAVE_FACTS_EVERY = 60.0


class AlertService:
    """Rules, dispatch, outbox and delivery for one daemon.

    Args:
        spec: the ``alerting`` configuration.
        path: the outbox database file.
        tz: time zone for message times.
        clock: wall clock, epoch seconds.
        on_fault: told when a receiver starts (a ``receiver_rejecting`` fact)
            or stops (``None``) rejecting our messages, under the fault name
            ``receiver:<name>`` (``Fleet.set_fault``); on the event loop.
        external_url: the console's address for ack links (``http.external_url``);
            ``None``: messages carry none.
        handover: this replica's part in an HA pair (:class:`commsmon.ha.Replica`);
            ``None``: a single server, sending everything.
    """

    def __init__(
        self,
        spec: AlertingSpec,
        path: Path,
        tz: tzinfo,
        clock: Callable[[], float],
        on_fault: FaultCallback | None = None,
        external_url: str | None = None,
        handover: Handover | None = None,
    ) -> None:
        self.spec = spec
        self._clock = clock
        esc = spec.escalation
        self.escalation = Escalation(None, esc.ack_timeout, esc.rules())
        self.roster = Roster.of(Shift(s.start.timestamp(), s.end.timestamp(), s.role, s.name,
                                      s.phone) for s in spec.roster)
        self._firing: dict[str, list[Alert]] = {}  # group -> alerts firing, at the last step
        # (engine.changes, engine.revised, when) the engine was last saved
        self._saved: tuple[int, int, float] | None = None
        self._changes: list[Event] = []  # alerts that began or ended, for the timeline
        self.engine = AlertEngine(spec.rule_specs(), tuple(spec.countdown_hours))
        routes, default = spec.route_list()
        languages = {r.name: r.language for r in spec.receivers}
        self.dispatcher = Dispatcher(routes, default, languages, spec.timing())
        self.receivers = {r.name: build_receiver(r, tz) for r in spec.receivers}
        self.outbox = Outbox(path)
        self.links = AckLinks(self.outbox, external_url, esc.link_ttl, self.escalation, clock)
        self.deliverer = Deliverer(
            self.outbox, self.receivers, clock=clock, give_up_after=spec.give_up_after,
            on_fault=on_fault, withdrawn=self._withdrawn, decorate=self._with_link,
            handover=handover,
        )
        self._lock = asyncio.Lock()

    def restore(self) -> None:
        """Bring back the rules' and the dispatcher's memory, API silences and which
        receivers reject us (blocking)."""
        try:
            engine = self.outbox.get_state("engine")
            if engine:
                self.engine.load(json.loads(engine))
        except (zlib.error, ValueError, TypeError, KeyError) as exc:
            # Monitoring matters more than this memory: the rules start without it.
            self.engine.load([])
            log.error("alert rules' saved memory unreadable; starting without it (pending "
                      "and firing alerts are judged anew, their 'for' timers from now)",
                      error=f"{type(exc).__name__}: {exc}"[:200])
        dispatcher = self.outbox.get_state("dispatcher")
        if dispatcher:
            self.dispatcher.load(json.loads(dispatcher))
        for s in self.spec.config_silences():
            self.dispatcher.silences[s.id] = s
        for item in json.loads(self.outbox.get_state("silences") or "[]"):
            silence = Silence(item["id"], item["matchers"], item["starts_at"], item["ends_at"],
                              item["by"], item["comment"])
            self.dispatcher.silences[silence.id] = silence
        escalation = self.outbox.get_state("escalation")
        if escalation:
            self.escalation.load(json.loads(escalation))
        uploaded = self.outbox.get_state("roster")
        if uploaded:
            self.roster = Roster.of(Shift(**s) for s in json.loads(uploaded))
        self.links.restore()
        self.deliverer.restore()

    async def step(self, snap: Snapshot, drills: Mapping[str, Drill] | None = None) -> int:
        """Evaluate rules on ``snap``; persist and hand over what is due. Returns how many.

        ``drills``: site -> the drill running there; that site's notifications are the
        drill's (marked, and sent to ``drill_receivers`` when configured)."""
        drills = drills or {}
        async with self._lock:
            now = snap.at
            resolved = self.engine.update(snap)
            firing = list(self.engine.firing)
            before = {a.fingerprint for group in self._firing.values() for a in group}
            self._changes += [_event(a, now, "alert_firing", drills) for a in firing
                              if a.fingerprint not in before and a.labels.get("site")]
            self._changes += [_event(a, now, "alert_resolved", drills) for a in resolved
                              if a.labels.get("site")]
            del self._changes[:-_MAX_CHANGES]  # nobody reads them (tests): keep the latest
            levels = group_levels(firing)
            broken = self.escalation.update({k: v[0] for k, v in levels.items()}, now,
                                            {k: v[1] for k, v in levels.items()})
            for group in broken:
                ACKS_BROKEN.inc()
                log.warning("acknowledgement broken: the group got worse", group=group)
            self._firing = {}
            for alert in firing:
                self._firing.setdefault(group_of(alert), []).append(alert)
            notes = self.dispatcher.tick(
                now, firing, resolved, lambda s: site_context(snap, s),
                lambda group: self.escalation.state(group, now) == "acknowledged",
            )
            notes += [note for group, step, n in self.escalation.due(now)
                      for note in self._step_notes(group, step, n, snap)]
            notes = self._mark_drills(notes, drills)
            shape, facts, engine = self.engine.changes, self.engine.revised, None
            saved = self._saved
            if saved is None or shape != saved[0] or (
                    facts != saved[1] and not 0 <= now - saved[2] < _SAVE_FACTS_EVERY):
                engine = await _encoded(self.engine.held())
            dispatcher = json.dumps(self.dispatcher.dump(), ensure_ascii=False)
            escalation = json.dumps(self.escalation.dump(), ensure_ascii=False)

            def persist() -> list[bool]:
                added = [self.outbox.add(note, now) for note in notes]
                if engine is not None:
                    self.outbox.put_state("engine", engine)
                self.outbox.put_state("dispatcher", dispatcher)
                self.outbox.put_state("escalation", escalation)
                return added

            added = await asyncio.to_thread(persist)
            if engine is not None:  # saved: facts alone may now lag a minute
                self._saved = (shape, facts, now)
        for note, new in zip(notes, added, strict=True):
            # A key already in the outbox is a re-decision after a crash (same news)...
            # or a bug; either way it is not sent twice, and it is said.
            log.log(20 if new else 30, "notification queued" if new else
                    "notification key already in the outbox; not sent again",
                    receiver=note.receiver, group=note.group, status=note.status,
                    alerts=[a.rule for a in note.alerts], key=note.key)
        if notes:
            self.deliverer.wake()
        return len(notes)

    def changes(self) -> list[Event]:
        """Alerts that began firing or resolved since the last call (for the timeline)."""
        out, self._changes = self._changes, []
        return out

    def firing_in(self, group: str) -> tuple[Alert, ...]:
        """The alerts firing in ``group`` at the last step."""
        return tuple(self._firing.get(group, ()))

    def _step_notes(self, group: str, step: Step, n: int, snap: Snapshot) -> list[Notification]:
        """Step ``n`` of ``group``'s policy: to the role's holder now, through its first
        receiver (the others take over if it is throttled or failing) and each of its
        ``also`` receivers."""
        ESCALATION_STEPS.labels(role=step.notify).inc()
        now = snap.at
        holder = self.roster.holder(step.notify, now)
        site = site_context(snap, group.removeprefix("site:")) \
            if group.startswith("site:") else None
        opened = self.escalation.opened(group) or now
        episode = self.escalation.episode(group)
        fact = Fact("escalation", {
            "step": n, "role": step.notify, "after": step.after, "since": opened,
            "names": (holder.name,) if holder else (), "phones": (holder.phone,)
            if holder and holder.phone else (), "restarts": episode})
        log.info("escalation step", group=group, step=n, role=step.notify, via=step.via,
                 also=step.also, holder=holder.name if holder else None)
        if site is not None:  # history: who was called, when, at which step
            self._changes.append(Event(now, site.id, "escalation_step", step.notify, detail={
                "step": str(n), "name": holder.name if holder else ""}))
        routes = [(step.via[0], tuple(step.via[1:])), *((r, ()) for r in step.also)]
        return [Notification(
            key=f"esc/{group}/{opened:.0f}/{episode}/{n}", receiver=receiver, group=group,
            status="firing", alerts=tuple(self._firing.get(group, ())),
            site=site, created_at=now,
            language=self.dispatcher.languages.get(receiver, "zh"), kind="escalation",
            escalation=fact, fallbacks=fallbacks) for receiver, fallbacks in routes]

    def _mark_drills(self, notes: list[Notification],
                     drills: Mapping[str, Drill]) -> list[Notification]:
        """Notifications of sites in a drill, marked with its id; with
        ``drill_receivers``, sent there instead (one each)."""
        if not drills:
            return notes
        out, seen = [], set()
        for note in notes:
            drill = drills.get(note.group.removeprefix("site:")) \
                if note.group.startswith("site:") else None
            if drill is None:
                out.append(note)
                continue
            note = replace(note, drill=drill.id)
            targets = self.spec.drill_receivers
            if targets is None:
                out.append(note)
                continue
            # the same news went to several receivers: once to each drill receiver
            what = (note.group, note.status, note.kind, note.created_at,
                    note.escalation.number("step") if note.escalation else None)
            if what in seen:
                continue
            seen.add(what)
            out += [replace(note, receiver=r, key=f"{note.key}/drill/{r}", fallbacks=(),
                            language=self.dispatcher.languages.get(r, "zh"))
                    for r in targets]
        return out

    def _withdrawn(self, note: Notification) -> str | None:
        """Why a pending escalation step must not go out now (re-checked just before
        sending), ``None`` when it still must."""
        if note.kind != "escalation" or note.escalation is None:
            return None
        now = self._clock()
        state = self.escalation.state(note.group, now)
        if state != "firing":
            return f"the group is {state}"
        if note.escalation.number("restarts") != self.escalation.episode(note.group):
            return "the policy started over since"
        return None

    def _with_link(self, note: Notification) -> Notification:
        """The notification with its own ack link, while its group fires (blocking)."""
        if note.status != "firing":
            return note
        role = note.escalation.text("role") if note.escalation is not None else ""
        url = self.links.issue(note.group, role or "")
        return note if url is None else replace(note, ack_url=url)

    async def acknowledge(self, group: str, by: str) -> Ack | None:
        """``by`` acknowledges ``group`` as it is now; ``None`` if it is not firing."""
        now = self._clock()
        async with self._lock:
            level = self.escalation.level(group)
            if level is None:
                return None
            opened = self.escalation.opened(group) or now
            ack = self.escalation.acknowledge(group, by, level, now)
            await asyncio.to_thread(self._save_escalation)
        ACKS.inc()
        TIME_TO_ACK.observe(max(now - opened, 0.0))
        log.info("acknowledged", group=group, by=by, until=ack.until if ack else None)
        return ack

    async def unacknowledge(self, group: str) -> bool:
        """Withdraw ``group``'s ack: it fires again and its policy starts over."""
        async with self._lock:
            done = self.escalation.unacknowledge(group, self._clock())
            if done:
                await asyncio.to_thread(self._save_escalation)
        return done

    async def escalate_now(self, group: str) -> bool:
        """Take ``group``'s next step now (at the next evaluation)."""
        async with self._lock:
            done = self.escalation.escalate_now(group, self._clock())
            if done:
                await asyncio.to_thread(self._save_escalation)
        return done

    async def set_roster(self, shifts: list[Shift]) -> None:
        """Replace the roster by an uploaded one (kept in the outbox across restarts)."""
        self.roster = Roster.of(shifts)
        doc = json.dumps([{"start": s.start, "end": s.end, "role": s.role, "name": s.name,
                           "phone": s.phone} for s in self.roster.shifts], ensure_ascii=False)
        await asyncio.to_thread(self.outbox.put_state, "roster", doc)

    def _save_escalation(self) -> None:
        self.outbox.put_state("escalation",
                              json.dumps(self.escalation.dump(), ensure_ascii=False))

    async def add_silence(
        self, matchers: dict[str, str], starts_at: float, ends_at: float, by: str, comment: str
    ) -> Silence:
        """Create and persist a silence."""
        silence = Silence(uuid.uuid4().hex[:12], matchers, starts_at, ends_at, by, comment)
        async with self._lock:
            self.dispatcher.silences[silence.id] = silence
            await asyncio.to_thread(self._save_silences)
        return silence

    async def delete_silence(self, silence_id: str) -> bool:
        """Expire a silence now; ``False`` if there is none by that id (or it is config's)."""
        async with self._lock:
            if silence_id.startswith("config-") or silence_id not in self.dispatcher.silences:
                return False
            del self.dispatcher.silences[silence_id]
            await asyncio.to_thread(self._save_silences)
        return True

    def _save_silences(self) -> None:
        items = [
            {"id": s.id, "matchers": dict(s.matchers), "starts_at": s.starts_at,
             "ends_at": s.ends_at, "by": s.by, "comment": s.comment}
            for s in self.dispatcher.silences.values() if not s.id.startswith("config-")
        ]
        self.outbox.put_state("silences", json.dumps(items, ensure_ascii=False))

    async def close(self) -> None:
        """Close the HTTP session and the outbox (pending rows stay for the next start)."""
        await self.deliverer.close()
        await asyncio.to_thread(self.outbox.close)


def _event(alert: Alert, at: float, kind: Literal["alert_firing", "alert_resolved"],
           drills: Mapping[str, Drill]) -> Event:
    labels = {k: v for k, v in alert.labels.items() if k != "site"}
    drill = drills.get(alert.labels["site"])
    return Event(at, alert.labels["site"], kind, alert.rule, detail={
        "severity": alert.severity, **labels, **({"drill": drill.id} if drill else {})})


#: Alerts encoded between two turns of the event loop when the engine's memory is saved.
ENCODE_BATCH = 500


async def _encoded(held: list[tuple[Alert, float, bool]]) -> bytes:
    """The engine's memory as packed JSON (:class:`PackedText`), letting the event
    loop run between batches: at province scale (6 670 alerts firing, 14 MB of JSON)
    the whole takes 0.4-0.8 s, which in one go would handle no poll or MQTT message
    meanwhile.

    Each alert is packed as it is encoded: held whole (its pieces, the joined text,
    SQLite's copy) the 15 MiB of JSON set the daemon's peak RSS while a province came
    up, 40-50 MiB above its steady size at each save.  Encoded in the loop's own
    thread, not a worker's: there the strings went to the worker's malloc arena
    (bench/daemon.py, one run each: RSS 326 / peak 401 MiB against 300 / 376)."""
    packed = PackedText()
    packed.write(b"[")
    for n, item in enumerate(dump_held(held), 1):
        text = orjson.dumps(item)  # UTF-8 as is; a tenth of the json module's CPU
        packed.write(b"," + text if n > 1 else text)
        if n % ENCODE_BATCH == 0:
            await asyncio.sleep(0)
    packed.write(b"]")
    return packed.value()
