"""Check-ins: a keeper's test call or roll-call answer, from the API, the CLI or MQTT.

One body for every path::

    {"device": "v04-sathand", "result": "ok", "by": "张三", "note": "test call",
     "at": "2026-11-29T09:12:00+08:00", "battery": 0.8}

``at`` (ISO 8601, or epoch seconds) defaults to the time received;
``battery`` is the charge the keeper read off, ratio 0-1.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from commsmon.core.types import CheckIn

__all__ = ["CheckInBody"]


class CheckInBody(BaseModel):
    """A check-in as sent by a keeper's app, a BeiDou gateway or an operator."""

    model_config = ConfigDict(extra="forbid")

    device: Annotated[str, Field(min_length=1, max_length=64)]
    result: Literal["ok", "failed"]
    by: Annotated[str, Field(max_length=100)] = ""
    note: Annotated[str, Field(max_length=1000)] = ""
    at: datetime | None = None
    battery: Annotated[float, Field(ge=0, le=1)] | None = None

    def checkin(self, now: float) -> CheckIn:
        """The check-in, timed ``at`` or, without it, ``now`` (epoch seconds)."""
        at = self.at.timestamp() if self.at else now
        return CheckIn(self.device, at, self.result == "ok", self.by, self.note, self.battery)
