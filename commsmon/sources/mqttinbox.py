"""The MQTT session's incoming messages, handed over by paho without wrapping.

aiomqtt turns each PUBLISH paho has read into its own ``Message`` (a ``Topic``
checked for wildcards) and an ``asyncio.Queue`` entry that its iterator takes
with a new task and a wait: about a quarter of a burst's CPU beside what the
message says.  :func:`receive_into` makes paho give its ``MQTTMessage`` straight
to an :class:`Inbox`, a bounded deque the session drains in batches; aiomqtt
keeps the connection, subscriptions and publishing, and its iterator, which
then never yields, still tells when the session is lost.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Iterator
from typing import Any

import aiomqtt
import structlog
from paho.mqtt.client import MQTTMessage
from paho.mqtt.matcher import MQTTMatcher

from commsmon.selfmetrics import MQTT_MESSAGES

__all__ = ["Inbox", "Received", "receive_into", "until_lost"]

log = structlog.get_logger("commsmon.mqtt")

_DROPPED = MQTT_MESSAGES.labels("unrouted", "dropped")

#: A message as held: topic, payload, whether the broker replayed it as retained.
Received = tuple[str, bytes | bytearray, bool]


class Inbox:
    """Messages read (QoS 1: acknowledged once :meth:`put` returns) but not yet
    handled, oldest first.

    Args:
        size: messages held at most; beyond it a message is dropped, counted in
            ``commsmon_mqtt_messages_total{kind="unrouted",result="dropped"}`` and
            logged once until the inbox is empty again.
    """

    def __init__(self, size: int) -> None:
        self._size = size
        self._messages: collections.deque[Received] = collections.deque()
        self._filled = asyncio.Event()
        self._dropping = False
        self._woken = False

    def __len__(self) -> int:
        return len(self._messages)

    def put(self, client: Any, userdata: Any, message: MQTTMessage) -> None:
        """paho's ``on_message``: keep what ``message`` says (in the event loop's thread).

        Only its topic, payload and retain flag are kept: a paho message holds a
        ``threading.Condition``, and thousands of them waiting here made the garbage
        collector's passes a fifth of a burst's CPU.
        """
        if len(self._messages) >= self._size:
            _DROPPED.inc()
            if not self._dropping:
                self._dropping = True
                log.error("mqtt messages dropped: the inbox is full", size=self._size)
            return
        try:
            topic = message.topic
        except UnicodeDecodeError:  # no broker lets one through; no route has it either
            topic = ""
        self._messages.append((topic, message.payload, message.retain))
        self._filled.set()

    def take(self, most: int) -> list[Received]:
        """Up to ``most`` messages, oldest first, leaving them no longer held."""
        messages = self._messages
        if len(messages) <= most:
            batch = list(messages)
            messages.clear()
            self._dropping = False
            return batch
        return [messages.popleft() for _ in range(most)]

    async def wait(self) -> None:
        """Return once a message is held or :meth:`wake` has been called."""
        if not self._messages and not self._woken:
            self._filled.clear()
            await self._filled.wait()

    def wake(self) -> None:
        """End this and every later :meth:`wait` though nothing came (the session is
        lost)."""
        self._woken = True
        self._filled.set()


def receive_into(client: aiomqtt.Client, inbox: Inbox) -> aiomqtt.Client:
    """Make ``client`` (not yet connected) give every message it reads to ``inbox``.

    Returns ``client``.  Sets paho's ``on_message`` through aiomqtt's ``_client``
    (the way aiomqtt's documentation sets paho-level options), so messages queued
    for a persistent session, which arrive before the SUBSCRIBE, are kept too.
    """
    client._client.on_message = inbox.put
    client._client._on_message_filtered = _NoneAdded()
    return client


class _NoneAdded(MQTTMatcher):
    """paho's per-topic callbacks (``message_callback_add``), which neither commsmon nor
    aiomqtt adds: a message matched against none of them is matched at once.

    paho looks every message up here, and its lookup makes a closure that refers to
    itself: a reference cycle per message, which only the garbage collector frees (at
    20 000 devices, 30 000 such objects every 30 s, and a young collection each
    minute to find them).
    """

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]

    def iter_match(self, topic: str) -> Iterator[Any]:
        if self._root._children:  # one was added after all: paho's own lookup
            return super().iter_match(topic)  # type: ignore[no-untyped-call,no-any-return]
        return iter(())


async def until_lost(client: aiomqtt.Client) -> None:
    """Wait until ``client``'s session is lost.

    Raises:
        aiomqtt.MqttError: always, once the session is lost (aiomqtt's iterator
            raises it; with :func:`receive_into` it has no message to give, and one
            it gave anyway, from a later aiomqtt, is counted dropped and logged).
    """
    async for message in client.messages:
        _DROPPED.inc()
        log.error("mqtt message dropped: it came past the inbox", topic=str(message.topic))
    raise aiomqtt.MqttError("the session ended")
