"""Logging, configured once: structlog for our lines, stdlib loggers routed through it.

JSON lines when stderr is not a terminal (journald, files, CI), readable
console output on a terminal.  Every line that names a ``device`` also names
its ``site`` (from :func:`know_sites`), so a duty engineer can filter the
journal by village.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any

import structlog

__all__ = ["LogOnce", "configure_logging", "know_sites"]

_site_of: Mapping[str, str] = {}


def know_sites(site_of: Mapping[str, str]) -> None:
    """Device id -> site id, for the ``site`` field of lines about a device (the map
    itself is read, not a copy: it must not change afterwards)."""
    global _site_of
    _site_of = site_of


def _add_site(_: object, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    device = event.get("device")
    if isinstance(device, str) and "site" not in event and (site := _site_of.get(device)):
        event["site"] = site
    return event


def configure_logging(level: str = "info", json: bool | None = None) -> None:
    """Set up structlog and the stdlib root logger.

    Args:
        level: ``debug``, ``info``, ``warning`` or ``error``.
        json: force JSON (True) or console (False) output; ``None`` picks JSON
            unless stderr is a terminal.
    """
    if json is None:
        json = not sys.stderr.isatty()
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        _add_site,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer(ensure_ascii=False)
        if json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # pysnmp and aiomqtt are chatty at debug level; keep them at warning.  aiomqtt
    # and the paho client under it log as "mqtt" (a line per packet at debug).
    for noisy in ("pysnmp", "pyasn1", "mqtt", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


class LogOnce:
    """Remembers which (key, condition) pairs were logged, so a repeating
    problem is logged once per change instead of once per poll.

    ``first(key, condition)`` is True the first time a key takes a condition;
    ``clear(key)`` forgets the key so its next problem is logged again.
    """

    def __init__(self) -> None:
        self._seen: dict[object, object] = {}

    def first(self, key: object, condition: object) -> bool:
        """True if ``key`` was not already in ``condition``."""
        if self._seen.get(key, _MISSING) == condition:
            return False
        self._seen[key] = condition
        return True

    def clear(self, key: object) -> bool:
        """Forget ``key``; True if it had a condition (a recovery worth a line)."""
        # Called for every value read while nothing is wrong: then there is nothing to pop.
        return bool(self._seen) and self._seen.pop(key, _MISSING) is not _MISSING


_MISSING = object()
