"""SNMPv3 credentials the agent rejects, against a real net-snmp ``snmpd`` (issue 13,
finding 9): both backends say so (SnmpAuthError, not a timeout or a plain error), the
poller makes it ``auth_error``, and the core keeps the device unmonitored -- ``unknown``
with a monitor_fault naming it -- never ``down``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from commsmon.config.profiles import ReadingSpec
from commsmon.core.fleet import Fleet
from commsmon.core.model import Device, Inventory, Site
from commsmon.core.rules import AlertEngine, RuleSpec
from commsmon.core.types import Observation, State
from commsmon.errors import SnmpAuthError
from commsmon.outputs.alerts.messages import alert_summary
from commsmon.sources.snmp.base import SnmpClient, SnmpTarget, UsmUser
from commsmon.sources.snmp.gufo_backend import GufoClient
from commsmon.sources.snmp.native_backend import NativeClient
from commsmon.sources.snmp.poller import PollJob, SnmpPoller
from commsmon.sources.snmp.pysnmp_backend import PysnmpClient
from tests.snmpd import Snmpd

pytestmark = pytest.mark.integration

NOW = 1_764_400_000.0
UPTIME = "1.3.6.1.2.1.1.3.0"
READINGS = {"uptime": (UPTIME, ReadingSpec(oid=UPTIME, scale=0.01))}
BACKENDS = [NativeClient, GufoClient, PysnmpClient]


@pytest.fixture(scope="module")
def snmpd() -> Iterator[Snmpd]:
    with Snmpd() as agent:
        yield agent


def _users(agent: Snmpd) -> dict[str, UsmUser]:
    return {
        "wrong auth password": UsmUser(agent.v3_user, "sha256", "not-the-Passphrase", "aes",
                                       agent.v3_priv),
        "unknown user": UsmUser("nobody", "sha256", agent.v3_auth, "aes", agent.v3_priv),
    }


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", ["wrong auth password", "unknown user"])
async def test_rejected_credentials_are_an_auth_error(
    snmpd: Snmpd, backend: type[SnmpClient], case: str
) -> None:
    """One verdict whichever backend: the poll is auth_error; pysnmp also names the USM
    counter (gufo_snmp cannot tell them apart)."""
    target = SnmpTarget("127.0.0.1", snmpd.port, "v3", user=_users(snmpd)[case],
                        timeout=1.0, retries=0)
    async with backend() as client:  # type: ignore[attr-defined]
        with pytest.raises(SnmpAuthError) as raised:
            await client.get(target, [UPTIME])
        job = PollJob("v01-router", target, 60.0, READINGS)
        obs = await SnmpPoller(client, [job], lambda _: None, clock=lambda: NOW).poll(job)
    assert not obs.reachable and obs.error == "auth_error"
    expected = {"wrong auth password": "usmStatsWrongDigests",
                "unknown user": "usmStatsUnknownUserNames"}[case]
    assert raised.value.status in (expected, "authenticationFailed")
    if backend is PysnmpClient:
        assert obs.detail == expected


async def test_rejected_device_is_unmonitored_and_a_monitor_fault(snmpd: Snmpd) -> None:
    """Three polls rejected (down_after 3): the router is unknown, not down; no
    device_down; a monitor_fault names it, in Chinese."""
    target = SnmpTarget("127.0.0.1", snmpd.port, "v3", user=_users(snmpd)["unknown user"],
                        timeout=1.0, retries=0)
    router = Device("v01-router", "v01", "router", "4G 路由器", "snmp", "router-mib2",
                    channel="public")
    fleet = Fleet(Inventory.build([Site("v01", "占位村01", "山城街道")], [router]), NOW)
    async with PysnmpClient() as client:
        job = PollJob("v01-router", target, 60.0, READINGS)
        poller = SnmpPoller(client, [job], fleet.observe, clock=lambda: NOW + 1)
        for _ in range(3):
            await poller.poll(job)
    snap = fleet.evaluate(NOW + 300)
    assert snap.devices["v01-router"].state is State.UNKNOWN
    engine = AlertEngine({"monitor_fault": RuleSpec(0, "warning"),
                          "device_down": RuleSpec(0, "warning")})
    engine.update(snap)
    assert [a.rule for a in engine.firing] == ["monitor_fault"]
    summary = alert_summary(engine.firing[0], "zh", now=NOW)
    assert "4G 路由器（v01-router）" in summary and "用户名不存在" in summary, summary
    fleet.observe(Observation("v01-router", NOW + 400, True))
    assert [a.rule for a in engine.update(fleet.evaluate(NOW + 401))] == ["monitor_fault"]


@pytest.mark.parametrize("backend", BACKENDS)
async def test_two_targets_with_one_engine_id_are_a_located_warning(
    snmpd: Snmpd, backend: type[SnmpClient], capsys: pytest.CaptureFixture[str]
) -> None:
    """The same agent polled as two devices (as two cloned units would answer): a
    warning naming both devices and their addresses."""
    user = UsmUser(snmpd.v3_user, "sha256", snmpd.v3_auth, "aes", snmpd.v3_priv)
    jobs = [PollJob(d, SnmpTarget(host, snmpd.port, "v3", user=user, timeout=1.0, retries=0),
                    60.0, READINGS)
            for d, host in (("v01-router", "127.0.0.1"), ("v02-router", "localhost"))]
    async with backend() as client:  # type: ignore[attr-defined]
        poller = SnmpPoller(client, jobs, lambda _: None, clock=lambda: NOW)
        for job in jobs:
            assert (await poller.poll(job)).reachable
        assert client.engine_id(jobs[0].target)
    out = capsys.readouterr().out
    assert "two snmp targets answer with one engineID" in out
    assert "v01-router" in out and "v02-router" in out
