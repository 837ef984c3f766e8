"""SnmpSimulator: one snmpsim process, one community per device, values that change."""

from __future__ import annotations

import struct
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from commsmon.sim.snmpagents import SnmpSimulator, SnmpSimulatorError
from tests.sim import octets, snmpget

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

FLEET = {
    "cam-1": "camera/hikvision",
    "ups-1": "UPS/huawei-gse200m",
    "ups-2": "UPS/phoenixtec-power",
    "rpt-1": "hytera-repeater",
    "rtr-1": "router",
    "rtr-2": "router",
}

UPS_OUTPUT_SOURCE = "1.3.6.1.2.1.33.1.4.1.0"  # UPS-MIB upsOutputSource: 3 normal, 5 battery
RPT = "1.3.6.1.4.1.40297.1.2"  # HYTERA-REPEATER-MIB repeater subtree


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def fleet() -> AsyncIterator[SnmpSimulator]:
    async with SnmpSimulator(FLEET) as sim:
        yield sim


@pytest.mark.parametrize(
    ("community", "oid", "expected"),
    [
        ("ups-1", UPS_OUTPUT_SOURCE, "3"),
        ("rtr-1", "1.3.6.1.2.1.2.2.1.8.2", "1"),  # ifOperStatus.2 (wwan0) up
        ("rtr-1", "1.3.6.1.2.1.2.1.0", "2"),  # ifNumber
        ("rtr-2", "1.3.6.1.2.1.31.1.1.1.6.2", "5000123456"),  # ifHCInOctets.2, Counter64
        ("rpt-1", "1.3.6.1.2.1.1.2.0", f".{RPT}"),  # sysObjectID
        ("rpt-1", f"{RPT}.1.2.9.0", "-87"),  # rptSlot1Rssi
        ("rpt-1", f"{RPT}.1.2.10.0", "-200"),  # rptSlot2Rssi: nothing received
        ("rpt-1", f"{RPT}.1.2.11.0", "0"),  # rptSupplyPowerType: DC
    ],
)
async def test_serves_each_community_its_recording(
    fleet: SnmpSimulator, community: str, oid: str, expected: str
) -> None:
    """Each device community answers from its own recording."""
    assert await snmpget(fleet.port, community, oid) == expected


async def test_hikvision_text_with_units(fleet: SnmpSimulator) -> None:
    """snmpsim-data's hikvision camera serves its "52 PERCENT" OCTET STRING."""
    value = await snmpget(fleet.port, "cam-1", "1.3.6.1.4.1.39165.1.7.0")
    assert octets(value) == b"52 PERCENT"


async def test_hytera_packed_float_and_utf16(fleet: SnmpSimulator) -> None:
    """rptVoltage is a little-endian float in an OCTET STRING; rptModelName is UTF-16LE."""
    voltage = octets(await snmpget(fleet.port, "rpt-1", f"{RPT}.1.2.1.0"))
    assert struct.unpack("<f", voltage)[0] == pytest.approx(13.6, abs=1e-5)
    model = octets(await snmpget(fleet.port, "rpt-1", f"{RPT}.4.1.0"))
    assert model.decode("utf-16-le") == "RD988"


async def test_hytera_answers_snmpv1(fleet: SnmpSimulator) -> None:
    """The v1-only repeater's recording is served over SNMPv1."""
    assert await snmpget(fleet.port, "rpt-1", f"{RPT}.1.1.1.0", version="1") == "0"


async def test_unknown_community_is_silent(fleet: SnmpSimulator) -> None:
    """A community that names no device gets no answer, like a wrong community on a device."""
    assert await snmpget(fleet.port, "nobody", "1.3.6.1.2.1.1.3.0", wait=0.3) is None


async def test_set_values_changes_later_gets() -> None:
    """set_values switches the UPS to battery, removes and adds OIDs, without a restart."""
    async with SnmpSimulator({"ups": "UPS/huawei-gse200m", "ups-b": "UPS/huawei-gse200m"}) as sim:
        battery_status = "1.3.6.1.2.1.33.1.2.1.0"
        assert await snmpget(sim.port, "ups", battery_status) is not None
        await sim.set_values(
            "ups",
            {
                UPS_OUTPUT_SOURCE: ("2", 5),  # battery
                battery_status: None,
                "1.3.6.1.2.1.33.1.2.99.0": ("4", "added"),
            },
        )
        assert await snmpget(sim.port, "ups", UPS_OUTPUT_SOURCE) == "5"
        assert await snmpget(sim.port, "ups", battery_status) == (
            "No Such Instance currently exists at this OID"
        )
        assert octets(await snmpget(sim.port, "ups", "1.3.6.1.2.1.33.1.2.99.0")) == b"added"
        # Within the same second again: still picked up. The other device is untouched.
        await sim.set_values("ups", {UPS_OUTPUT_SOURCE: ("2", 3)})
        assert await snmpget(sim.port, "ups", UPS_OUTPUT_SOURCE) == "3"
        assert await snmpget(sim.port, "ups-b", UPS_OUTPUT_SOURCE) == "3"
        assert await snmpget(sim.port, "ups-b", battery_status) != (
            "No Such Instance currently exists at this OID"
        )


async def test_restart_on_same_port_keeps_changed_values() -> None:
    """stop() silences the agent; start() serves again on the same port with set values."""
    async with SnmpSimulator({"rpt": "hytera-repeater"}) as sim:
        port = sim.port
        await sim.set_values("rpt", {f"{RPT}.1.2.11.0": ("2", 1)})  # on battery
        await sim.stop()
        assert await snmpget(port, "rpt", f"{RPT}.1.2.11.0", wait=0.3) is None
        await sim.start()
        assert sim.port == port
        assert await snmpget(port, "rpt", f"{RPT}.1.2.11.0") == "1"


async def test_set_values_rejects_unknown_community_and_bad_records() -> None:
    """Unknown devices and records that would corrupt the data file are refused."""
    async with SnmpSimulator({"rtr": "router"}) as sim:
        with pytest.raises(KeyError):
            await sim.set_values("other", {"1.3.6.1.2.1.1.5.0": ("4", "x")})
        with pytest.raises(ValueError, match="bad OID"):
            await sim.set_values("rtr", {".1.3.6.1.2.1.1.5.0": ("4", "x")})
        with pytest.raises(ValueError, match="bad snmprec"):
            await sim.set_values("rtr", {"1.3.6.1.2.1.1.5.0": ("4", "two\nlines")})


async def test_missing_recording_is_a_clear_error() -> None:
    """An unknown recording name fails start() before snmpsim runs."""
    with pytest.raises(SnmpSimulatorError, match="no recording 'UPS/nonexistent'"):
        async with SnmpSimulator({"x": "UPS/nonexistent"}):
            pass


async def test_snmpsim_failure_reports_its_log(tmp_path: Path) -> None:
    """When snmpsim exits at startup the error carries its own explanation."""
    broken = tmp_path / "broken.snmprec"
    broken.write_text("not a record\n")
    with pytest.raises(SnmpSimulatorError, match="broken record"):
        async with SnmpSimulator({"x": broken}):
            pass


async def test_bad_community_is_refused() -> None:
    """Communities become file names, so path-like ones are refused."""
    with pytest.raises(ValueError):
        SnmpSimulator({"../etc": "router"})
