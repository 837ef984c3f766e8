"""Starting the daemon's HTTP listener: metrics, health, the API and the console on one aiohttp
server, over TLS if configured, with errors an operator can act on."""

from __future__ import annotations

import ssl
from collections.abc import Callable, Iterable
from datetime import tzinfo
from typing import Protocol

from aiohttp import web
from prometheus_client import CollectorRegistry

from commsmon.config.services import HttpSpec
from commsmon.core.snapshot import Snapshot
from commsmon.errors import CommsmonError
from commsmon.outputs.api import Operations, add_api_routes
from commsmon.outputs.gzipmember import Chunk
from commsmon.outputs.http import build_app
from commsmon.outputs.web import add_console_routes
from commsmon.outputs.web.accounts import Accounts
from commsmon.outputs.webauth import ReadGuard, server_ssl_context
from commsmon.outputs.wording import Language

__all__ = ["TrapLog", "serve"]


class TrapLog(Protocol):
    """What the trap receiver remembers: (epoch seconds, device, trap OID) of the last
    traps no profile knew, and (epoch seconds, device, the profile's name or the OID)
    of the latest traps; oldest first."""

    @property
    def unknown(self) -> Iterable[tuple[float, str, str]]: ...

    @property
    def recent(self) -> Iterable[tuple[float, str, str]]: ...


async def serve(
    spec: HttpSpec,
    registry: CollectorRegistry,
    snapshot: Callable[[], Snapshot | None],
    render: Callable[[Snapshot | None], Iterable[Chunk]],
    ops: Operations,
    clock: Callable[[], float],
    tz: tzinfo,
    language: Language,
    traps: Callable[[], TrapLog | None] = lambda: None,
) -> tuple[web.AppRunner, list[str]]:
    """Listen as ``spec`` says; the runner (``cleanup()`` it) and the URLs it listens on.

    ``traps``: the trap receiver, if any (its unknown OIDs for the API, its recent
    traps for the console).

    Raises:
        CommsmonError: the certificate or key cannot be used, or the address cannot
            be bound (another instance running?).
    """
    accounts = Accounts(
        {login: (u.password.get_secret_value(), u.role, u.name) for login, u in spec.users.items()},
        spec.session_idle, secure=spec.tls is not None,
        wall_token=spec.wall_token.get_secret_value() if spec.wall_token else None, clock=clock)
    app = build_app(registry, snapshot, render, clock, ReadGuard.from_spec(spec),
                    before=[accounts.middleware])
    token = spec.token.get_secret_value() if spec.token else None
    add_api_routes(app, snapshot, ops, token, clock, tz, language,
                   lambda: log.unknown if (log := traps()) is not None else ())
    add_console_routes(app, snapshot, tz, language, clock,
                       lambda: log.recent if (log := traps()) is not None else (), ops, accounts)
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        try:
            tls = server_ssl_context(spec)
        except (OSError, ssl.SSLError) as exc:
            raise CommsmonError(f"cannot use the HTTPS certificate or key: {exc}") from exc
        try:
            await web.TCPSite(runner, spec.listen, spec.port, ssl_context=tls).start()
        except OSError as exc:
            raise CommsmonError(
                f"cannot listen on {spec.listen}:{spec.port}: {exc.strerror}"
                " (another commsmon running? change http.port or pass --listen-port)"
            ) from exc
    except BaseException:
        await runner.cleanup()
        raise
    scheme = "https" if tls else "http"
    return runner, [f"{scheme}://{h}:{p}" for h, p, *_ in runner.addresses]
