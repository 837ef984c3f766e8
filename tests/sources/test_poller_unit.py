"""The poller on the recording fake (commsmon/sources/snmp/fake.py): what each
answer or error becomes, with no network and an injected clock. The same paths run
against real agents in test_poller.py, test_snmp_auth.py and test_snmp_misbehaving.py.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

import pytest

from commsmon.config.profiles import ReadingSpec
from commsmon.core.types import Observation, Reading
from commsmon.errors import (
    SnmpAuthError,
    SnmpError,
    SnmpProtocolError,
    SnmpTimeout,
    SnmpUnexpectedSource,
)
from commsmon.sources.snmp.base import NO_SUCH_OBJECT, SnmpTarget, SnmpValue, ValueType
from commsmon.sources.snmp.fake import RecordingClient, Request
from commsmon.sources.snmp.poller import SYS_UPTIME, PollJob, SnmpPoller

NOW = 1_764_400_000.0
TARGET = SnmpTarget("192.0.2.7", 161, timeout=1.0, retries=0)
CHARGE = "1.3.6.1.2.1.33.1.2.4.0"  # upsEstimatedChargeRemaining, percent
RUNTIME = "1.3.6.1.2.1.33.1.2.3.0"  # upsEstimatedMinutesRemaining
OCTETS = "1.3.6.1.2.1.31.1.1.1.6.2"  # ifHCInOctets.2, Counter64
SPECS = {
    "charge": (CHARGE, ReadingSpec(oid=CHARGE, scale=0.01)),
    "runtime": (RUNTIME, ReadingSpec(oid=RUNTIME, scale=60, invalid=[-1])),
}


def integer(value: int, kind: ValueType = ValueType.INTEGER) -> SnmpValue:
    return SnmpValue(kind, value)


async def poll_once(client: RecordingClient, readings: dict[str, tuple[str, ReadingSpec]] = SPECS,
                    ) -> tuple[Observation, list[Observation]]:
    seen: list[Observation] = []
    job = PollJob("v01-ups", TARGET, 60.0, readings)
    obs = await SnmpPoller(client, [job], seen.append, clock=lambda: NOW).poll(job)
    return obs, seen


async def test_a_good_answer_is_a_reachable_observation_with_si_readings() -> None:
    """96 % and 42 minutes: charge 0.96 (ratio), runtime 2520 s; OIDs asked once, sorted."""
    client = RecordingClient({"192.0.2.7:161": {CHARGE: integer(96), RUNTIME: integer(42)}})
    obs, seen = await poll_once(client)
    assert seen == [obs]
    assert (obs.device, obs.at, obs.reachable, obs.error) == ("v01-ups", NOW, True, None)
    assert obs.readings == {"charge": pytest.approx(0.96), "runtime": 2520}
    assert client.requests == [Request(TARGET, tuple(sorted([CHARGE, RUNTIME])))]


@pytest.mark.parametrize(("error", "expected"), [
    # (what the client raises, the observation's error and detail)
    (SnmpTimeout("no answer", status="requestTimedOut"), ("no_answer", "")),
    (SnmpAuthError("rejected", status="usmStatsWrongDigests"),
     ("auth_error", "usmStatsWrongDigests")),
    (SnmpUnexpectedSource("from elsewhere", address="192.0.2.8"),
     ("unexpected_source", "192.0.2.8")),
    (SnmpProtocolError("cut ids", detail="request_id_cut"), ("protocol_error", "request_id_cut")),
    (SnmpError("genErr at 1", status="genErr", index=1), ("snmp_error", "genErr")),
])
async def test_each_error_becomes_its_failure(error: SnmpError, expected: tuple[str, str]) -> None:
    obs, _ = await poll_once(RecordingClient({"192.0.2.7:161": error}))
    assert (obs.reachable, obs.error, obs.detail) == (False, *expected)
    assert obs.readings == {}


async def test_a_sentinel_and_a_missing_oid_are_missing_not_zero() -> None:
    """runtime -1 ("not known", the profile's invalid) and no charge object: both missing."""
    client = RecordingClient({"192.0.2.7:161": {RUNTIME: integer(-1), CHARGE: NO_SUCH_OBJECT}})
    obs, _ = await poll_once(client)
    assert obs.reachable and obs.readings == {}
    assert obs.missing == {"runtime", "charge"}


async def _rx_rates(between: Callable[[SnmpPoller], object] = lambda _: None,
                    ) -> tuple[list[Reading | None], RecordingClient]:
    """ifHCInOctets 1 000 then 61 000 over sysUpTime 100.00 s -> 160.00 s, polled twice,
    ``between`` called on the poller after each poll: the rates the two polls gave."""
    readings = {"rx": (OCTETS, ReadingSpec(oid=OCTETS, counter=64))}
    job = PollJob("v01-router", TARGET, 60.0, readings)
    client = RecordingClient()
    poller = SnmpPoller(client, [job], lambda _: None, clock=lambda: NOW)
    rates = []
    for octets, ticks in ((1_000, 10_000), (61_000, 16_000)):
        client.answers["192.0.2.7:161"] = {
            OCTETS: integer(octets, ValueType.COUNTER64),
            SYS_UPTIME: integer(ticks, ValueType.TIMETICKS)}
        rates.append((await poller.poll(job)).readings.get("rx"))
        between(poller)
    return rates, client


async def test_a_counter_asks_sysuptime_and_gives_a_rate_from_the_second_poll() -> None:
    """ifHCInOctets 1 000 then 61 000 over sysUpTime 100.00 s -> 160.00 s: 1000 B/s."""
    rates, client = await _rx_rates()
    assert rates == [None, pytest.approx(1000.0)]
    assert client.requests[0].oids == tuple(sorted([OCTETS, SYS_UPTIME]))


async def test_a_restart_told_by_a_trap_drops_the_counter_baseline() -> None:
    """ifHCInOctets 1 000 at 100.00 s; coldStart (poll_now restarted); 61 000 at 160.00 s:
    a new baseline, no rate — the agent said its counters began again."""
    # Not running: poll_now polls nothing, but the baseline is gone.
    rates, _ = await _rx_rates(lambda poller: poller.poll_now("v01-router", restarted=True))
    assert rates == [None, None]


async def test_poll_now_polls_once_beside_the_schedule(monkeypatch: pytest.MonkeyPatch) -> None:
    """A trap asks for a poll: one poll now (a second ask while it is in flight is
    refused), and the hourly schedule is not disturbed (no other request)."""
    monkeypatch.setattr("commsmon.sources.snmp.poller.random.uniform", lambda low, high: high)
    client = RecordingClient({"192.0.2.7:161": {CHARGE: integer(96), RUNTIME: integer(42)}})
    seen: list[Observation] = []
    job = PollJob("v01-ups", TARGET, 3600.0, SPECS)
    poller = SnmpPoller(client, [job], seen.append, clock=lambda: NOW)
    assert not poller.poll_now("v01-ups")  # not running yet
    task = asyncio.create_task(poller.run())
    await asyncio.sleep(0)  # the first scheduled poll is an hour away
    assert poller.poll_now("v01-ups") and not poller.poll_now("v01-ups")
    assert not poller.poll_now("nobody")
    await asyncio.sleep(0.01)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert len(client.requests) == 1 and [o.device for o in seen] == ["v01-ups"]


async def test_a_backends_unexpected_exception_costs_one_poll_not_the_poller() -> None:
    """A backend that raises what no SnmpClient should (an IndexError from a bug): the
    poll is a failed observation naming the exception, logged, and the poller goes on."""

    class Broken(RecordingClient):
        async def get(self, target: SnmpTarget, oids: object) -> dict[str, SnmpValue]:
            raise IndexError("list index out of range")

    obs, seen = await poll_once(Broken())
    assert seen == [obs]
    assert (obs.reachable, obs.error, obs.detail) == (False, "snmp_error", "IndexError")
