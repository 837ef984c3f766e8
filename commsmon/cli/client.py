"""``commsmon status | checkin | declare | clear``: talk to a running daemon's API."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import ssl
import sys
from typing import Any

import aiohttp

from commsmon.cli.table import render_status
from commsmon.config.load import load_config
from commsmon.errors import ConfigError
from commsmon.outputs.wording import Language

__all__ = ["run_client"]


def run_client(args: argparse.Namespace) -> int:
    """Run one client command; 0 on success, 1 on an API error, 2 on bad usage."""
    url, token = args.url, args.token or os.environ.get("COMMSMON_TOKEN")
    tls: ssl.SSLContext | None = None
    if args.config is not None:
        try:
            config = load_config(args.config)
        except ConfigError as exc:
            print("\n".join(exc.problems), file=sys.stderr)
            return 2
        host = "127.0.0.1" if config.http.listen in ("0.0.0.0", "::") else config.http.listen
        if config.http.tls is not None:
            # On the daemon's host: trust its own certificate, whoever signed it.
            tls = ssl.create_default_context(cafile=config.http.tls.cert_file)
            tls.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
        scheme = "https" if tls else "http"
        url = url or f"{scheme}://{host}:{config.http.port}"
        if token is None and config.http.token is not None:
            token = config.http.token.get_secret_value()
    url = (url or "http://127.0.0.1:9470").rstrip("/")
    try:
        return asyncio.run(_command(args, url, token, tls))
    except aiohttp.ClientError as exc:
        print(f"commsmon: cannot reach the daemon at {url}: {exc}", file=sys.stderr)
        return 1


async def _command(
    args: argparse.Namespace, url: str, token: str | None, tls: ssl.SSLContext | None
) -> int:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    timeout = aiohttp.ClientTimeout(total=10)
    connector = aiohttp.TCPConnector(ssl=tls) if tls else None
    async with aiohttp.ClientSession(timeout=timeout, headers=headers,
                                     connector=connector) as session:
        if args.command == "status":
            path = f"/api/v1/sites/{args.site}" if args.site else "/api/v1/sites"
            query = f"?lang={args.lang}" if args.lang else ""
            status, body = await _call(session, "GET", url + path + query)
            if status != 200:
                return _fail(status, body)
            sites = [body] if args.site else body["sites"]
            language: Language = "en" if body.get("language") == "en" else "zh"
            print(render_status(sites, reasons=args.reasons, language=language))
            return 0
        if args.command == "checkin":
            payload: dict[str, Any] = {"device": args.device, "result": args.result,
                                       "note": args.note, "by": args.by}
            if args.battery is not None:
                payload["battery"] = args.battery
            status, body = await _call(session, "POST", f"{url}/api/v1/checkins", payload)
        elif args.command in ("ack", "unack", "escalate"):
            where = {"group": "monitor"} if args.site == "monitor" else {"site": args.site}
            payload = {**where, "action": args.command, "by": args.by}
            status, body = await _call(session, "POST", f"{url}/api/v1/acks", payload)
        elif args.command == "drill":
            request = _drill_request(args, url)
            if request is None:
                return 2
            status, body = await _call(session, *request)
        elif args.command == "declare":
            payload = {"site": args.site, "kind": args.kind, "note": args.note, "by": args.by,
                       "until": args.until}
            status, body = await _call(session, "POST", f"{url}/api/v1/outages", payload)
        else:
            status, body = await _call(
                session, "DELETE", f"{url}/api/v1/outages/{args.site}/{args.kind}")
        if status >= 300:
            return _fail(status, body)
        print(json.dumps(body, ensure_ascii=False) if body else "ok")
        return 0


async def _call(
    session: aiohttp.ClientSession, method: str, url: str, payload: Any = None
) -> tuple[int, Any]:
    async with session.request(method, url, json=payload) as response:
        if response.content_type == "application/json":
            return response.status, await response.json()
        return response.status, None


def _drill_request(args: argparse.Namespace, url: str) -> tuple[str, str, Any] | None:
    """(method, URL, body) of a ``drill`` command; ``None`` (said why) on bad usage."""
    if args.action == "list":
        return "GET", f"{url}/api/v1/drills", None
    if args.action in ("stop", "show"):
        if not args.target:
            print(f"commsmon drill {args.action}: name the drill (or, to stop, the site)",
                  file=sys.stderr)
            return None
        if args.action == "show":
            return "GET", f"{url}/api/v1/drills/{args.target}", None
        return "POST", f"{url}/api/v1/drills/{args.target}/stop", None
    if not args.site or not args.scenario:
        print("commsmon drill start: give --site and --scenario", file=sys.stderr)
        return None
    payload: dict[str, Any] = {"site": args.site, "scenario": args.scenario,
                               "note": args.note, "by": args.by, "until": args.until}
    if args.minutes is not None:
        payload["duration"] = args.minutes * 60
    return "POST", f"{url}/api/v1/drills", payload


def _fail(status: int, body: Any) -> int:
    message = body.get("error") if isinstance(body, dict) else None
    print(f"commsmon: HTTP {status}: {message or 'request failed'}", file=sys.stderr)
    return 1
