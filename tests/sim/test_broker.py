"""Mosquitto: a real broker on 127.0.0.1 that can be stopped, killed and restarted."""

from __future__ import annotations

import asyncio
import socket

import pytest

from commsmon.sim import broker as broker_module
from commsmon.sim.broker import BrokerError, Mosquitto

pytestmark = pytest.mark.integration


async def _run(*cmd: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        *cmd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode()


async def _publish_retained(broker: Mosquitto, topic: str, payload: str) -> None:
    rc, out = await _run(
        "mosquitto_pub", "-h", broker.host, "-p", str(broker.port), "-t", topic, "-m", payload,
        "-r", "-q", "1",
    )  # fmt: skip
    assert rc == 0, out


async def _read_retained(broker: Mosquitto, topic: str) -> str | None:
    """The retained payload on ``topic``, or None when there is none (1 s wait)."""
    rc, out = await _run(
        "mosquitto_sub", "-h", broker.host, "-p", str(broker.port), "-t", topic,
        "-C", "1", "-W", "1", "--retained-only",
    )  # fmt: skip
    return out.strip() if rc == 0 else None


async def _accepts(port: int) -> bool:
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return False
    writer.close()
    await writer.wait_closed()
    return True


async def test_retained_message_round_trip() -> None:
    """A retained presence message published to the broker is delivered to a later subscriber."""
    async with Mosquitto() as broker:
        assert broker.host == "127.0.0.1"
        await _publish_retained(broker, "village/v01/cam-1/status", "online")
        assert await _read_retained(broker, "village/v01/cam-1/status") == "online"


async def test_stop_and_start_on_same_port() -> None:
    """stop() closes the port; start() listens on the same port again, with no old state."""
    async with Mosquitto() as broker:
        port = broker.port
        await _publish_retained(broker, "t/retained", "before")
        await broker.stop()
        assert not broker.running
        assert not await _accepts(port)
        await broker.start()
        assert broker.port == port
        assert await _accepts(port)
        # persistence false: a restart forgets retained messages
        assert await _read_retained(broker, "t/retained") is None
        await _publish_retained(broker, "t/retained", "after")
        assert await _read_retained(broker, "t/retained") == "after"


async def test_kill_and_start_again() -> None:
    """kill() is a crash; the broker comes back on the same port."""
    async with Mosquitto() as broker:
        port = broker.port
        await broker.kill()
        assert not await _accepts(port)
        await broker.start()
        assert await _accepts(port)


async def test_given_port_in_use_is_a_clear_error() -> None:
    """A port someone else listens on is refused instead of silently probing the wrong server."""
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        with pytest.raises(BrokerError, match="already in use"):
            async with Mosquitto(port=other.getsockname()[1]):
                pass


async def test_missing_binary_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without mosquitto installed, start() says so."""
    monkeypatch.setattr(broker_module, "find_mosquitto", lambda: None)
    with pytest.raises(BrokerError, match="mosquitto not found"):
        async with Mosquitto():
            pass
