"""GufoClient against PysnmpClient: the same real agents, every value compared (the
native backend against pysnmp: test_snmp_native.py; the failures below, all).

gufo_snmp drops what it cannot express (module docstring of
``commsmon.sources.snmp.gufo_backend``), so a gufo value is compared with the
pysnmp value *seen through gufo* (:func:`through_gufo`): equal values, and a type
that differs only in the documented ways (:data:`LOSSES`). Where the type
differs, the readings the profiles decode from both must still be equal.

Values that move while we read (sysUpTime, interface counters) are read by
pysnmp before and after gufo; gufo's must lie between the two.

The two ``test_measure_*`` tests print figures and assert nothing about speed;
they take about three minutes (pysnmp is slow over many communities), so they
run only with ``COMMSMON_MEASURE=1 pytest -s -k measure``.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import os
import re
import sys
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from gufo.snmp.aio import SnmpSession

from commsmon.config.load import load_config
from commsmon.config.profiles import ReadingSpec
from commsmon.errors import SnmpError, SnmpTimeout
from commsmon.sim.snmpagents import SnmpSimulator
from commsmon.sources.convert import DecodeError, decode_varbind
from commsmon.sources.snmp import gufo_backend
from commsmon.sources.snmp.base import (
    NO_SUCH_OBJECT,
    SnmpClient,
    SnmpTarget,
    SnmpValue,
    SnmpVersion,
    UsmUser,
    ValueType,
)
from commsmon.sources.snmp.gufo_backend import GufoClient, to_snmp_value
from commsmon.sources.snmp.native_backend import NativeClient
from commsmon.sources.snmp.pysnmp_backend import PysnmpClient
from tests.snmpd import Snmpd, free_udp_port

pytestmark = pytest.mark.integration
in_module_loop = pytest.mark.asyncio(loop_scope="module")  # the loop of the fleet fixture

ROOT = Path(__file__).resolve().parents[2]
VERSIONS: list[SnmpVersion] = ["v1", "v2c", "v3"]  # v3: authPriv, SHA-256 + AES-128
RECORDING_VERSIONS: list[SnmpVersion] = ["v1", "v2c"]  # snmpsim serves recordings by community

SYSTEM = "1.3.6.1.2.1.1"
SYSTEM_SCALARS = [f"{SYSTEM}.{n}.0" for n in range(1, 9)]  # sysDescr .. sysORLastChange
SYS_DESCR = "1.3.6.1.2.1.1.1.0"
SYS_UPTIME = "1.3.6.1.2.1.1.3.0"
SYS_NAME = "1.3.6.1.2.1.1.5.0"
SYS_LOCATION = "1.3.6.1.2.1.1.6.0"
MISSING_OBJECT = "1.3.6.1.2.1.1.99.0"
MISSING_INSTANCE = "1.3.6.1.2.1.1.5.1"
IF_TABLE = "1.3.6.1.2.1.2.2"
IF_X_TABLE = "1.3.6.1.2.1.31.1.1"
HIKVISION = "1.3.6.1.4.1.39165"
TYPED_OIDS = [
    "1.3.6.1.2.1.1.2.0",  # sysObjectID: OBJECT IDENTIFIER
    SYS_UPTIME,  # TimeTicks
    "1.3.6.1.2.1.2.2.1.5.1",  # ifSpeed.1: Gauge32
    "1.3.6.1.2.1.2.2.1.10.1",  # ifInOctets.1: Counter32
    "1.3.6.1.2.1.31.1.1.1.6.1",  # ifHCInOctets.1: Counter64 (noSuchName on v1)
    "1.3.6.1.2.1.4.20.1.1.127.0.0.1",  # ipAdEntAddr: IpAddress
    "1.3.6.1.4.1.2021.10.1.6.1",  # UCD-SNMP-MIB laLoadFloat.1: Opaque float
]
FIVE_OIDS = [SYS_DESCR, SYS_UPTIME, SYS_NAME, SYS_LOCATION, "1.3.6.1.2.1.2.2.1.10.1"]

FLEET = {
    "cam": "camera/hikvision",
    "ups1": "UPS/huawei-gse200m",
    "ups2": "UPS/phoenixtec-power",
    "rpt": "hytera-repeater",
    "rtr": "router",
}
PARAMS = {"uplink_ifindex": 2}

FAIL_TIMEOUT = 0.5
FAIL_BOUND = FAIL_TIMEOUT + 2.0  # timeout * (retries + 1) + 2 s slack

# (type pysnmp read, type gufo returned) pairs that may differ: gufo_backend's docstring.
_NUMBER_TYPES = (ValueType.INTEGER, ValueType.GAUGE32, ValueType.COUNTER64)
LOSSES: frozenset[tuple[ValueType, ValueType]] = frozenset(
    {(t, g) for t in (ValueType.COUNTER32, ValueType.TIMETICKS) for g in _NUMBER_TYPES[:2]}
    | {(ValueType.GAUGE32, ValueType.INTEGER)}
    | {(ValueType.COUNTER64, g) for g in _NUMBER_TYPES[:2]}
    | {
        (ValueType.NO_SUCH_INSTANCE, ValueType.NO_SUCH_OBJECT),
        (ValueType.END_OF_MIB_VIEW, ValueType.NO_SUCH_OBJECT),
        (ValueType.NULL, ValueType.NO_SUCH_OBJECT),
        (ValueType.OPAQUE, ValueType.OCTET_STRING),
        (ValueType.OBJECT_IDENTIFIER, ValueType.IP_ADDRESS),
    }
)

Diffs = collections.Counter[tuple[ValueType, ValueType]]


def through_gufo(value: SnmpValue) -> SnmpValue:
    """The value GufoClient can give for what pysnmp read: exceptions and NULL become
    noSuchObject, the rest is retyped from its Python value alone."""
    if value.is_exception or value.type is ValueType.NULL:
        return NO_SUCH_OBJECT
    return to_snmp_value(value.value)


def compare(where: str, before: SnmpValue, got: SnmpValue, after: SnmpValue, diffs: Diffs) -> None:
    """Assert gufo's value is pysnmp's seen through gufo (between before and after if it moved)."""
    if before == after:
        assert got == through_gufo(before), where
    else:  # moved while we read: a clock or a counter
        assert got.type in {through_gufo(before).type, through_gufo(after).type}, where
        if isinstance(before.value, int) and isinstance(after.value, int):
            assert isinstance(got.value, int), where
            assert before.value <= got.value <= after.value, where
        else:
            assert got.value in (before.value, after.value), where
    if got.type is not before.type:
        assert (before.type, got.type) in LOSSES, where
        diffs[before.type, got.type] += 1


def report(title: str, diffs: Diffs, compared: int) -> None:
    """Print which SMI types gufo could not tell apart, and how often."""
    lines = [f"  {p.value} -> {g.value}: {n}" for (p, g), n in sorted(diffs.items(), key=str)]
    print(
        f"\n{title}: {compared} values compared, types differing:", *lines or ["  none"], sep="\n"
    )


async def get_three(
    pysnmp: SnmpClient, gufo: GufoClient, target: SnmpTarget, oids: Sequence[str]
) -> tuple[dict[str, SnmpValue], dict[str, SnmpValue], dict[str, SnmpValue]]:
    """GET through pysnmp, gufo, pysnmp again."""
    before = await pysnmp.get(target, oids)
    got = await gufo.get(target, oids)
    after = await pysnmp.get(target, oids)
    return before, got, after


async def compare_get(
    pysnmp: SnmpClient, gufo: GufoClient, target: SnmpTarget, oids: Sequence[str], diffs: Diffs
) -> dict[str, SnmpValue]:
    """GET ``oids`` through both backends and compare every value; return pysnmp's."""
    before, got, after = await get_three(pysnmp, gufo, target, oids)
    assert list(got) == list(before) == list(oids)
    for oid in oids:
        compare(
            f"{target.version} {target.community} GET {oid}",
            before[oid],
            got[oid],
            after[oid],
            diffs,
        )
    return before


async def compare_walk(
    pysnmp: SnmpClient, gufo: GufoClient, target: SnmpTarget, root: str, diffs: Diffs
) -> int:
    """Every OID under ``root`` (listed by net-snmp's ``snmpwalk``, the reference) read
    through both backends and compared; return the row count."""
    oids = await subtree(target, root)
    for start in range(0, len(oids), 10):  # ten a PDU: no agent answers tooBig
        await compare_get(pysnmp, gufo, target, oids[start:start + 10], diffs)
    return len(oids)


async def subtree(target: SnmpTarget, root: str) -> list[str]:
    """The OIDs under ``root`` as net-snmp's ``snmpwalk`` lists them, in order."""
    proc = await asyncio.create_subprocess_exec(
        "snmpwalk", f"-{target.version}", *_credentials(target), "-On", "-Oq", "-t", "5",
        f"{target.host}:{target.port}", root,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    assert proc.returncode == 0, err
    found = re.finditer(r"^\.(\d+(?:\.\d+)+) ", out.decode(errors="replace"), re.M)
    return list(dict.fromkeys(m.group(1) for m in found))  # a value may repeat a line


_NET_SNMP_AUTH = {"md5": "MD5", "sha": "SHA", "sha224": "SHA-224", "sha256": "SHA-256",
                  "sha384": "SHA-384", "sha512": "SHA-512"}
_NET_SNMP_PRIV = {"des": "DES", "aes": "AES", "aes192": "AES-192", "aes256": "AES-256"}


def _credentials(target: SnmpTarget) -> list[str]:
    """net-snmp's command-line options for the target's community or USM user."""
    user = target.user
    if user is None:
        return ["-c", target.community]
    args = ["-u", user.name, "-l", user.level]
    if user.auth_protocol:
        args += ["-a", _NET_SNMP_AUTH[user.auth_protocol], "-A", user.auth_password]
    if user.priv_protocol:
        args += ["-x", _NET_SNMP_PRIV[user.priv_protocol], "-X", user.priv_password]
    return args


def outcome(spec: ReadingSpec, value: SnmpValue) -> tuple[str, object]:
    """The reading decoded from a varbind, or the DecodeError reason."""
    try:
        return "reading", decode_varbind(spec, value)
    except DecodeError as exc:
        return "error", exc.reason


def sockets() -> set[str]:
    """The sockets this process holds open, by inode (``socket:[N]``)."""
    found = set()
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):  # the fd listdir itself used is gone
            link = os.readlink(f"/proc/self/fd/{fd}")
            if link.startswith("socket:"):
                found.add(link)
    return found


# --- a real net-snmp snmpd -------------------------------------------------------


@pytest.fixture(scope="module")
def agent() -> Iterator[Snmpd]:
    with Snmpd() as snmpd:
        yield snmpd


@pytest_asyncio.fixture
async def clients() -> AsyncIterator[tuple[PysnmpClient, GufoClient]]:
    async with PysnmpClient() as pysnmp, GufoClient() as gufo:
        yield pysnmp, gufo


def at(
    agent: Snmpd, version: SnmpVersion = "v2c", *, timeout: float = 2.0, retries: int = 1
) -> SnmpTarget:
    user = UsmUser(agent.v3_user, "sha256", agent.v3_auth, "aes", agent.v3_priv)
    return SnmpTarget(
        agent.host, agent.port, version, community=agent.community,
        user=user if version == "v3" else None, timeout=timeout, retries=retries,
    )


@pytest.mark.parametrize("wrong", ["auth", "priv"])
async def test_v3_wrong_password_is_an_error_not_a_hang(
    agent: Snmpd, clients: tuple[PysnmpClient, GufoClient], wrong: str
) -> None:
    """A wrong authPriv password fails each backend within the deadline, and neither
    error message carries a password."""
    bad = "wrong-Passphrase-9"
    user = UsmUser(agent.v3_user, "sha256", bad if wrong == "auth" else agent.v3_auth,
                   "aes", bad if wrong == "priv" else agent.v3_priv)
    target = SnmpTarget(agent.host, agent.port, "v3", user=user, timeout=0.5, retries=0)
    for client in clients:
        started = time.monotonic()
        with pytest.raises(SnmpError) as exc:
            await client.get(target, [SYS_NAME])
        assert time.monotonic() - started <= target.deadline + 0.5
        for secret in (bad, agent.v3_auth, agent.v3_priv):
            assert secret not in str(exc.value)
        assert secret not in repr(target)


@pytest.mark.parametrize("version", VERSIONS)
async def test_system_group_agrees(
    agent: Snmpd, clients: tuple[PysnmpClient, GufoClient], version: SnmpVersion
) -> None:
    """sysDescr..sysORLastChange by GET and the system group by walk agree, v1 and v2c."""
    pysnmp, gufo = clients
    diffs: Diffs = collections.Counter()
    target = at(agent, version)
    await compare_get(pysnmp, gufo, target, SYSTEM_SCALARS, diffs)
    rows = await compare_walk(pysnmp, gufo, target, SYSTEM, diffs)

    assert rows > len(SYSTEM_SCALARS)  # sysORTable too
    report(f"snmpd {version} system group", diffs, len(SYSTEM_SCALARS) + rows)


@pytest.mark.parametrize("version", VERSIONS)
async def test_if_tables_walk_agrees(
    agent: Snmpd, clients: tuple[PysnmpClient, GufoClient], version: SnmpVersion
) -> None:
    """ifTable and ifXTable walks agree row for row; the counters lie between pysnmp's reads."""
    pysnmp, gufo = clients
    diffs: Diffs = collections.Counter()
    target = at(agent, version)
    rows = await compare_walk(pysnmp, gufo, target, IF_TABLE, diffs)
    rows += await compare_walk(pysnmp, gufo, target, IF_X_TABLE, diffs)

    assert rows > 20
    report(f"snmpd {version} ifTable + ifXTable walk", diffs, rows)


@pytest.mark.parametrize("version", VERSIONS)
async def test_missing_oids_among_good_ones_agree(
    agent: Snmpd, clients: tuple[PysnmpClient, GufoClient], version: SnmpVersion
) -> None:
    """Missing objects and instances among good OIDs: same good values, the rest noSuchObject."""
    pysnmp, gufo = clients
    diffs: Diffs = collections.Counter()
    oids = [MISSING_OBJECT, SYS_NAME, MISSING_INSTANCE, SYS_DESCR, *TYPED_OIDS]
    before = await compare_get(pysnmp, gufo, at(agent, version), oids, diffs)

    assert before[SYS_NAME].value == agent.sys_name.encode()
    assert before[MISSING_OBJECT].is_exception
    report(f"snmpd {version} GET with missing OIDs", diffs, len(oids))


async def test_only_missing_oids_v1_agree(
    agent: Snmpd, clients: tuple[PysnmpClient, GufoClient]
) -> None:
    """A v1 GET of nothing but missing OIDs ends with all noSuchObject through both backends."""
    pysnmp, gufo = clients
    oids = [MISSING_OBJECT, MISSING_INSTANCE]
    before, got, _ = await get_three(pysnmp, gufo, at(agent, "v1"), oids)

    assert got == before == {oid: NO_SUCH_OBJECT for oid in oids}


async def test_value_types_through_gufo(
    agent: Snmpd, clients: tuple[PysnmpClient, GufoClient]
) -> None:
    """What gufo keeps: OID, IpAddress and Opaque float exactly; numbers by range only."""
    _, gufo = clients
    got = await gufo.get(at(agent), TYPED_OIDS)

    assert got["1.3.6.1.2.1.1.2.0"].type is ValueType.OBJECT_IDENTIFIER
    assert got["1.3.6.1.2.1.4.20.1.1.127.0.0.1"] == SnmpValue(ValueType.IP_ADDRESS, "127.0.0.1")
    load = got["1.3.6.1.4.1.2021.10.1.6.1"]
    assert load.type is ValueType.OPAQUE
    assert isinstance(load.value, bytes)
    assert load.value[:3] == b"\x9f\x78\x04"
    for oid in TYPED_OIDS[1:5]:  # TimeTicks, Gauge32, Counter32, Counter64: by range only
        value = got[oid].value
        assert isinstance(value, int)
        # The loopback's octet counters pass 2**31 on a busy test machine.
        expected = (ValueType.INTEGER if value < 2**31 else
                    ValueType.GAUGE32 if value < 2**32 else ValueType.COUNTER64)
        assert got[oid].type is expected, (oid, value)


# --- snmpsim serving the recordings ----------------------------------------------


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def fleet() -> AsyncIterator[SnmpSimulator]:
    async with SnmpSimulator(FLEET) as sim:
        yield sim


def snmp_profiles() -> dict[str, dict[str, ReadingSpec]]:
    """Every SNMP profile of config/profiles: name -> reading -> spec with its OID filled in."""
    profiles = load_config(ROOT / "config" / "demo.yaml").profiles
    return {
        name: {
            reading: spec.model_copy(update={"oid": spec.oid.format(**PARAMS)})
            for reading, spec in profile.readings.items()
            if spec.oid is not None
        }
        for name, profile in profiles.items()
        if profile.source == "snmp"
    }


@in_module_loop
@pytest.mark.parametrize("version", RECORDING_VERSIONS)
async def test_profile_oids_agree_on_every_recording(
    fleet: SnmpSimulator, version: SnmpVersion
) -> None:
    """Every OID of every SNMP profile on every recorded device: equal values, equal readings."""
    profiles = snmp_profiles()
    assert {"hikvision-camera", "hytera-repeater", "router-mib2", "ups-rfc1628"} <= set(profiles)
    diffs: Diffs = collections.Counter()
    compared = readings = 0
    async with PysnmpClient() as pysnmp, GufoClient() as gufo:
        for community in FLEET:
            target = SnmpTarget(fleet.host, fleet.port, version, community=community)
            for name, specs in profiles.items():
                oids = list(dict.fromkeys(spec.oid for spec in specs.values() if spec.oid))
                before, got, after = await get_three(pysnmp, gufo, target, oids)
                assert list(got) == oids
                for oid in oids:
                    compare(
                        f"{version} {community} {name} {oid}",
                        before[oid],
                        got[oid],
                        after[oid],
                        diffs,
                    )
                compared += len(oids)
                for reading, spec in specs.items():
                    assert spec.oid is not None
                    assert before[spec.oid] == after[spec.oid]  # recordings hold still
                    where = f"{version} {community} {name}.{reading}"
                    expected = outcome(spec, before[spec.oid])
                    assert outcome(spec, got[spec.oid]) == expected, where
                    readings += 1

    report(f"snmpsim {version} profile OIDs ({readings} readings decoded equal)", diffs, compared)


@in_module_loop
@pytest.mark.parametrize("version", RECORDING_VERSIONS)
async def test_recording_walks_agree(fleet: SnmpSimulator, version: SnmpVersion) -> None:
    """Walks of ifTable and the Hikvision enterprise subtree agree on every recorded device."""
    diffs: Diffs = collections.Counter()
    rows = 0
    async with PysnmpClient() as pysnmp, GufoClient() as gufo:
        for community in FLEET:
            target = SnmpTarget(fleet.host, fleet.port, version, community=community)
            for root in (IF_TABLE, HIKVISION):
                rows += await compare_walk(pysnmp, gufo, target, root, diffs)

    assert rows > 20
    report(f"snmpsim {version} walks", diffs, rows)


# --- failures ----------------------------------------------------------------------


@pytest.mark.parametrize("backend", [PysnmpClient, GufoClient, NativeClient])
async def test_closed_port_times_out_in_every_backend(backend: type[SnmpClient]) -> None:
    """Nothing listening: SnmpTimeout within the bound through any backend (gufo's and the
    native one's unconnected sockets hear no ICMP port-unreachable)."""
    target = SnmpTarget("127.0.0.1", free_udp_port(), timeout=FAIL_TIMEOUT, retries=0)
    async with backend() as client:
        started = time.monotonic()
        with pytest.raises(SnmpTimeout) as caught:
            await client.get(target, [SYS_NAME])

    assert time.monotonic() - started < 2 * FAIL_BOUND
    assert caught.value.status == "requestTimedOut"


@pytest.mark.parametrize("backend", [GufoClient, NativeClient])
async def test_a_silent_agent_costs_its_retries_then_late_replies_answer_nothing(
        agent: Snmpd, backend: type[SnmpClient]) -> None:
    """A hung agent costs retries + 1 attempts; its late replies never answer a later GET."""
    target = at(agent, timeout=0.3, retries=2)
    async with backend() as gufo:
        await gufo.get(target, [SYS_NAME])
        agent.pause()
        try:
            started = time.monotonic()
            with pytest.raises(SnmpTimeout):
                await gufo.get(target, [SYS_NAME])
            elapsed = time.monotonic() - started
        finally:
            agent.resume()
        await asyncio.sleep(0.2)  # the three queued requests are answered now
        got = await gufo.get(target, [SYS_LOCATION])

    assert 0.9 - 0.05 <= elapsed < target.deadline
    assert got == {SYS_LOCATION: SnmpValue(ValueType.OCTET_STRING, agent.sys_location.encode())}


async def test_gufo_hung_library_call_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """Should gufo never return, the GET still ends in SnmpTimeout after the deadline."""

    async def never_answers(*args: object) -> None:
        await asyncio.Event().wait()

    monkeypatch.setattr(SnmpSession, "get_many", never_answers)
    target = SnmpTarget("127.0.0.1", 9, timeout=0.2, retries=0)
    async with GufoClient() as gufo:
        started = time.monotonic()
        with pytest.raises(SnmpTimeout):
            await gufo.get(target, [SYS_NAME])

    assert time.monotonic() - started < target.deadline + 0.5


async def test_gufo_rejects_bad_oids_before_sending() -> None:
    """A MIB name or an arc beyond 2**32-1 is the caller's bug: ValueError, nothing sent."""
    async with GufoClient() as gufo:
        with pytest.raises(ValueError, match="numeric OID"):
            await gufo.get(SnmpTarget("127.0.0.1", 9), ["SNMPv2-MIB::sysName.0"])
        with pytest.raises(ValueError, match="arc"):
            await gufo.get(SnmpTarget("127.0.0.1", 9), ["1.3.6.1.4294967296"])
        assert gufo.session_count == 0


# --- gufo sessions -------------------------------------------------------------------


async def test_gufo_keeps_one_session_per_target(agent: Snmpd) -> None:
    """Many GETs and walks to one target reuse one session: one socket, closed by close()."""
    before = sockets()
    async with GufoClient() as gufo:
        await gufo.get(at(agent), [SYS_NAME])
        mine = sockets() - before
        for _ in range(200):
            got = await gufo.get(at(agent), FIVE_OIDS)
            assert got[SYS_NAME].value == agent.sys_name.encode()

        assert gufo.session_count == 1
        assert len(mine) == 3  # the session's, and the relay's loopback and upstream sockets
        assert sockets() - before == mine
    assert not mine & sockets()


async def test_gufo_target_identity_includes_community_and_version(agent: Snmpd) -> None:
    """Another community or version is another session, answered for itself."""
    async with GufoClient() as gufo:
        first = await gufo.get(at(agent), [SYS_NAME])
        second = await gufo.get(
            SnmpTarget(agent.host, agent.port, community=agent.community2), [SYS_LOCATION]
        )
        await gufo.get(at(agent, "v1"), [SYS_NAME])

        assert gufo.session_count == 3
    assert first[SYS_NAME].value == agent.sys_name.encode()
    assert second[SYS_LOCATION].value == agent.sys_location.encode()


async def test_gufo_evicts_least_recently_used_sessions(agent: Snmpd) -> None:
    """Past max_sessions the least recently used session goes, and its socket closes."""
    before = sockets()
    async with GufoClient(max_sessions=2) as gufo:
        opened: list[set[str]] = []
        for timeout in (1.0, 1.5, 2.0):  # timeout is part of a target's identity
            got = await gufo.get(at(agent, timeout=timeout), [SYS_NAME])
            assert got[SYS_NAME].value == agent.sys_name.encode()
            opened.append(sockets() - before - set().union(*opened))

        assert gufo.session_count == 2
        assert [len(new) for new in opened] == [3, 1, 1]  # the first with the relay's two
        relay = opened[0] & sockets()
        assert len(relay) == 2
        opened[0] -= relay
        # 1.0 s, least recently used, closed:
        assert sockets() - before == relay | opened[1] | opened[2]
        await gufo.get(at(agent, timeout=1.5), [SYS_NAME])  # 1.5 s is now the most recent
        await gufo.get(at(agent, timeout=1.0), [SYS_NAME])
        assert sockets() - before - relay - opened[0] - opened[1] - opened[2]  # 1.0 s anew
        assert opened[1] <= sockets()
        assert not opened[2] & sockets()  # 2.0 s evicted this time


async def test_gufo_concurrent_gets_to_one_target(agent: Snmpd) -> None:
    """Concurrent GETs to one target all get their own answers; only one session is kept."""
    async with GufoClient() as gufo:
        await gufo.get(at(agent), [SYS_NAME])
        kept = sockets()
        results = await asyncio.gather(
            *(gufo.get(at(agent), [SYS_NAME, SYS_LOCATION]) for _ in range(20))
        )

        assert gufo.session_count == 1
        assert not sockets() - kept  # the one-off sessions are closed
    for got in results:
        assert got[SYS_NAME].value == agent.sys_name.encode()
        assert got[SYS_LOCATION].value == agent.sys_location.encode()


async def test_gufo_resolves_hostnames(agent: Snmpd, monkeypatch: pytest.MonkeyPatch) -> None:
    """gufo wants an IP literal: a hostname is resolved through the loop (faked here: no DNS)."""
    loop = asyncio.get_running_loop()
    asked: list[str] = []

    async def fake_getaddrinfo(host: str, port: int, **kwargs: object) -> list[object]:
        asked.append(host)
        return [(2, 2, 17, "", ("127.0.0.1", port))]

    monkeypatch.setattr(loop, "getaddrinfo", fake_getaddrinfo)
    target = SnmpTarget("agent.test", agent.port, community=agent.community)
    async with GufoClient() as gufo:
        for _ in range(3):
            got = await gufo.get(target, [SYS_NAME])
            assert got[SYS_NAME].value == agent.sys_name.encode()
        monkeypatch.setattr(loop, "getaddrinfo", _no_such_host)
        with pytest.raises(SnmpError) as caught:
            await gufo.get(SnmpTarget("nowhere.test", agent.port), [SYS_NAME])

    assert asked == ["agent.test"]  # resolved once, then kept
    assert caught.value.status == "unresolvedHost"


async def test_gufo_re_resolves_hostnames_and_survives_dns_outages(
    agent: Snmpd, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After RESOLVE_TTL a hostname is resolved again; if that fails the known address is kept."""
    loop = asyncio.get_running_loop()
    asked: list[str] = []

    async def fake_getaddrinfo(host: str, port: int, **kwargs: object) -> list[object]:
        asked.append(host)
        return [(2, 2, 17, "", ("127.0.0.1", port))]

    monkeypatch.setattr(gufo_backend, "RESOLVE_TTL", 0.0)
    monkeypatch.setattr(loop, "getaddrinfo", fake_getaddrinfo)
    target = SnmpTarget("agent.test", agent.port, community=agent.community)
    async with GufoClient() as gufo:
        await gufo.get(target, [SYS_NAME])
        await gufo.get(target, [SYS_NAME])
        monkeypatch.setattr(loop, "getaddrinfo", _no_such_host)
        got = await gufo.get(target, [SYS_NAME])

        assert gufo.session_count == 1
    assert asked == ["agent.test", "agent.test"]
    assert got[SYS_NAME].value == agent.sys_name.encode()


def test_gufo_client_used_in_two_event_loops(agent: Snmpd) -> None:
    """One client used from two sequential event loops, without close() between, still answers."""
    gufo = GufoClient()

    async def one_get() -> SnmpValue:
        return (await gufo.get(at(agent), [SYS_NAME]))[SYS_NAME]

    first = asyncio.run(asyncio.wait_for(one_get(), 10))
    second = asyncio.run(asyncio.wait_for(one_get(), 10))

    assert first == second == SnmpValue(ValueType.OCTET_STRING, agent.sys_name.encode())
    assert gufo.session_count == 1


async def _no_such_host(host: str, port: int, **kwargs: object) -> list[object]:
    raise OSError(-2, "Name or service not known")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (-1, SnmpValue(ValueType.INTEGER, -1)),
        (2**31 - 1, SnmpValue(ValueType.INTEGER, 2**31 - 1)),
        (2**31, SnmpValue(ValueType.GAUGE32, 2**31)),
        (2**32 - 1, SnmpValue(ValueType.GAUGE32, 2**32 - 1)),
        (2**32, SnmpValue(ValueType.COUNTER64, 2**32)),
        (b"52 PERCENT", SnmpValue(ValueType.OCTET_STRING, b"52 PERCENT")),
        (b"\x9f\x78\x04?F \x00", SnmpValue(ValueType.OPAQUE, b"\x9f\x78\x04?F \x00")),
        (b"\x9f\x78\x04?F", SnmpValue(ValueType.OCTET_STRING, b"\x9f\x78\x04?F")),
        (b"\x9f\x79\x08" + bytes(8), SnmpValue(ValueType.OPAQUE, b"\x9f\x79\x08" + bytes(8))),
        ("192.0.2.1", SnmpValue(ValueType.IP_ADDRESS, "192.0.2.1")),
        (
            "1.3.6.1.4.1.8072.3.2.10",
            SnmpValue(ValueType.OBJECT_IDENTIFIER, "1.3.6.1.4.1.8072.3.2.10"),
        ),
        ("1.3.6.1.300", SnmpValue(ValueType.OBJECT_IDENTIFIER, "1.3.6.1.300")),
        ("1.3.6.1", SnmpValue(ValueType.IP_ADDRESS, "1.3.6.1")),  # the documented ambiguity
        (None, SnmpValue(ValueType.NULL, None)),
    ],
)
def test_to_snmp_value(raw: int | bytes | str | None, expected: SnmpValue) -> None:
    """gufo's plain Python values map to the narrowest faithful SMI type."""
    assert to_snmp_value(raw) == expected


@pytest.mark.parametrize("raw", [True, 1.5, "sysName"])
def test_to_snmp_value_rejects_non_smi(raw: bool | float | str) -> None:
    """BER BOOLEAN, REAL and non-dotted text are not SNMP values: SnmpError badValueType."""
    with pytest.raises(SnmpError) as caught:
        to_snmp_value(raw)

    assert caught.value.status == "badValueType"


# --- measurements (printed, not asserted) --------------------------------------------

measurement = pytest.mark.skipif(
    not os.environ.get("COMMSMON_MEASURE"),
    reason="measurement, ~3 min: run with COMMSMON_MEASURE=1 pytest -s -k measure",
)


@measurement
async def test_measure_cpu_per_get(agent: Snmpd) -> None:
    """CPU seconds per GET of five OIDs, pysnmp vs gufo vs native, over 2000 sequential
    GETs."""
    rounds = 2000
    lines = []
    backends: tuple[type[SnmpClient], ...] = (PysnmpClient, GufoClient, NativeClient)
    for backend in backends:
        async with backend() as client:
            for _ in range(50):  # warm up: imports, engine, session
                await client.get(at(agent), FIVE_OIDS)
            cpu, wall = time.process_time(), time.perf_counter()
            for _ in range(rounds):
                await client.get(at(agent), FIVE_OIDS)
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        lines.append(
            f"  {backend.__name__}: {cpu / rounds * 1e3:.3f} ms CPU, "
            f"{wall / rounds * 1e3:.3f} ms wall per GET of {len(FIVE_OIDS)} OIDs"
        )
    print(f"\nsnmpd v2c, {rounds} GETs each:", *lines, sep="\n")


_RSS_PROBE = """
import asyncio, json, os, sys
from commsmon.sources.snmp.base import SnmpTarget

backend, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
if backend == "gufo":
    from commsmon.sources.snmp.gufo_backend import GufoClient as Client
elif backend == "native":
    from commsmon.sources.snmp.native_backend import NativeClient as Client
else:
    from commsmon.sources.snmp.pysnmp_backend import PysnmpClient as Client
OIDS = ["1.3.6.1.2.1.1.3.0", "1.3.6.1.2.1.1.5.0", "1.3.6.1.2.1.2.2.1.8.2",
        "1.3.6.1.2.1.2.2.1.10.2", "1.3.6.1.2.1.31.1.1.1.6.2"]

def rss_kib():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))

async def main():
    async with Client() as client:
        limit = asyncio.Semaphore(50)
        async def poll(i):
            async with limit:
                target = SnmpTarget("127.0.0.1", port, community=f"d{i}", timeout=5.0)
                got = await client.get(target, OIDS)
                assert not any(v.is_exception for v in got.values()), got
        await poll(0)
        rss = [rss_kib()]
        for _ in range(2):
            await asyncio.gather(*(poll(i) for i in range(count)))
            rss.append(rss_kib())
        print(json.dumps({"rss_kib": rss, "fds": len(os.listdir("/proc/self/fd"))}))

asyncio.run(main())
"""


@measurement
@in_module_loop
async def test_measure_rss_over_distinct_targets() -> None:
    """RSS growth of a fresh process polling 2000 distinct targets (communities), each backend."""
    count = 2000
    lines = []
    async with SnmpSimulator(
        {f"d{i}": "router" for i in range(count)}, startup_timeout=120.0
    ) as sim:
        for backend in ("pysnmp", "gufo", "native"):
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-c",
                _RSS_PROBE,
                backend,
                str(sim.port),
                str(count),
                cwd=ROOT,
                stdout=asyncio.subprocess.PIPE,
            )
            out, _ = await asyncio.wait_for(proc.communicate(), 300)
            assert proc.returncode == 0
            probe: dict[str, Any] = json.loads(out)
            start, first, second = probe["rss_kib"]
            lines.append(
                f"  {backend}: RSS {start / 1024:.1f} MiB after one target, "
                f"+{(first - start) / 1024:.1f} MiB after {count} targets "
                f"({(first - start) / count:.1f} KiB each), "
                f"+{(second - first) / 1024:.1f} MiB more on a second round; "
                f"{probe['fds']} open fds"
            )
    print(f"\nsnmpsim, {count} communities, one GET of 5 OIDs each:", *lines, sep="\n")
