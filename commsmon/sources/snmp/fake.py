"""A recording SNMP client for unit tests of the poller: scripted answers, no network.

Beside the interface it fakes, in the manner of snmp_exporter's ``scraper/mock.go``
beside ``scraper.go``. The daemon never uses it; integration tests use real agents.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from commsmon.errors import SnmpError
from commsmon.sources.snmp.base import NO_SUCH_OBJECT, SnmpClient, SnmpTarget, SnmpValue, parse_oid

__all__ = ["RecordingClient", "Request"]


@dataclass(frozen=True, slots=True)
class Request:
    """One GET the client was asked: the target and the OIDs, in the order given."""

    target: SnmpTarget
    oids: tuple[str, ...]


@dataclass
class RecordingClient(SnmpClient):
    """Answers each target (by ``host:port``) with what :attr:`answers` holds for it:
    values by OID (a missing OID is NO_SUCH_OBJECT, as :meth:`SnmpClient.get`
    promises), or an :class:`~commsmon.errors.SnmpError` to raise. Change
    :attr:`answers` between calls; every request is kept in :attr:`requests`.

    Attributes:
        answers: ``"host:port"`` -> values by OID, or an error instance.
        requests: every GET asked, in order.
        engine_ids: ``"host:port"`` -> the engineID :meth:`engine_id` reports.
    """

    answers: dict[str, Mapping[str, SnmpValue] | SnmpError] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    engine_ids: dict[str, bytes] = field(default_factory=dict)

    async def get(self, target: SnmpTarget, oids: Sequence[str]) -> dict[str, SnmpValue]:
        """The scripted answer for ``target``; see :meth:`SnmpClient.get`.

        Raises:
            ValueError: an OID is not numeric.
            SnmpError: the scripted error (or SnmpError if nothing is scripted).
        """
        for oid in oids:
            parse_oid(oid)
        self.requests.append(Request(target, tuple(oids)))
        answer = self.answers.get(_key(target), SnmpError(f"{_key(target)}: nothing scripted"))
        if isinstance(answer, SnmpError):
            raise answer
        return {oid: answer.get(oid, NO_SUCH_OBJECT) for oid in oids}

    def engine_id(self, target: SnmpTarget) -> bytes | None:
        """The scripted engineID of ``target``, ``None`` if none."""
        return self.engine_ids.get(_key(target))

    async def close(self) -> None:
        """Nothing to release."""


def _key(target: SnmpTarget) -> str:
    return f"{target.host}:{target.port}"
