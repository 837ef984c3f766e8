"""A console robot for ``commsmon demo``: a DingTalk custom-robot endpoint on 127.0.0.1.

It takes what the daemon's ``dingtalk`` receiver sends — signed, as the real
robot wants — checks the signature, answers as DingTalk does (``errcode 0``)
and prints the message on the demo's terminal, so a newcomer sees what the
duty officer's phone would show.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote_plus

from aiohttp import web

from commsmon.outputs.alerts.receivers import dingtalk_sign
from commsmon.sim._process import Service

__all__ = ["ConsoleRobot"]

_SKEW = 3600.0  # DingTalk refuses timestamps more than an hour off


class ConsoleRobot(Service):
    """Serves ``POST /robot/send?access_token=...&timestamp=...&sign=...`` until closed.

    Args:
        secret: the robot's signing secret (``SEC...``).
        show: where each message's text goes (default: printed).

    Attributes:
        port: the port it listens on (after :meth:`start`).
        received: every message body received, in order.
    """

    def __init__(self, secret: str, show: Callable[[str], None] | None = None) -> None:
        self.secret = secret
        self.port = 0
        self.received: list[dict[str, Any]] = []
        self._show = show or (lambda text: print(text, flush=True))
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        """The webhook address to configure (token included, as DingTalk gives it)."""
        return f"http://127.0.0.1:{self.port}/robot/send?access_token=demo"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/robot/send", self._send)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _send(self, request: web.Request) -> web.Response:
        timestamp = request.query.get("timestamp", "")
        sign = request.query.get("sign", "")
        fresh = timestamp.isdigit() and abs(int(timestamp) / 1000 - time.time()) < _SKEW
        if not fresh or not hmac.compare_digest(
                sign, unquote_plus(dingtalk_sign(int(timestamp), self.secret))):
            return web.json_response({"errcode": 310000, "errmsg": "sign not match"})
        body = await request.json()
        self.received.append(body)
        markdown = body.get("markdown", {})
        text = markdown.get("text") or body.get("text", {}).get("content", "")
        rule = "─" * 60
        self._show(f"\n{rule}\n钉钉群机器人收到 / robot message:\n{text}\n{rule}")
        return web.json_response({"errcode": 0, "errmsg": "ok"})
