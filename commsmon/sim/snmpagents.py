"""Many simulated SNMP agents served by one ``snmpsim`` process on 127.0.0.1.

Each simulated device is one SNMPv1/v2c *community* of a single
``snmpsim-command-responder`` process: snmpsim serves the data file
``<community>.snmprec`` of its data directory to requests carrying that
community, so a whole fleet costs one process and one UDP port. Put a
:class:`commsmon.sim.links.UdpLink` in front of a device to give it its own
port and a link that can be cut.

Recordings (``OID|TAG|VALUE`` lines sorted by OID, ``#`` comment lines allowed;
tags: 2 INTEGER, 4 OCTET STRING, 4x OCTET STRING in hex, 6 OBJECT IDENTIFIER,
65 Counter32, 66 Gauge32, 67 TimeTicks, 70 Counter64):

``hytera-repeater`` (``recordings/hytera-repeater.snmprec``)
    A Hytera RD988 DMR/PDT repeater. OIDs from HYTERA-REPEATER-MIB (librenms
    ``mibs/hytera/HYTERA-REPEATER-MIB``, enterprise 40297, repeater subtree
    1.3.6.1.4.1.40297.1.2); values invented. The real device speaks SNMPv1
    only; snmpsim answers any version. Contents: sysDescr, sysObjectID
    (1.3.6.1.4.1.40297.1.2), sysUpTime, sysName; rptVoltageAlarm (.1.1.1.0),
    rptTemperatureAlarm (.1.1.2.0), rptVswrAlarm (.1.1.6.0),
    rptBatteryVoltageAlarm (.1.1.9.0), all 0 = normal; rptVoltage (.1.2.1.0)
    13.6 V and rptPaTemprature (.1.2.2.0) 38.5 °C as 4-byte little-endian
    IEEE-754 floats in OCTET STRINGs (``struct.unpack("<f", ...)``);
    rptSlot1Rssi (.1.2.9.0) -87 dB, rptSlot2Rssi (.1.2.10.0) -200 (= nothing
    received); rptSupplyPowerType (.1.2.11.0) 0 = DC (1 = battery);
    rptBatteryConnect (.1.2.12.0) 1; rptModelName (.4.1.0) "RD988" in UTF-16LE;
    rptRadioID (.4.7.0) 1001.

``router`` (``recordings/router.snmprec``)
    A village 4G router with an OpenWrt-style net-snmp agent: SNMPv2-MIB system
    group (sysObjectID 1.3.6.1.4.1.8072.3.2.10, sysUpTime TimeTicks), IF-MIB
    ifNumber = 2, ifTable (ifIndex, ifDescr, ifType, ifSpeed, ifAdminStatus,
    ifOperStatus = 1 up, ifInOctets/ifOutOctets Counter32) and ifXTable
    (ifName, ifHCInOctets/ifHCOutOctets Counter64) for ifIndex 1 ``lo`` and
    ifIndex 2 ``wwan0`` (the 4G uplink; its ifInOctets is ifHCInOctets mod
    2**32). Values invented.

``router-live`` (``recordings/router-live.snmprec``)
    The same router's system group and uplink, running: sysUpTime and the
    uplink's ifInOctets (Counter32, wrapping), ifHCInOctets and ifHCOutOctets
    (Counter64) advance with snmpsim's ``numeric`` variation module from 0 (or
    near 2**32) when snmpsim starts, so restarting the simulator restarts the
    agent as a reboot would. The simulated fleet serves this one.

Any recording of the ``snmpsim-data`` package can be named by its path under
``snmpsim_data/data/`` without extension, e.g. ``"camera/hikvision"``,
``"UPS/huawei-gse200m"``, ``"UPS/phoenixtec-power"`` (``.bz2`` files are
decompressed). A :class:`~pathlib.Path` to any ``.snmprec`` file works too.

Running snmpsim as root: snmpsim refuses to run as root unless told which user
to drop to, and dropping to an unprivileged user (``nobody``) breaks it when the
interpreter lives under ``/root`` (pyenv): the dropped process cannot import
``dbm`` and every index build fails. As root we therefore pass
``--process-user root --process-group root``: snmpsim's documented options,
"dropping" to root itself (snmpsim 1.2 also honours ``SNMPSIM_ALLOW_ROOT=true``,
an undocumented escape hatch we do not rely on). As any other user no option is
passed. The process only ever binds 127.0.0.1.

Changed data files (measured with snmpsim 1.2.2): snmpsim reopens a data file
and rebuilds its index when the file's mtime, compared in whole seconds,
differs from the one it indexed (its ``--force-index-rebuild`` only acts at
startup). :meth:`SnmpSimulator.set_values` therefore replaces the file
atomically while snmpsim runs -- no restart, so no window in which the agent is
silent -- and moves its mtime to a new whole second; a change takes about 15 ms.
Startup takes about 0.4 s.

Taken ports: snmpsim (pysnmp) binds its UDP port in a background task and
swallows a bind error, running deaf; :meth:`SnmpSimulator.start` checks the
port first.
"""

from __future__ import annotations

import asyncio
import bz2
import contextlib
import importlib.util
import os
import re
import socket
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from commsmon.errors import CommsmonError
from commsmon.sim._process import Reaper, Service, stop_process
from commsmon.sim.ports import free_port

__all__ = [
    "HOST",
    "RECORDINGS_DIR",
    "SnmpSimulator",
    "SnmpSimulatorError",
    "SnmprecValue",
]

HOST = "127.0.0.1"
"""The only address the simulator binds and probes."""

RECORDINGS_DIR = Path(__file__).parent / "recordings"
"""Where our own ``<name>.snmprec`` recordings live."""

SnmprecValue = tuple[str, str | int]
"""An snmprec ``(tag, value)`` pair, e.g. ``("2", 1)`` or ``("4x", "9a995941")``."""

_SYS_UPTIME_OID = b"\x2b\x06\x01\x02\x01\x01\x03\x00"  # 1.3.6.1.2.1.1.3.0, BER-encoded
_COMMUNITY_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_LOG_TAIL_CHARS = 4000


class SnmpSimulatorError(CommsmonError):
    """snmpsim is missing, would not start, or a device or recording is unknown."""


class SnmpSimulator(Service):
    """One snmpsim process serving one community per simulated device.

    Usage::

        async with SnmpSimulator({"ups-1": "UPS/huawei-gse200m"}) as sim:
            ...  # snmpget -v2c -c ups-1 127.0.0.1:{sim.port} ...
            await sim.set_values("ups-1", {"1.3.6.1.2.1.33.1.4.1.0": ("2", 5)})

    Args:
        devices: community -> recording: the name of one of our recordings
            (``"hytera-repeater"``, ``"router"``), a path under
            ``snmpsim_data/data/`` without extension (``"camera/hikvision"``),
            or a :class:`~pathlib.Path` to an ``.snmprec[.bz2]`` file. A
            community must match ``[A-Za-z0-9][A-Za-z0-9._-]*``.
        port: UDP port on 127.0.0.1; 0 (default) picks a free one at the first
            start. Later starts reuse it.
        log_level: snmpsim's ``--log-level`` (``"debug"``, ``"info"``,
            ``"error"``); its output goes to ``snmpsim.log`` in the temp dir.
        startup_timeout: seconds to wait for the first answer, default 20.

    Attributes:
        host: always ``"127.0.0.1"``.
        port: the UDP port (0 until the first start when picked freely).
        data_dir: directory of the ``<community>.snmprec`` copies (exists
            between ``start()`` and leaving the context).

    Raises:
        ValueError: from the constructor, for an empty mapping or a bad community.
    """

    def __init__(
        self,
        devices: Mapping[str, str | Path],
        *,
        port: int = 0,
        log_level: str = "error",
        startup_timeout: float = 20.0,
    ) -> None:
        if not devices:
            raise ValueError("SnmpSimulator needs at least one device")
        for community in devices:
            if not _COMMUNITY_RE.fullmatch(community):
                raise ValueError(f"community {community!r} is not usable as a file name")
        self.host = HOST
        self.port = port
        self.log_level = log_level
        self.startup_timeout = startup_timeout
        self._devices = dict(devices)
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._proc: asyncio.subprocess.Process | None = None
        self._reaper = Reaper()
        self._lock = asyncio.Lock()

    @property
    def data_dir(self) -> Path:
        if self._tmp is None:
            raise SnmpSimulatorError("simulator has not been started")
        return Path(self._tmp.name) / "data"

    @property
    def communities(self) -> list[str]:
        """The device communities served, in construction order."""
        return list(self._devices)

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.returncode is None

    def data_file(self, community: str) -> Path:
        """Path of the served copy of ``community``'s recording.

        Raises:
            KeyError: unknown community.
        """
        if community not in self._devices:
            raise KeyError(community)
        return self.data_dir / f"{community}.snmprec"

    async def start(self) -> None:
        """Start snmpsim (again, on the same port) and wait until it answers.

        The first call builds the temp data dir; later calls (after
        :meth:`stop`) keep its files, including values changed by
        :meth:`set_values`.

        Raises:
            SnmpSimulatorError: snmpsim is not installed, a recording is
                missing, or snmpsim exited or did not answer within
                ``startup_timeout`` seconds (the message ends with its log).
        """
        if self.running:
            return
        if importlib.util.find_spec("snmpsim") is None:
            raise SnmpSimulatorError(
                "snmpsim is not installed; install commsmon[sim] (snmpsim, snmpsim-data, pysmi)"
            )
        if self._tmp is None:
            tmp = tempfile.TemporaryDirectory(prefix="commsmon-snmpsim-")
            try:
                await asyncio.to_thread(_populate, Path(tmp.name), self._devices)
            except BaseException:
                tmp.cleanup()
                raise
            self._tmp = tmp
        port = self.port or free_port(socket.SOCK_DGRAM, HOST)
        # snmpsim (pysnmp) binds in a background task and swallows the error:
        # on a taken port it would run deaf. Check first.
        if not _udp_port_free(port):
            raise SnmpSimulatorError(f"UDP port {HOST}:{port} is already in use")
        await self._spawn(port)
        self.port = port

    async def _spawn(self, port: int) -> None:
        assert self._tmp is not None
        root = Path(self._tmp.name)
        cmd = [
            sys.executable,
            "-m",
            "snmpsim.commands.responder",
            f"--data-dir={root / 'data'}",
            f"--cache-dir={root / 'cache'}",
            f"--agent-udpv4-endpoint={HOST}:{port}",
            f"--log-level={self.log_level}",
        ]
        if os.geteuid() == 0:
            # See the module docstring: keep root rather than drop to a user that
            # cannot read the interpreter.
            cmd += ["--process-user=root", "--process-group=root"]
        # HOME points into the temp dir so no ~/.snmpsim of the caller is read.
        env = {**os.environ, "HOME": str(root)}
        # A file, not a pipe: nobody reads snmpsim's chatter, and a full pipe
        # would block it.
        log = os.open(root / "snmpsim.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            self._proc = await asyncio.create_subprocess_exec(
                *cmd,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                env=env,
                # Its own session: a Ctrl-C to the demo's process group reaches us,
                # and we stop it after our clients, not before them.
                start_new_session=True,
            )
        finally:
            os.close(log)
        # Never orphan the process: if this object is dropped or the interpreter
        # exits without stop() (a test forgot, a loop closed early), SIGTERM it.
        self._reaper.watch(self, self._proc)
        try:
            await self._wait_ready(self._proc, port)
        except BaseException:  # including cancellation: leave no process behind
            await self.stop()
            raise

    async def _wait_ready(self, proc: asyncio.subprocess.Process, port: int) -> None:
        community = next(iter(self._devices))
        deadline = time.monotonic() + self.startup_timeout
        while True:
            if proc.returncode is not None:
                raise SnmpSimulatorError(
                    f"snmpsim exited with status {proc.returncode} during startup on "
                    f"{HOST}:{port}; its log:\n{self._log_tail()}"
                )
            if await _probe(port, community, within=0.2):
                return
            if time.monotonic() > deadline:
                raise SnmpSimulatorError(
                    f"snmpsim did not answer on {HOST}:{port} within "
                    f"{self.startup_timeout} s; its log:\n{self._log_tail()}"
                )
            # _probe returns at once on ICMP port-unreachable: don't spin.
            await asyncio.sleep(0.05)

    async def stop(self) -> None:
        """Terminate snmpsim (SIGTERM, then SIGKILL after 5 s). Idempotent."""
        proc, self._proc = self._proc, None
        self._reaper.release()
        await stop_process(proc)

    async def close(self) -> None:
        """Stop snmpsim and delete the temp dir."""
        await self.stop()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    async def set_values(self, community: str, values: Mapping[str, SnmprecValue | None]) -> None:
        """Change what later GETs of ``community`` return, without a restart.

        Each OID (dotted, no leading dot) gets the ``(tag, value)`` in snmprec
        terms, is inserted in OID order when new, or is removed when the value
        is ``None`` (later GETs answer noSuchObject/noSuchInstance).

        snmpsim notices the change by the file's mtime in whole seconds, so the
        new file is given an mtime in a new second. A request being indexed
        while the file is replaced could leave snmpsim with the old index and
        the new mtime, so after the replace we wait for one answer from the
        agent (it serves requests one at a time, hence any index build in
        progress has finished) and move the mtime on once more. Returns after
        that; works while stopped too (the next start serves the new file).

        Raises:
            KeyError: unknown community.
            ValueError: a malformed OID, tag or value.
            SnmpSimulatorError: the simulator was never started (no data dir).
        """
        path = self.data_file(community)
        lines = {oid: _format_record(oid, tv) for oid, tv in values.items()}
        async with self._lock:
            mtime = await asyncio.to_thread(_rewrite, path, lines)
            if self.running:
                await _probe(self.port, community, within=2.0)
            os.utime(path, (mtime + 1, mtime + 1))

    def _log_tail(self) -> str:
        if self._tmp is None:
            return ""
        try:
            text = (Path(self._tmp.name) / "snmpsim.log").read_text(errors="replace")
        except OSError:
            return ""
        # snmpsim writes its tracebacks on one line with ";" for newlines.
        return text[-_LOG_TAIL_CHARS:].replace(";  ", "\n  ")


def _resolve(recording: str | Path) -> Path:
    """Find a recording file. Raises SnmpSimulatorError when there is none."""
    if isinstance(recording, Path):
        candidates = [recording]
    else:
        candidates = [RECORDINGS_DIR / f"{recording}.snmprec"]
        spec = importlib.util.find_spec("snmpsim_data")
        if spec is not None and spec.submodule_search_locations:
            base = Path(next(iter(spec.submodule_search_locations))) / "data" / recording
            candidates += [base.with_name(base.name + ext) for ext in (".snmprec", ".snmprec.bz2")]
    for path in candidates:
        if path.is_file():
            return path
    raise SnmpSimulatorError(
        f"no recording {str(recording)!r}: looked for {', '.join(map(str, candidates))}"
    )


def _populate(root: Path, devices: Mapping[str, str | Path]) -> None:
    """Write one COPIED ``<community>.snmprec`` per device under ``root/data``.

    Copies, not symlinks: snmpsim resolves symlinks and names the community
    after the target file, so symlinked devices would collapse into one.
    """
    (root / "data").mkdir()
    (root / "cache").mkdir()
    contents: dict[Path, bytes] = {}
    for community, recording in devices.items():
        src = _resolve(recording)
        if src not in contents:
            raw = src.read_bytes()
            contents[src] = bz2.decompress(raw) if src.suffix == ".bz2" else raw
        (root / "data" / f"{community}.snmprec").write_bytes(contents[src])


def _oid_key(oid: str) -> tuple[int, ...]:
    return tuple(int(arc) for arc in oid.split("."))


def _format_record(oid: str, tag_value: SnmprecValue | None) -> bytes | None:
    try:
        _oid_key(oid)
    except ValueError:
        raise ValueError(f"bad OID {oid!r}: dotted decimal without a leading dot") from None
    if tag_value is None:
        return None
    tag, value = tag_value
    text = str(value)
    if not tag or "|" in tag or any(c in text for c in "\r\n"):
        raise ValueError(f"bad snmprec tag or value for {oid}: {tag_value!r}")
    return f"{oid}|{tag}|{text}\n".encode()


def _rewrite(path: Path, changes: Mapping[str, bytes | None]) -> int:
    """Apply ``changes`` to the snmprec file atomically; return its new mtime (s).

    Records stay sorted by OID (snmpsim binary-searches the file). The new file
    gets an mtime in a whole second later than the old one's and not before
    now, which makes snmpsim re-index it.
    """
    old_mtime = int(path.stat().st_mtime)
    pending = sorted((_oid_key(oid), line) for oid, line in changes.items())
    out: list[bytes] = []
    for line in path.read_bytes().splitlines(keepends=True):
        stripped = line.strip()
        if not stripped or stripped.startswith(b"#"):
            out.append(line)
            continue
        oid = stripped.split(b"|", 1)[0].decode("ascii")
        key = _oid_key(oid)
        while pending and pending[0][0] < key:
            new = pending.pop(0)[1]
            if new is not None:
                out.append(new)
        if pending and pending[0][0] == key:
            new = pending.pop(0)[1]
            if new is not None:
                out.append(new)
            continue
        out.append(line if line.endswith(b"\n") else line + b"\n")
    out += [line for _, line in pending if line is not None]
    mtime = max(int(time.time()), old_mtime + 1)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(b"".join(out))
    os.utime(tmp, (mtime, mtime))
    os.replace(tmp, path)
    return mtime


def _udp_port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
        return True


def _tlv(tag: int, payload: bytes) -> bytes:
    """BER tag-length-value (X.690 §8.1)."""
    n = len(payload)
    if n < 0x80:
        length = bytes([n])
    else:
        raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
        length = bytes([0x80 | len(raw)]) + raw
    return bytes([tag]) + length + payload


def _get_request(community: str, request_id: int) -> bytes:
    """An SNMPv2c GetRequest for sysUpTime.0 (RFC 3416 / RFC 1901)."""

    def integer(v: int) -> bytes:
        return _tlv(0x02, v.to_bytes((v.bit_length() + 8) // 8, "big", signed=True))

    varbinds = _tlv(0x30, _tlv(0x30, _tlv(0x06, _SYS_UPTIME_OID) + b"\x05\x00"))
    pdu = _tlv(0xA0, integer(request_id) + integer(0) + integer(0) + varbinds)
    return _tlv(0x30, integer(1) + _tlv(0x04, community.encode()) + pdu)


class _ProbeProtocol(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.answered: asyncio.Future[bool] = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        if not self.answered.done():
            self.answered.set_result(True)

    def error_received(self, exc: Exception) -> None:  # ICMP port unreachable
        if not self.answered.done():
            self.answered.set_result(False)


async def _probe(port: int, community: str, *, within: float) -> bool:
    """Send one SNMP GET of sysUpTime.0 to 127.0.0.1:``port``; True if anything answers.

    Args:
        within: seconds to wait for the answer.
    """
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(
        _ProbeProtocol, remote_addr=(HOST, port)
    )
    try:
        transport.sendto(_get_request(community, int.from_bytes(os.urandom(3), "big")))
        with contextlib.suppress(TimeoutError):
            return await asyncio.wait_for(protocol.answered, within)
        return False
    finally:
        transport.close()

