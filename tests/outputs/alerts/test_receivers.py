"""Receivers against real HTTP servers on 127.0.0.1 that record, check signatures, answer."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any, get_args
from urllib.parse import quote_plus

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from commsmon.config.alerting import AlertingSpec, ReceiverSpec, WebhookSpec
from commsmon.config.load import load_config
from commsmon.core.alerting import Alert, Notification
from commsmon.core.facts import Fact
from commsmon.outputs.alerts.base import DeliveryResult, Receiver, Rejection
from commsmon.outputs.alerts.messages import DEFAULT_TZ
from commsmon.outputs.alerts.receivers import (
    RECEIVERS,
    ZERO_TIME,
    AlertmanagerReceiver,
    DingTalkReceiver,
    FeishuReceiver,
    WebhookReceiver,
    WeComReceiver,
    build_receiver,
    parse_retry_after,
    redact_url,
)
from tests.outputs.alerts.test_messages import NOW, alert, device, notification

DING_SECRET = "SEC0b1f3e2d9c8a7b6f5e4d3c2b1a09f8e7d6c5b4a3f2e1d0c9b8a7f6e5d4c3b2a1"
DING_TOKEN = "tok_ding_5f0e2b7c9a1d4e8f"
WECOM_KEY = "693a91f6-7a0c-4bc4-97a0-0ec2a1fa5aaa"
FEISHU_SECRET = "fs_Secret_qYw8e7Rt6Yu5"
FEISHU_TOKEN = "00000000-1111-4000-8000-feishu0token"
HOOK_TOKEN = "hook_token_d41d8cd98f00b204"
DEMO = Path(__file__).resolve().parents[3] / "config" / "demo.yaml"
SECRETS = (DING_SECRET, DING_TOKEN, WECOM_KEY, FEISHU_SECRET, FEISHU_TOKEN, HOOK_TOKEN)


@dataclass
class Recorded:
    """One request as the server saw it."""

    path: str
    path_qs: str
    query: dict[str, str]
    headers: dict[str, str]
    content_type: str
    charset: str | None
    body: bytes
    at: float
    request: web.Request

    def json(self) -> Any:
        return json.loads(self.body.decode("utf-8"))


Answer = Callable[[Recorded], Awaitable[web.StreamResponse]]


@dataclass
class Far:
    """The far end: records requests, answers with ``answer``."""

    url: str = ""
    requests: list[Recorded] = field(default_factory=list)
    answer: Answer | None = None
    release: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        rec = Recorded(
            request.path,
            request.path_qs,
            dict(request.query),
            dict(request.headers),
            request.content_type,
            request.charset,
            await request.read(),
            time.time(),
            request,
        )
        self.requests.append(rec)
        assert self.answer is not None
        return await self.answer(rec)


@pytest.fixture
async def far() -> AsyncIterator[Far]:
    f = Far()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", f.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    f.url = str(server.make_url("")).rstrip("/")
    try:
        yield f
    finally:
        f.release.set()
        await server.close()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


def reply(status: int = 200, body: Any = None, headers: dict[str, str] | None = None) -> Answer:
    async def answer(_: Recorded) -> web.StreamResponse:
        if body is None:
            return web.Response(status=status, headers=headers)
        if isinstance(body, str):
            return web.Response(status=status, text=body, headers=headers)
        return web.json_response(body, status=status, headers=headers)

    return answer


def hang(far: Far) -> Answer:
    async def answer(_: Recorded) -> web.StreamResponse:
        await asyncio.wait_for(far.release.wait(), 10)
        return web.json_response({"errcode": 0})

    return answer


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def huge() -> Notification:
    """A village with 500 folded device alerts, names in Chinese and emoji."""
    folded = tuple(
        alert(
            "device_down",
            starts=NOW - i,
            device=f"v05-cam{i}",
            facts=(device(f"v05-cam{i}", f"摄像头📷{i}号（村委会屋顶）", NOW - i,
                          Fact("checkin_failed", {"at": NOW - i, "note": '无应答 "timeout"'})),),
        )
        for i in range(500)
    )
    base = notification("zh", folded=0)
    return Notification(
        "site:v05/9", "duty", "site:v05", "firing", base.alerts, folded, base.site, NOW, "zh"
    )


def assert_json_request(rec: Recorded) -> None:
    assert rec.content_type == "application/json"
    assert (rec.charset or "utf-8").lower() == "utf-8"


def assert_no_secret(*results: DeliveryResult) -> None:
    for result in results:
        for secret in SECRETS:
            assert secret not in result.detail, (secret, result.detail)


# --- signatures as the robots check them, written from their documentation -------------


def dingtalk_expected_sign(timestamp: str, secret: str) -> str:
    """DingTalk: HMAC-SHA256 with the secret as key over "timestamp\\nsecret", Base64."""
    mac = hmac.new(secret.encode(), f"{timestamp}\n{secret}".encode(), hashlib.sha256)
    return base64.b64encode(mac.digest()).decode()


def feishu_expected_sign(timestamp: str, secret: str) -> str:
    """Feishu's sample: "timestamp\\nsecret" is the HMAC-SHA256 key, the message is empty."""
    mac = hmac.new(f"{timestamp}\n{secret}".encode(), b"", hashlib.sha256)
    return base64.b64encode(mac.digest()).decode()


def dingtalk_robot(secret: str) -> Answer:
    """Answers like DingTalk: 310000 unless the signature checks out and is fresh."""

    async def answer(rec: Recorded) -> web.StreamResponse:
        ts, sign = rec.query.get("timestamp", ""), rec.query.get("sign", "")
        fresh = ts.isdigit() and abs(int(ts) / 1000 - rec.at) < 5
        if not fresh or sign != dingtalk_expected_sign(ts, secret):
            return web.json_response({"errcode": 310000, "errmsg": "sign not match"})
        return web.json_response({"errcode": 0, "errmsg": "ok"})

    return answer


def dingtalk_keyword_robot(keyword: str) -> Answer:
    """Answers like a DingTalk robot with a custom keyword: 310000 unless the text has it."""

    async def answer(rec: Recorded) -> web.StreamResponse:
        if keyword not in rec.json()["markdown"]["text"]:
            return web.json_response({"errcode": 310000, "errmsg": "keywords not in content"})
        return web.json_response({"errcode": 0, "errmsg": "ok"})

    return answer


def feishu_robot(secret: str) -> Answer:
    """Answers like Feishu: 19021 unless the body's signature checks out and is fresh."""

    async def answer(rec: Recorded) -> web.StreamResponse:
        body = rec.json()
        ts, sign = body.get("timestamp", ""), body.get("sign", "")
        fresh = isinstance(ts, str) and ts.isdigit() and abs(int(ts) - rec.at) < 5
        if not fresh or sign != feishu_expected_sign(ts, secret):
            return web.json_response({"code": 19021, "msg": "sign match fail", "data": {}})
        return web.json_response({"code": 0, "msg": "success", "data": {}})

    return answer


# --- generic webhook ------------------------------------------------------------------


async def test_webhook_posts_alertmanager_v4_json_with_idempotency_key(
    far: Far, session: aiohttp.ClientSession
) -> None:
    """2xx is ok; the body is Alertmanager's webhook version 4."""
    far.answer = reply(200, "")
    r = WebhookReceiver(f"{far.url}/hook/{HOOK_TOKEN}", external_url="http://commsmon:9105/")
    n = notification("en")
    result = await r.send(n, session)
    assert result.ok, result
    rec = far.requests[0]
    assert_json_request(rec)
    assert rec.headers["Idempotency-Key"] == n.key
    body = rec.json()
    assert body["version"] == "4"
    assert body["groupKey"] == '{}:{site="v05"}'
    assert body["truncatedAlerts"] == 0
    assert body["status"] == "firing" and body["receiver"] == "duty"
    assert body["groupLabels"] == {"site": "v05"}
    assert body["commonLabels"] == {"site": "v05"}
    assert body["externalURL"] == "http://commsmon:9105"
    first, _, resolved = body["alerts"]
    assert first["status"] == "firing"
    assert first["labels"]["alertname"] == "outage_active"
    assert first["startsAt"] == "2025-11-29T07:50:00.000Z"
    assert first["endsAt"] == ZERO_TIME
    assert first["fingerprint"] == n.alerts[0].fingerprint
    assert first["generatorURL"] == "http://commsmon:9105/api/v1/sites/v05"
    assert first["annotations"]["summary"] == "石门村 (龙潭镇): power cut in progress"
    assert "since 15:50" in first["annotations"]["description"]
    assert resolved["status"] == "resolved"
    assert resolved["endsAt"] == "2025-11-29T07:59:00.000Z"


async def test_webhook_idempotency_key_survives_non_ascii(
    far: Far, session: aiohttp.ClientSession
) -> None:
    """A key outside ASCII goes percent-encoded rather than failing the request."""
    far.answer = reply(204)
    result = await WebhookReceiver(f"{far.url}/hook").send(notification(key="site:石门/1"), session)
    assert result.ok
    assert far.requests[0].headers["Idempotency-Key"] == "site%3A%E7%9F%B3%E9%97%A8%2F1"


@pytest.mark.parametrize(
    ("status", "headers", "permanent", "retry_after"),
    [
        (500, None, False, None),
        (503, {"Retry-After": "30"}, False, 30.0),
        (429, {"Retry-After": "7"}, False, 7.0),
        (408, None, False, None),
        (400, None, True, None),
        (404, None, True, None),
        (302, {"Location": "/elsewhere"}, True, None),
    ],
)
async def test_webhook_judges_http_status(
    far: Far,
    session: aiohttp.ClientSession,
    status: int,
    headers: dict[str, str] | None,
    permanent: bool,
    retry_after: float | None,
) -> None:
    """429/5xx may pass later (with Retry-After); other 4xx and 3xx are permanent."""
    far.answer = reply(status, f"refused {HOOK_TOKEN}", headers)
    result = await WebhookReceiver(f"{far.url}/hook/{HOOK_TOKEN}").send(notification(), session)
    assert not result.ok
    assert result.permanent is permanent
    assert result.retry_after == retry_after
    assert f"HTTP {status}" in result.detail
    assert len(far.requests) == 1  # one attempt, redirects not followed
    assert_no_secret(result)


async def test_a_hanging_receiver_times_out(far: Far, session: aiohttp.ClientSession) -> None:
    """A far end slower than the timeout is a failed attempt, not a hang."""
    far.answer = hang(far)
    start = time.monotonic()
    result = await WebhookReceiver(f"{far.url}/hook", timeout=0.5).send(notification(), session)
    assert time.monotonic() - start < 3
    assert not result.ok and not result.permanent
    assert "timed out after 0.5 s" in result.detail


async def test_a_closed_port_is_a_failed_attempt(session: aiohttp.ClientSession) -> None:
    """A refused connection does not raise."""
    port = closed_port()
    results = [
        await WebhookReceiver(f"http://127.0.0.1:{port}/hook/{HOOK_TOKEN}").send(
            notification(), session
        ),
        await DingTalkReceiver(
            f"http://127.0.0.1:{port}/robot/send?access_token={DING_TOKEN}", DING_SECRET
        ).send(notification(), session),
    ]
    for result in results:
        assert not result.ok and not result.permanent
        assert result.detail.startswith("cannot connect")
    assert_no_secret(*results)


# --- Alertmanager ---------------------------------------------------------------------


async def test_alertmanager_gets_every_alert_folded_included(
    far: Far, session: aiohttp.ClientSession
) -> None:
    """POST <base>/api/v2/alerts: a list with folded alerts, resolved ones with their end."""
    far.answer = reply(200, "")
    r = AlertmanagerReceiver(
        f"{far.url}/am/", external_url="http://commsmon:9105", firing_ttl=3600, clock=lambda: NOW
    )
    n = notification("zh", folded=2)
    result = await r.send(n, session)
    assert result.ok
    rec = far.requests[0]
    assert rec.path == "/am/api/v2/alerts"
    assert_json_request(rec)
    alerts = rec.json()
    assert isinstance(alerts, list) and len(alerts) == 5
    assert {a["labels"].get("device") for a in alerts} >= {"v05-cam0", "v05-cam1"}
    by_name = {a["labels"].get("device", a["labels"]["alertname"]): a for a in alerts}
    assert by_name["v05-router"]["endsAt"] == "2025-11-29T07:59:00.000Z"  # resolved
    assert by_name["outage_active"]["endsAt"] == "2025-11-29T09:00:00.000Z"  # now + ttl
    assert by_name["outage_active"]["startsAt"] == "2025-11-29T07:50:00.000Z"
    assert by_name["outage_active"]["labels"]["severity"] == "critical"
    assert by_name["outage_active"]["annotations"]["summary"] == "龙潭镇 石门村：正在断电"
    assert by_name["outage_active"]["generatorURL"] == "http://commsmon:9105/api/v1/sites/v05"
    assert set(alerts[0]) == {"labels", "annotations", "startsAt", "endsAt", "generatorURL"}


async def test_alertmanager_400_is_permanent_500_is_not(
    far: Far, session: aiohttp.ClientSession
) -> None:
    """A rejected payload will not pass later; a server error may."""
    r = AlertmanagerReceiver(far.url)
    far.answer = reply(400, '{"code":400,"message":"invalid labels"}')
    bad = await r.send(notification(), session)
    far.answer = reply(500, "")
    down = await r.send(notification(), session)
    assert not bad.ok and bad.permanent and "invalid labels" in bad.detail
    assert not down.ok and not down.permanent


# --- DingTalk ---------------------------------------------------------------------------


def ding(far: Far, secret: str | None = DING_SECRET, **kw: Any) -> DingTalkReceiver:
    return DingTalkReceiver(f"{far.url}/robot/send?access_token={DING_TOKEN}", secret, **kw)


async def test_dingtalk_signs_each_request_afresh(far: Far, session: aiohttp.ClientSession) -> None:
    """The robot recomputes the signature from the timestamp and the secret; both are fresh."""
    far.answer = dingtalk_robot(DING_SECRET)
    r = ding(far)
    first = await r.send(notification(), session)
    await asyncio.sleep(0.005)
    second = await r.send(notification(), session)
    assert first.ok and second.ok, (first, second)
    a, b = far.requests
    assert a.query["access_token"] == DING_TOKEN
    assert a.query["timestamp"] != b.query["timestamp"]
    assert a.query["sign"] != b.query["sign"]
    for rec in (a, b):
        assert abs(int(rec.query["timestamp"]) / 1000 - rec.at) < 5
        # sent URL-encoded, as documented
        expected = quote_plus(dingtalk_expected_sign(rec.query["timestamp"], DING_SECRET))
        assert f"sign={expected}" in rec.path_qs
        assert_json_request(rec)


async def test_dingtalk_wrong_secret_is_rejected_permanently(
    far: Far, session: aiohttp.ClientSession
) -> None:
    """310000 (signature rejected) is permanent and names no secret."""
    far.answer = dingtalk_robot("SECsomething-else")
    result = await ding(far).send(notification(), session)
    assert not result.ok and result.permanent
    assert result.detail.startswith("errcode 310000")
    assert_no_secret(result)


async def test_dingtalk_markdown_body_and_keyword(far: Far, session: aiohttp.ClientSession) -> None:
    """A markdown message whose title and text carry the keyword."""
    far.answer = reply(200, {"errcode": 0, "errmsg": "ok"})
    result = await ding(far, None, keyword="值班告警").send(notification(), session)
    assert result.ok
    rec = far.requests[0]
    assert "timestamp" not in rec.query and "sign" not in rec.query  # no secret, no signing
    body = rec.json()
    assert body["msgtype"] == "markdown"
    assert body["markdown"]["title"].startswith("值班告警 【严重】龙潭镇 石门村")
    assert body["markdown"]["text"].startswith("#### 值班告警 【严重】龙潭镇 石门村")
    assert "- **现存通道**：卫星" in body["markdown"]["text"]


@pytest.mark.parametrize(
    ("answer", "retry_after", "permanent"),
    [
        (reply(200, {"errcode": 130101, "errmsg": "send too fast"}), 60.0, False),
        (reply(200, {"errcode": 460101, "errmsg": "message too long"}), None, True),
        (reply(200, {"errcode": 4242, "errmsg": "something new"}), None, False),
        (reply(200, "<html>portal</html>"), None, False),
        (reply(502, "bad gateway"), None, False),
    ],
)
async def test_dingtalk_error_codes_under_http_200(
    far: Far,
    session: aiohttp.ClientSession,
    answer: Answer,
    retry_after: float | None,
    permanent: bool,
) -> None:
    """A 200 with a non-zero errcode (or no JSON at all) is a failure."""
    far.answer = answer
    result = await ding(far).send(notification(), session)
    assert not result.ok
    assert result.retry_after == retry_after
    assert result.permanent is permanent
    assert_no_secret(result)


async def test_an_answer_in_pieces_is_read_whole(far: Far, session: aiohttp.ClientSession) -> None:
    """A robot answer split across chunks is still understood."""

    async def pieces(rec: Recorded) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        resp.enable_chunked_encoding()
        await resp.prepare(rec.request)
        await resp.write(b'{"errcode": 1')
        await asyncio.sleep(0.05)
        await resp.write(b'30101, "errmsg": "send too fast"}')
        await resp.write_eof()
        return resp

    far.answer = pieces
    result = await ding(far).send(notification(), session)
    assert not result.ok and result.retry_after == 60.0


async def test_dingtalk_huge_notification_fits_the_body_budget(
    far: Far, session: aiohttp.ClientSession
) -> None:
    """500 folded alerts: the body stays within the budget, the omission is said."""
    far.answer = reply(200, {"errcode": 0, "errmsg": "ok"})
    assert (await ding(far).send(huge(), session)).ok
    rec = far.requests[0]
    assert len(rec.body) <= DingTalkReceiver.BODY_BUDGET <= 20000
    text = rec.json()["markdown"]["text"]
    assert "另有 500 项设备告警已归入本村告警" in text
    assert text.rstrip().splitlines()[-1].startswith("- … 另有")


# --- WeCom ------------------------------------------------------------------------------


def wecom(far: Far) -> WeComReceiver:
    return WeComReceiver(f"{far.url}/cgi-bin/webhook/send?key={WECOM_KEY}")


async def test_wecom_markdown_content_within_4096_bytes(
    far: Far, session: aiohttp.ClientSession
) -> None:
    """markdown.content of a huge notification is at most 4096 UTF-8 bytes."""
    far.answer = reply(200, {"errcode": 0, "errmsg": "ok"})
    assert (await wecom(far).send(huge(), session)).ok
    rec = far.requests[0]
    assert_json_request(rec)
    assert rec.query["key"] == WECOM_KEY
    body = rec.json()
    assert body["msgtype"] == "markdown"
    content = body["markdown"]["content"]
    assert len(content.encode()) <= WeComReceiver.CONTENT_BUDGET <= 4096
    assert content.startswith("#### 【严重】龙潭镇 石门村")


@pytest.mark.parametrize(
    ("code", "retry_after", "permanent"),
    [(45009, 60.0, False), (93000, None, True), (40058, None, True)],
)
async def test_wecom_error_codes(
    far: Far,
    session: aiohttp.ClientSession,
    code: int,
    retry_after: float | None,
    permanent: bool,
) -> None:
    """Frequency limit waits a minute; a bad key or a too-long body is permanent."""
    far.answer = reply(200, {"errcode": code, "errmsg": f"refused key={WECOM_KEY}"})
    result = await wecom(far).send(notification(), session)
    assert not result.ok
    assert (result.retry_after, result.permanent) == (retry_after, permanent)
    assert f"errcode {code}" in result.detail
    assert_no_secret(result)


# --- Feishu -----------------------------------------------------------------------------


def feishu(far: Far, secret: str | None = FEISHU_SECRET) -> FeishuReceiver:
    return FeishuReceiver(f"{far.url}/open-apis/bot/v2/hook/{FEISHU_TOKEN}", secret)


async def test_feishu_signs_in_the_body_with_the_documented_key(
    far: Far, session: aiohttp.ClientSession
) -> None:
    """timestamp in seconds as a string; sign keyed with "timestamp\\nsecret" over nothing."""
    far.answer = feishu_robot(FEISHU_SECRET)
    result = await feishu(far).send(notification(), session)
    assert result.ok, result
    rec = far.requests[0]
    assert_json_request(rec)
    body = rec.json()
    assert isinstance(body["timestamp"], str) and len(body["timestamp"]) == 10
    swapped = base64.b64encode(
        hmac.new(
            FEISHU_SECRET.encode(), f"{body['timestamp']}\n{FEISHU_SECRET}".encode(), hashlib.sha256
        ).digest()
    ).decode()
    assert body["sign"] != swapped  # the DingTalk recipe would be rejected with 19021
    assert body["msg_type"] == "interactive"
    card = body["card"]
    assert card["header"]["template"] == "red"
    assert card["header"]["title"]["content"].startswith("【严重】龙潭镇 石门村")
    element = card["elements"][0]["text"]
    assert element["tag"] == "lark_md"
    assert element["content"].startswith("- **现存通道**")


async def test_feishu_wrong_secret_is_rejected_permanently(
    far: Far, session: aiohttp.ClientSession
) -> None:
    """19021 (signature) is permanent and names no secret."""
    far.answer = feishu_robot("another secret")
    result = await feishu(far).send(notification(), session)
    assert not result.ok and result.permanent and "code 19021" in result.detail
    assert_no_secret(result)


async def test_feishu_header_colour_by_severity_and_resolution(
    far: Far, session: aiohttp.ClientSession
) -> None:
    """Orange for a warning, green once resolved."""
    far.answer = reply(200, {"code": 0, "msg": "success"})
    warn = (alert("site_channel_lost", starts=NOW - 60, channel="pdt370"),)
    done = (alert("site_channel_lost", starts=NOW - 60, ends=NOW, channel="pdt370"),)
    r = feishu(far, None)
    await r.send(notification(alerts=warn, folded=0), session)
    await r.send(notification(alerts=done, folded=0, status="resolved"), session)
    colours = [rec.json()["card"]["header"]["template"] for rec in far.requests]
    assert colours == ["orange", "green"]
    assert "sign" not in far.requests[0].json()


@pytest.mark.parametrize(
    ("status", "code", "retry_after", "permanent"),
    [
        (400, 9499, None, True),
        (200, 11232, 60.0, False),
        (400, 11232, 60.0, False),
        (200, 19024, None, True),
    ],
)
async def test_feishu_error_codes_under_200_and_400(
    far: Far,
    session: aiohttp.ClientSession,
    status: int,
    code: int,
    retry_after: float | None,
    permanent: bool,
) -> None:
    """A 200 or 400 with a non-zero code is a failure, judged by the code."""
    far.answer = reply(status, {"code": code, "msg": f"no ({FEISHU_TOKEN})", "data": {}})
    result = await feishu(far).send(notification(), session)
    assert not result.ok
    assert (result.retry_after, result.permanent) == (retry_after, permanent)
    assert f"code {code}" in result.detail
    assert_no_secret(result)


async def test_feishu_huge_notification_fits_the_body_budget(
    far: Far, session: aiohttp.ClientSession
) -> None:
    """500 folded alerts: the whole signed body stays within the budget."""
    far.answer = feishu_robot(FEISHU_SECRET)
    assert (await feishu(far).send(huge(), session)).ok
    rec = far.requests[0]
    assert len(rec.body) <= FeishuReceiver.BODY_BUDGET <= 20000
    assert (
        "另有 500 项设备告警已归入本村告警" in rec.json()["card"]["elements"][0]["text"]["content"]
    )


# --- secrets and small pieces -----------------------------------------------------------


async def test_no_receiver_leaks_its_secret_or_url(
    far: Far, session: aiohttp.ClientSession
) -> None:
    """Whatever the far end echoes back, no detail or repr holds a token, key or secret."""

    async def echo(rec: Recorded) -> web.StreamResponse:
        text = f"{rec.path_qs} {rec.body[:300].decode(errors='replace')} {DING_SECRET}"
        text += f" {FEISHU_SECRET}"
        return web.json_response(
            {"errcode": 310000, "errmsg": text, "code": 9499, "msg": text}, status=400
        )

    far.answer = echo
    receivers: list[Receiver] = [
        ding(far),
        wecom(far),
        feishu(far),
        WebhookReceiver(f"{far.url}/hook/{HOOK_TOKEN}?token={HOOK_TOKEN}"),
    ]
    results = [await r.send(notification(), session) for r in receivers]
    far.answer = hang(far)
    for r in receivers:
        r.timeout = 0.2
    results += [await r.send(notification(), session) for r in receivers]
    assert all(not r.ok for r in results)
    assert_no_secret(*results)
    for r in receivers:
        for secret in SECRETS:
            assert secret not in repr(r)


def test_redact_url_keeps_only_scheme_host_and_port() -> None:
    """Paths and queries hold tokens; they go."""
    assert redact_url(f"https://oapi.dingtalk.com/robot/send?access_token={DING_TOKEN}") == (
        "https://oapi.dingtalk.com/…"
    )
    assert redact_url("http://u:pw@127.0.0.1:8080/x/y") == "http://127.0.0.1:8080/…"


def test_parse_retry_after_reads_seconds_and_http_dates() -> None:
    """Delay-seconds or an HTTP-date; garbage is None; never negative."""
    now = time.time()
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    assert parse_retry_after("-3") == 0.0
    later = format_datetime(datetime.fromtimestamp(now, UTC) + timedelta(seconds=120), usegmt=True)
    assert parse_retry_after(later, now=now) == pytest.approx(120, abs=1)


def test_a_bad_url_is_refused_at_construction() -> None:
    """A URL without http(s) and host is a configuration error, not a send failure."""
    with pytest.raises(ValueError, match="not an http"):
        WeComReceiver("qyapi.weixin.qq.com/cgi-bin/webhook/send")


def test_declared_rates() -> None:
    """The robots' documented per-minute limits (Feishu halved: shared quota, 5/s cap)."""
    assert DingTalkReceiver("http://127.0.0.1/x").max_per_minute == 20
    assert WeComReceiver("http://127.0.0.1/x").max_per_minute == 20
    assert FeishuReceiver("http://127.0.0.1/x").max_per_minute == 50
    assert DingTalkReceiver("http://127.0.0.1/x").timeout == 10.0


def test_alert_helper_shapes() -> None:
    """The shared test notification has the alerts the receiver tests rely on."""
    n = notification()
    assert [a.rule for a in n.alerts] == ["outage_active", "site_channel_lost", "device_down"]
    assert isinstance(n.alerts[0], Alert)


# --- the registry: configuration type -> receiver ----------------------------------------


def test_every_receiver_type_is_registered_and_built_from_its_spec() -> None:
    """Each spec's ``type`` has its class in the registry, built with the configured name,
    timeout and secret; a class given another type's spec refuses it."""
    specs = get_args(get_args(ReceiverSpec)[0])
    types = {get_args(spec.model_fields["type"].annotation)[0] for spec in specs}
    assert set(RECEIVERS) == types
    alerting = AlertingSpec.model_validate({"receivers": [
        {"name": f"r-{kind}", "type": kind, "url": f"http://127.0.0.1:9/{kind}?key={DING_TOKEN}",
         "timeout": 3, **({"secret": DING_SECRET} if kind in ("dingtalk", "feishu") else {})}
        for kind in sorted(types)
    ]})
    for spec in alerting.receivers:
        receiver = build_receiver(spec, DEFAULT_TZ)
        assert type(receiver) is RECEIVERS[spec.type]
        assert (receiver.name, receiver.timeout) == (spec.name, 3.0)
        assert getattr(receiver, "secret", None) == (
            DING_SECRET if spec.type in ("dingtalk", "feishu") else None)
    webhook = WebhookSpec.model_validate({"name": "w", "type": "webhook", "url": "http://x/"})
    with pytest.raises(TypeError, match="'webhook' receiver's spec, not a DingTalkSpec"):
        DingTalkReceiver.from_spec(webhook, DEFAULT_TZ)


def configured(directory: Path, *lines: str) -> Receiver:
    """The receiver a configuration file's ``alerting.receivers`` block (``lines``, YAML)
    describes, as the loader reads it and the registry builds it."""
    directory.mkdir(exist_ok=True)
    text = DEMO.read_text(encoding="utf-8").replace(
        "profiles_dir: profiles", f"profiles_dir: {DEMO.parent / 'profiles'}", 1)
    block = "".join(f"{'    - ' if i == 0 else '      '}{line}\n" for i, line in enumerate(lines))
    path = directory / "commsmon.yaml"
    path.write_text(f"{text}\nalerting:\n  receivers:\n{block}", encoding="utf-8")
    (spec,) = load_config(path).alerting.receivers
    return build_receiver(spec, DEFAULT_TZ)


async def test_a_configured_dingtalk_keyword_passes_the_robots_keyword_check(
    far: Far, session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    """A robot whose security setting is a custom keyword refuses a message without it
    (310000, a rejection); with ``keyword:`` in the configuration the message carries it."""
    far.answer = dingtalk_keyword_robot("山亭值班")
    url = f"url: {far.url}/robot/send?access_token={DING_TOKEN}"
    with_keyword = configured(tmp_path / "a", "name: duty", "type: dingtalk", url,
                              "keyword: 山亭值班")
    without = configured(tmp_path / "b", "name: duty", "type: dingtalk", url)
    assert isinstance(with_keyword, DingTalkReceiver) and with_keyword.keyword == "山亭值班"
    accepted = await with_keyword.send(notification(), session)
    refused = await without.send(notification(), session)
    assert accepted.ok, accepted
    assert far.requests[0].json()["markdown"]["text"].startswith("#### 山亭值班 【严重】")
    assert not refused.ok and refused.permanent
    assert refused.rejection == Rejection("310000", "keywords not in content")
    assert_no_secret(accepted, refused)


async def test_a_configured_external_url_reaches_the_webhook_payload(
    far: Far, session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    """``external_url`` is the payload's ``externalURL`` and the base of each alert's
    ``generatorURL``; without it both are empty."""
    far.answer = reply(200, "")
    url = f"url: {far.url}/hook/{HOOK_TOKEN}"
    hook = configured(tmp_path / "a", "name: archive", "type: webhook", url,
                      "external_url: http://commsmon.example:9470/")
    plain = configured(tmp_path / "b", "name: archive", "type: webhook", url)
    assert (await hook.send(notification("en"), session)).ok
    assert (await plain.send(notification("en"), session)).ok
    body, bare = (rec.json() for rec in far.requests)
    assert body["externalURL"] == "http://commsmon.example:9470"
    assert body["alerts"][0]["generatorURL"] == "http://commsmon.example:9470/api/v1/sites/v05"
    assert bare["externalURL"] == "" and bare["alerts"][0]["generatorURL"] == ""


async def test_a_configured_firing_ttl_sets_alertmanagers_ends_at(
    far: Far, session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    """A firing alert's ``endsAt`` is the push time + ``firing_ttl``; a resolved one keeps
    its own end."""
    far.answer = reply(200, "")
    am = configured(tmp_path, "name: am", "type: alertmanager", f"url: {far.url}/am",
                    "firing_ttl: 28800", "external_url: http://commsmon.example:9470")
    before = time.time()
    assert (await am.send(notification("zh"), session)).ok
    after = time.time()
    rec = far.requests[0]
    assert rec.path == "/am/api/v2/alerts"
    by_name = {a["labels"].get("device", a["labels"]["alertname"]): a for a in rec.json()}
    ends = datetime.fromisoformat(by_name["outage_active"]["endsAt"]).timestamp()
    assert before + 28800 - 0.001 <= ends <= after + 28800
    assert by_name["v05-router"]["endsAt"] == "2025-11-29T07:59:00.000Z"  # resolved
    assert by_name["outage_active"]["generatorURL"] == (
        "http://commsmon.example:9470/api/v1/sites/v05")
