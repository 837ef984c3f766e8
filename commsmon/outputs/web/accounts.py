"""Who is at the duty desk: local accounts, sessions, CSRF and the login rate limit.

Accounts come from ``http.users`` (bcrypt hashes and roles ``viewer`` < ``duty``
< ``admin``).  A session is a signed cookie (itsdangerous, the signer Flask uses)
holding the login and a CSRF token, ``HttpOnly`` and ``SameSite=Lax`` (``Secure``
over HTTPS), re-signed as it is used and refused once idle for
``http.session_idle`` seconds — a restart of the daemon keeps nobody logged in
(a new secret each start).  Every POST must carry the session's CSRF token (form
field ``csrf``); the login form carries a nonce from its own cookie (double
submit), so nobody can log an officer in as someone else.  Failed logins are
counted per address and per login: after :data:`MAX_FAILURES` in
:data:`WINDOW` seconds, further attempts are refused (429) until the window has
passed.
"""

from __future__ import annotations

import asyncio
import hmac
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Literal

import bcrypt
from aiohttp import web
from itsdangerous import BadSignature, TimestampSigner, URLSafeTimedSerializer

__all__ = ["CONSOLE_GUARDED", "MAX_FAILURES", "ROLES", "WINDOW", "Account", "Accounts",
           "LoginLimiter", "Role", "account_of", "csrf_ok"]

Role = Literal["viewer", "duty", "admin"]
ROLES: tuple[Role, ...] = ("viewer", "duty", "admin")
SESSION_COOKIE = "commsmon_session"
LOGIN_COOKIE = "commsmon_login"
REFRESH_AFTER = 60.0  # seconds: a session cookie is re-signed at most this often
MAX_FAILURES = 5  # failed logins per address (and per login) ...
WINDOW = 300.0  # ... within this many seconds before logins are refused
# A hash to check against when the login does not exist, so both take as long.
_DUMMY = bcrypt.hashpw(b"-", bcrypt.gensalt(4))
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
CSRF = web.RequestKey("commsmon_csrf", str)  # the session's CSRF token
#: Request key: the console guards this page itself (its accounts), so the listener's
#: basic auth need not; the metrics and the API stay behind it.
CONSOLE_GUARDED = web.RequestKey("commsmon_console_guarded", bool)
_NOT_CONSOLE = ("/metrics", "/api/", "/healthz")


@dataclass(frozen=True, slots=True)
class Account:
    """A logged-in officer: ``login`` (account name), ``name`` (as the pages and duty
    log say it) and ``role``."""

    login: str
    name: str
    role: Role

    def may(self, role: Role) -> bool:
        """Whether this account has ``role`` or a higher one."""
        return ROLES.index(self.role) >= ROLES.index(role)


ACCOUNT = web.RequestKey("commsmon_account", Account)  # the session's account, if any


class LoginLimiter:
    """Failed logins per key (an address, a login) in a sliding window.

    Args:
        clock: epoch seconds.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._failures: dict[str, deque[float]] = {}

    def retry_after(self, *keys: str) -> float:
        """Seconds until ``keys`` may try again (0: now)."""
        now = self._clock()
        wait = 0.0
        for key in keys:
            times = self._failures.get(key)
            while times and times[0] <= now - WINDOW:
                times.popleft()
            if times is not None and not times:
                del self._failures[key]
            elif times is not None and len(times) >= MAX_FAILURES:
                wait = max(wait, times[0] + WINDOW - now)
        return wait

    def failed(self, *keys: str) -> None:
        """Count a failed login against each of ``keys``."""
        now = self._clock()
        for key in keys:
            self._failures.setdefault(key, deque()).append(now)


class Accounts:
    """The console's accounts and sessions.

    Args:
        users: login -> (bcrypt hash, role, display name).
        idle: seconds a session lasts without a request.
        secure: cookies only over HTTPS (the listener serves TLS).
        wall_token: the read-only token for ``/wall``, ``None`` for none.
        clock: wall clock, epoch seconds (sessions' idle time).
        secret: the signing key; random (sessions end with the process) unless given.
    """

    def __init__(self, users: Mapping[str, tuple[str, Role, str]], idle: float,
                 secure: bool = False, wall_token: str | None = None,
                 clock: Callable[[], float] = time.time, secret: bytes | None = None) -> None:
        self._users = {login: (h.encode(), role, name or login)
                       for login, (h, role, name) in users.items()}
        self._idle = idle
        self._secure = secure
        self._wall_token = wall_token
        self._clock = clock

        class Signer(TimestampSigner):
            def get_timestamp(self) -> int:  # the injected clock, so idle time is testable
                return int(clock())

        self._signer = URLSafeTimedSerializer(secret or secrets.token_bytes(32),
                                              salt="commsmon-session", signer=Signer)
        self.limiter = LoginLimiter(clock)

    @property
    def enabled(self) -> bool:
        """Whether any account is configured (else the pages are read-only for all)."""
        return bool(self._users)

    def wall_allowed(self, token: str) -> bool:
        """Whether ``token`` is the wall's read-only token."""
        return self._wall_token is not None and hmac.compare_digest(
            token.encode(), self._wall_token.encode())

    async def check(self, login: str, password: str) -> Account | None:
        """The account if ``password`` is ``login``'s (bcrypt, in a worker thread)."""
        hashed, role, name = self._users.get(login, (_DUMMY, "viewer", ""))
        good = await asyncio.to_thread(bcrypt.checkpw, password.encode(), hashed)
        return Account(login, name, role) if good and login in self._users else None

    def start(self, response: web.StreamResponse, account: Account) -> None:
        """Log ``account`` in: a new session (and CSRF token) on ``response``."""
        self._set(response, account.login, secrets.token_urlsafe(24))
        response.del_cookie(LOGIN_COOKIE, path="/")

    def end(self, response: web.StreamResponse) -> None:
        """Log out: the session cookie is removed."""
        response.del_cookie(SESSION_COOKIE, path="/")

    def login_nonce(self, request: web.Request) -> str:
        """The login form's CSRF nonce: the one in its cookie, or a new one."""
        return request.cookies.get(LOGIN_COOKIE) or secrets.token_urlsafe(24)

    def keep_nonce(self, response: web.StreamResponse, nonce: str) -> None:
        """Put the login form's nonce in its cookie (double submit)."""
        response.set_cookie(LOGIN_COOKIE, nonce, path="/", httponly=True, samesite="Lax",
                            secure=self._secure, max_age=3600)

    @staticmethod
    def login_nonce_ok(request: web.Request, given: str) -> bool:
        """Whether the login form's nonce matches its cookie."""
        cookie = request.cookies.get(LOGIN_COOKIE, "")
        return bool(cookie) and hmac.compare_digest(cookie.encode(), given.encode())

    def _set(self, response: web.StreamResponse, login: str, csrf: str) -> None:
        value = self._signer.dumps({"u": login, "c": csrf})
        response.set_cookie(SESSION_COOKIE, value, path="/", httponly=True, samesite="Lax",
                            secure=self._secure)

    def _session(self, request: web.Request) -> tuple[Account, str, float] | None:
        """(account, CSRF token, seconds since signed) of a valid, not idle session."""
        value = request.cookies.get(SESSION_COOKIE)
        if not value:
            return None
        try:
            data, signed = self._signer.loads(value, max_age=int(self._idle),
                                              return_timestamp=True)
        except BadSignature:  # forged, or idle too long (SignatureExpired is one)
            return None
        login, csrf = data.get("u"), data.get("c")
        if not isinstance(login, str) or not isinstance(csrf, str) or login not in self._users:
            return None  # an account removed from the configuration is logged out
        _, role, name = self._users[login]
        return Account(login, name, role), csrf, self._clock() - signed.timestamp()

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Puts the session's :class:`Account` and CSRF token on the request, and
        re-signs the session cookie as it is used (the idle timeout slides)."""
        session = self._session(request)
        if session is not None:
            request[ACCOUNT], request[CSRF], age = session
        if self.enabled and not request.path.startswith(_NOT_CONSOLE):
            request[CONSOLE_GUARDED] = True
        response = await handler(request)
        if session is not None and age >= REFRESH_AFTER and not response.prepared:
            self._set(response, session[0].login, session[1])
        return response


def account_of(request: web.Request) -> Account | None:
    """The request's logged-in account, ``None`` when none."""
    return request.get(ACCOUNT)


def csrf_ok(request: web.Request, given: str) -> bool:
    """Whether ``given`` is the session's CSRF token."""
    token = request.get(CSRF)
    return token is not None and hmac.compare_digest(token.encode(), given.encode())
