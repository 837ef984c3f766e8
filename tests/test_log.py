"""The daemon's logging set-up (commsmon/log.py)."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import aiomqtt.client
import pytest

from commsmon.log import configure_logging


@pytest.fixture
def restored() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    levels = {name: logging.getLogger(name).level for name in ("mqtt", "pysnmp")}
    yield
    root.handlers[:], root.level = handlers, level
    for name, was in levels.items():
        logging.getLogger(name).setLevel(was)


def test_at_debug_level_the_mqtt_client_does_not_log_every_packet(restored: None) -> None:
    """aiomqtt and paho log a line per packet at debug level under the logger
    aiomqtt hands paho; ``--log-level debug`` must not make that 20 000 lines a
    second during a burst."""
    configure_logging("debug", json=True)
    packets = aiomqtt.client.MQTT_LOGGER
    assert logging.getLogger().isEnabledFor(logging.DEBUG)
    assert not packets.isEnabledFor(logging.DEBUG)
    assert packets.isEnabledFor(logging.WARNING)
