"""Who may read the HTTP listener, and its TLS, in the manner of Prometheus' web-config.

Reads (``/metrics`` and the API's GETs) are open unless ``http.basic_auth_users``
is set; then they need one of those users' passwords (checked against its
bcrypt hash) or the bearer token.  ``/healthz`` stays open for probes: it
tells only whether the daemon is evaluating.  Writes always need the bearer
token, checked by the API itself.  Console pages are guarded by the console's own
accounts when ``http.users`` are configured (:mod:`commsmon.outputs.web.accounts`).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import ssl
from collections.abc import Awaitable, Callable, Mapping

import bcrypt
from aiohttp import web

from commsmon.config.services import HttpSpec
from commsmon.outputs.web.accounts import CONSOLE_GUARDED

__all__ = ["ReadGuard", "server_ssl_context"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
OPEN_PATHS = frozenset({"/healthz"})


class ReadGuard:
    """Checks read credentials.

    Args:
        users: user name -> bcrypt hash.
        token: the bearer token, which also grants reads.
    """

    def __init__(self, users: Mapping[str, str], token: str | None) -> None:
        self._users = {u: h.encode() for u, h in users.items()}
        self._token = token
        # bcrypt costs ~0.1 s by design; a scraper sends the same credentials every
        # time, so remember which were good (as exporter-toolkit does), by digest only.
        self._good: set[bytes] = set()

    @classmethod
    def from_spec(cls, spec: HttpSpec) -> ReadGuard | None:
        """The guard ``spec`` asks for, ``None`` if reads are open."""
        if not spec.basic_auth_users:
            return None
        return cls({u: h.get_secret_value() for u, h in spec.basic_auth_users.items()},
                   spec.token.get_secret_value() if spec.token else None)

    async def allows(self, authorization: str) -> bool:
        """Whether an ``Authorization`` header value grants reading."""
        scheme, _, credentials = authorization.partition(" ")
        if scheme.lower() == "bearer" and self._token is not None:
            return hmac.compare_digest(credentials.encode(), self._token.encode())
        if scheme.lower() != "basic":
            return False
        try:
            user, _, password = base64.b64decode(credentials, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        hashed = self._users.get(user)
        if hashed is None:
            return False
        digest = hashlib.sha256(hashed + b"\0" + password.encode()).digest()
        if digest in self._good:
            return True
        if await asyncio.to_thread(bcrypt.checkpw, password.encode(), hashed):
            self._good.add(digest)
            return True
        return False

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """aiohttp middleware: 401 with a Basic challenge unless allowed (or a console
        page that its own accounts guard)."""
        if request.path in OPEN_PATHS or request.get(CONSOLE_GUARDED) or await self.allows(
                request.headers.get("Authorization", "")):
            return await handler(request)
        raise web.HTTPUnauthorized(
            text='{"error": "credentials required (basic auth or bearer token)"}',
            content_type="application/json",
            headers={"WWW-Authenticate": 'Basic realm="commsmon"'},
        )


def server_ssl_context(spec: HttpSpec) -> ssl.SSLContext | None:
    """The listener's TLS context, ``None`` for plain HTTP.

    TLS 1.2 at least; with ``client_ca_file``, clients must present a
    certificate from it.

    Raises:
        OSError, ssl.SSLError: a certificate or key that cannot be read.
    """
    tls = spec.tls
    if tls is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(tls.cert_file, tls.key_file)
    if tls.client_ca_file:
        context.load_verify_locations(tls.client_ca_file)
        context.verify_mode = ssl.CERT_REQUIRED
    return context
