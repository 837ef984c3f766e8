"""The package's one error root and its few children.

Adapters map library errors (pysnmp, aiomqtt, aiohttp, sqlite3) to these at the
boundary with ``raise ... from exc`` and keep protocol codes as attributes.
"""

from __future__ import annotations

__all__ = [
    "CommsmonError",
    "ConfigError",
    "SnmpAuthError",
    "SnmpError",
    "SnmpProtocolError",
    "SnmpTimeout",
    "SnmpUnexpectedSource",
    "SourceError",
]


class CommsmonError(Exception):
    """Root of every error commsmon raises on purpose."""


class ConfigError(CommsmonError):
    """A configuration file is unreadable or invalid.

    Attributes:
        problems: one line per problem, each ``FILE:LINE: field.path: message``.
    """

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems

    def __reduce__(self) -> tuple[type[ConfigError], tuple[list[str]]]:
        # Raised in the child process that loads the configuration, pickled back.
        return (ConfigError, (self.problems,))


class SourceError(CommsmonError):
    """A protocol source could not get an answer."""


class SnmpError(SourceError):
    """An SNMP request failed with an error status or a transport error.

    Attributes:
        status: the PDU error-status name (e.g. ``"noSuchName"``, ``"genErr"``)
            or a transport error description; ``None`` when not known.
        index: 1-based index of the varbind the agent blamed, 0 when none.
    """

    def __init__(self, message: str, *, status: str | None = None, index: int = 0) -> None:
        super().__init__(message)
        self.status = status
        self.index = index


class SnmpTimeout(SnmpError):
    """No response within timeout x (retries + 1) seconds."""


class SnmpUnexpectedSource(SnmpError):
    """The only replies matching the request came from an address the target does
    not allow (``reply_from``); ``status`` is ``"unexpectedSource"``.

    Attributes:
        address: the address they came from.
    """

    def __init__(self, message: str, *, address: str) -> None:
        super().__init__(message, status="unexpectedSource")
        self.address = address


class SnmpProtocolError(SnmpError):
    """Replies came back but none fitted the request (a request id cut to 16 bits,
    an undecodable datagram, a wrong varbind count); ``status`` is
    ``"protocolError"``.

    Attributes:
        detail: what did not fit, a code: ``request_id_cut``, ``undecodable``,
            ``varbind_count``, ``not_a_response``.
    """

    def __init__(self, message: str, *, detail: str) -> None:
        super().__init__(message, status="protocolError")
        self.detail = detail


class SnmpAuthError(SnmpError):
    """The agent rejected our SNMPv3 credentials with a USM report (RFC 3414 §3.2).

    ``status`` names the USM counter the report carried where the backend can
    tell (``usmStatsUnknownUserNames``, ``usmStatsWrongDigests``,
    ``usmStatsNotInTimeWindows`` after pysnmp's one re-sync,
    ``usmStatsUnknownEngineIDs``, ``usmStatsDecryptionErrors``,
    ``usmStatsUnsupportedSecLevels``), else ``authenticationFailed`` (gufo_snmp
    reports every one of them alike).  The device is unmonitored, not down.
    """
