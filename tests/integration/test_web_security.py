"""The HTTP listener with TLS and basic auth, as Prometheus' web-config would set it up."""

from __future__ import annotations

import asyncio
import base64
import ssl
import subprocess
import sys
from pathlib import Path

import aiohttp
import bcrypt
import pytest
from ruamel.yaml import YAML

from tests.fleetharness import ROOT, DaemonProcess, free_port, write_config
from tests.tlsharness import make_pki

pytestmark = pytest.mark.integration

USER, PASSWORD, TOKEN = "prometheus", "scrape-Passw0rd", "api-Token-123"


def _basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


async def test_https_with_basic_auth_and_token(tmp_path: Path) -> None:
    pki = make_pki(tmp_path / "pki")
    path, port = write_config(tmp_path, mqtt_port=free_port())
    yaml = YAML()
    data = yaml.load(path.read_text(encoding="utf-8"))
    (tmp_path / "token").write_text(TOKEN)
    data["http"].update(
        token=f"${{file:{tmp_path / 'token'}}}",
        tls={"cert_file": str(pki.server_cert), "key_file": str(pki.server_key)},
        basic_auth_users={USER: bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(4)).decode()},
    )
    with path.open("w", encoding="utf-8") as f:
        yaml.dump(data, f)
    daemon = DaemonProcess(path, port, tmp_path / "daemon.log")
    base = f"https://127.0.0.1:{port}"
    tls = ssl.create_default_context(cafile=str(pki.ca))
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=tls)) as s:
            for _ in range(100):  # until it listens
                try:
                    async with s.get(f"{base}/healthz") as r:
                        assert r.status in (200, 503)  # open to probes, never 401
                        break
                except aiohttp.ClientConnectorError:
                    await asyncio.sleep(0.1)

            async def status(path: str, headers: dict[str, str] | None = None,
                             method: str = "GET") -> int:
                async with s.request(method, base + path, headers=headers or {},
                                     json={} if method == "POST" else None) as r:
                    if r.status == 401 and method == "GET":
                        assert r.headers["WWW-Authenticate"] == 'Basic realm="commsmon"'
                    if r.status == 200 and path == "/metrics":
                        assert "commsmon_device_info" in await r.text()
                    return r.status

            assert await status("/metrics") == 401
            assert await status("/metrics", _basic(USER, PASSWORD)) == 200
            assert await status("/metrics", _basic(USER, PASSWORD)) == 200  # cached check
            assert await status("/metrics", _basic(USER, "wrong")) == 401
            assert await status("/metrics", _basic("mallory", PASSWORD)) == 401
            assert await status("/metrics", {"Authorization": f"Bearer {TOKEN}"}) == 200
            assert await status("/api/v1/sites", _basic(USER, PASSWORD)) == 200
            assert await status("/api/v1/sites") == 401
            # Reading credentials never write: the API wants the bearer token.
            assert await status("/api/v1/checkins", _basic(USER, PASSWORD), "POST") == 401
        with pytest.raises(aiohttp.ClientError):  # plain HTTP to the TLS port
            async with aiohttp.ClientSession() as s, s.get(f"http://127.0.0.1:{port}/metrics"):
                pass
        # The CLI on the same host finds https, trusts the daemon's certificate, uses the token.
        cli = await asyncio.to_thread(
            subprocess.run, [sys.executable, "-m", "commsmon", "status", "-c", str(path)],
            capture_output=True, text=True, cwd=ROOT, timeout=30)
        assert cli.returncode == 0, cli.stderr
        assert "v01" in cli.stdout
    finally:
        assert daemon.stop() == 0, daemon.log()[-2000:]
    log = daemon.log()
    assert "https://127.0.0.1" in log
    for secret in (PASSWORD, TOKEN, data["http"]["basic_auth_users"][USER]):
        assert secret not in log
