"""The daemon's logging set-up (commsmon/log.py)."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import aiomqtt.client
import pytest
import structlog

from commsmon.log import configure_logging


@pytest.fixture
def restored() -> Iterator[None]:
    """Put back what configure_logging changes: the root logger, the quieted
    libraries' levels and structlog's configuration."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    names = ("pysnmp", "pyasn1", "mqtt", "aiohttp.access")
    levels = {name: logging.getLogger(name).level for name in names}
    config = structlog.get_config()
    yield
    root.handlers[:], root.level = handlers, level
    for name, was in levels.items():
        logging.getLogger(name).setLevel(was)
    structlog.configure(**config)


def test_at_debug_level_the_mqtt_client_does_not_log_every_packet(restored: None) -> None:
    """aiomqtt and paho log a line per packet at debug level under the logger
    aiomqtt hands paho; ``--log-level debug`` must not make that 20 000 lines a
    second during a burst, whatever level aiomqtt itself leaves it at."""
    packets = aiomqtt.client.MQTT_LOGGER
    packets.setLevel(logging.NOTSET)  # aiomqtt 2.5 sets warning on import; not ours to rely on
    configure_logging("debug", json=True)
    assert logging.getLogger().isEnabledFor(logging.DEBUG)
    assert not packets.isEnabledFor(logging.DEBUG)
    assert packets.isEnabledFor(logging.WARNING)
