"""Alerting, wired: rules and dispatch (core) -> persistent outbox -> receivers.

Each fleet evaluation goes through the rules engine and the dispatcher; the
notifications they decide are written to the outbox, with the engine's and
the dispatcher's memory, before the deliverer is woken to send them.  On
start that memory comes back from the outbox, so a restart neither re-sends
what was delivered nor forgets what was pending or what changed meanwhile.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from datetime import tzinfo
from pathlib import Path

import structlog

from commsmon.config.alerting import AlertingSpec
from commsmon.core.dispatch import Dispatcher, Silence, site_context
from commsmon.core.rules import AlertEngine
from commsmon.core.snapshot import Snapshot
from commsmon.outputs.alerts.delivery import Deliverer, FaultCallback
from commsmon.outputs.alerts.receivers import build_receiver
from commsmon.state.outbox import Outbox

__all__ = ["AlertService"]

log = structlog.get_logger("commsmon.alerts")


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
    """

    def __init__(
        self,
        spec: AlertingSpec,
        path: Path,
        tz: tzinfo,
        clock: Callable[[], float],
        on_fault: FaultCallback | None = None,
    ) -> None:
        self.spec = spec
        self._clock = clock
        self.engine = AlertEngine(spec.rule_specs(), tuple(spec.countdown_hours))
        routes, default = spec.route_list()
        languages = {r.name: r.language for r in spec.receivers}
        self.dispatcher = Dispatcher(routes, default, languages, spec.timing())
        self.receivers = {r.name: build_receiver(r, tz) for r in spec.receivers}
        self.outbox = Outbox(path)
        self.deliverer = Deliverer(
            self.outbox, self.receivers, clock=clock, give_up_after=spec.give_up_after,
            on_fault=on_fault,
        )
        self._lock = asyncio.Lock()

    def restore(self) -> None:
        """Bring back the rules' and the dispatcher's memory, API silences and which
        receivers reject us (blocking)."""
        engine = self.outbox.get_state("engine")
        if engine:
            self.engine.load(json.loads(engine))
        dispatcher = self.outbox.get_state("dispatcher")
        if dispatcher:
            self.dispatcher.load(json.loads(dispatcher))
        for s in self.spec.config_silences():
            self.dispatcher.silences[s.id] = s
        for item in json.loads(self.outbox.get_state("silences") or "[]"):
            silence = Silence(item["id"], item["matchers"], item["starts_at"], item["ends_at"],
                              item["by"], item["comment"])
            self.dispatcher.silences[silence.id] = silence
        self.deliverer.restore()

    async def step(self, snap: Snapshot) -> int:
        """Evaluate rules on ``snap``; persist and hand over what is due. Returns how many."""
        async with self._lock:
            resolved = self.engine.update(snap)
            notes = self.dispatcher.tick(
                snap.at, self.engine.firing, resolved, lambda s: site_context(snap, s)
            )
            engine = json.dumps(self.engine.dump(), ensure_ascii=False)
            dispatcher = json.dumps(self.dispatcher.dump(), ensure_ascii=False)

            def persist() -> list[bool]:
                added = [self.outbox.add(note, snap.at) for note in notes]
                self.outbox.put_state("engine", engine)
                self.outbox.put_state("dispatcher", dispatcher)
                return added

            added = await asyncio.to_thread(persist)
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
