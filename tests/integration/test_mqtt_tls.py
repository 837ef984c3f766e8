"""MQTT over TLS with a client certificate and a password, against a real Mosquitto."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import aiomqtt
import pytest
from pydantic import SecretStr

from commsmon.config.services import MqttSpec, TlsClientSpec
from commsmon.core.types import Observation
from commsmon.sim.broker import Mosquitto
from commsmon.sources.mqtt import MqttSource, Route
from tests.tlsharness import Pki, make_pki

pytestmark = pytest.mark.integration

USER, PASSWORD = "commsmon", "broker-Passw0rd"
TOPIC = "commsmon/v01/v01-sat/status"


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return make_pki(tmp_path / "pki")


@pytest.fixture
def passwords(tmp_path: Path) -> Path:
    path = tmp_path / "passwd"
    subprocess.run(["mosquitto_passwd", "-b", "-c", str(path), USER, PASSWORD], check=True,
                   capture_output=True)
    return path


@pytest.fixture
async def broker(pki: Pki, passwords: Path) -> AsyncIterator[Mosquitto]:
    listener = [f"cafile {pki.ca}", f"certfile {pki.server_cert}", f"keyfile {pki.server_key}",
                "require_certificate true", "tls_version tlsv1.2"]
    async with Mosquitto(listener=listener, password_file=passwords) as b:
        yield b


def _spec(broker: Mosquitto, pki: Pki, *, cert: Path, key: Path, password: str,
          client_id: str) -> MqttSpec:
    return MqttSpec(
        host="127.0.0.1", port=broker.port, client_id=client_id, username=USER,
        password=SecretStr(password), reconnect_max=1.0,
        tls=TlsClientSpec(ca_file=str(pki.ca), cert_file=str(cert), key_file=str(key)),
    )


async def _run(spec: MqttSpec, seconds: float) -> tuple[list[Observation], list[bool]]:
    """Run a source for ``seconds``; what it observed and its link changes."""
    seen: list[Observation] = []
    links: list[bool] = []
    source = MqttSource(spec, {TOPIC: Route("v01-sat", "status", {})}, seen.append, links.append)
    task = asyncio.create_task(source.run())
    await asyncio.sleep(seconds)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    return seen, links


async def _publish_retained(broker: Mosquitto, pki: Pki) -> None:
    tls = ssl.create_default_context(cafile=str(pki.ca))
    tls.load_cert_chain(str(pki.client_cert), str(pki.client_key))
    async with aiomqtt.Client("127.0.0.1", broker.port, username=USER, password=PASSWORD,
                              tls_context=tls, identifier="device-v01-sat") as client:
        await client.publish(TOPIC, "online", qos=1, retain=True)


async def test_tls_with_client_certificate_and_password(broker: Mosquitto, pki: Pki) -> None:
    """The right CA, certificate and password: subscribed, the retained presence arrives."""
    await _publish_retained(broker, pki)
    spec = _spec(broker, pki, cert=pki.client_cert, key=pki.client_key, password=PASSWORD,
                 client_id="commsmon-tls")
    seen, links = await _run(spec, 3.0)
    assert links[:1] == [True]
    assert [(o.device, o.reachable) for o in seen] == [("v01-sat", True)]


@pytest.mark.parametrize("case", ["stranger certificate", "wrong password"])
async def test_tls_refusals_keep_retrying_without_crashing(
    broker: Mosquitto, pki: Pki, case: str
) -> None:
    """A certificate from another CA, or a wrong password: never subscribed, the source
    keeps retrying (no exception escapes), and nothing is observed."""
    await _publish_retained(broker, pki)
    if case == "stranger certificate":
        spec = _spec(broker, pki, cert=pki.stranger_cert, key=pki.stranger_key,
                     password=PASSWORD, client_id="commsmon-stranger")
    else:
        spec = _spec(broker, pki, cert=pki.client_cert, key=pki.client_key,
                     password="not-the-password", client_id="commsmon-wrongpw")
    seen, links = await _run(spec, 3.0)
    assert True not in links
    assert seen == []
    assert "certificate" in broker.log_file.read_text() or case == "wrong password"


async def test_tls_config_names_missing_files(tmp_path: Path, pki: Pki) -> None:
    """A certificate path that does not exist is a configuration error naming it."""
    with pytest.raises(ValueError, match="cert_file: no such file"):
        TlsClientSpec(ca_file=str(pki.ca), cert_file=str(tmp_path / "nope.crt"),
                      key_file=str(pki.client_key))
