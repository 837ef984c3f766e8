"""A real HTTP receiver for tests: records every request, answers as told. Not a test module."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer


@dataclass
class Received:
    at: float
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any


@dataclass
class RecordingReceiver:
    """Answers ``status`` with ``reply`` (JSON) and records what it accepted.

    A ``reply`` with a non-zero robot code (DingTalk/WeCom ``errcode``, Feishu
    ``code``), e.g. ``{"errcode": 310000, "errmsg": "keywords not in content"}``,
    rejects the message: it is recorded in ``requests`` only.
    """

    status: int = 200
    reply: dict[str, Any] = field(default_factory=lambda: {"errcode": 0, "errmsg": "ok"})
    dingtalk_secret: str | None = None
    requests: list[Received] = field(default_factory=list)
    accepted: list[Received] = field(default_factory=list)
    bad_signatures: int = 0
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    server: TestServer | None = None
    hold: asyncio.Event | None = None  # if set: answer only once it is set (a hanging receiver)

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._handle)
        self.server = TestServer(app, host="127.0.0.1")
        await self.server.start_server()
        return str(self.server.make_url("/hook"))

    async def close(self) -> None:
        if self.server is not None:
            await self.server.close()

    async def _handle(self, request: web.Request) -> web.Response:
        got = Received(time.time(), request.path, dict(request.query), dict(request.headers),
                       json.loads(await request.read()))
        self.requests.append(got)
        if self.hold is not None:
            await self.hold.wait()
            if request.transport is None or request.transport.is_closing():
                return web.Response(status=499)  # the sender is gone: nobody got an answer
        if self.dingtalk_secret is not None and not _dingtalk_ok(got, self.dingtalk_secret):
            self.bad_signatures += 1
            return web.json_response({"errcode": 310000, "errmsg": "sign not match"})
        if self.status == 200 and not self.reply.get("errcode", self.reply.get("code")):
            self.accepted.append(got)
            self.arrived.set()
        return web.json_response(self.reply if self.status == 200 else {"error": "down"},
                                 status=self.status)


def _dingtalk_ok(got: Received, secret: str) -> bool:
    """DingTalk's documented check: HMAC-SHA256(secret, "ts\\nsecret"), base64, fresh ts."""
    ts = got.query.get("timestamp", "")
    if not ts.isdigit() or abs(int(ts) / 1000 - time.time()) > 3600:
        return False
    digest = hmac.new(secret.encode(), f"{ts}\n{secret}".encode(), hashlib.sha256).digest()
    expected = base64.b64encode(digest).decode()
    return hmac.compare_digest(got.query.get("sign", ""), expected) or hmac.compare_digest(
        urllib.parse.unquote(got.query.get("sign", "")), expected)


def critical_to(receiver: RecordingReceiver, path: str = "/hook") -> dict[str, Any]:
    """An ``alerting`` section: quick grouping, villages isolated for 2 s fire, and every
    critical notification goes to ``receiver`` as an Alertmanager-style webhook."""
    return {
        "group_wait": 1, "group_interval": 2, "repeat_interval": 3600,
        "rules": {"site_isolated": {"for": 2}},
        "receivers": [{"name": "hook", "type": "webhook",
                       "url": str(receiver.server.make_url(path))}],
        "routes": [{"match": {"severity": ["critical"]}, "receivers": ["hook"]}],
    }
