"""SNMPv2c traps per CPU-second: commsmon's receiver beside net-snmp's snmptrapd.

Each receiver in turn (never both at once) runs in its own process on 127.0.0.1
and gets the same traps from this process: upsTrapOnBattery from one UPS (with
snmpTrapAddress.0 naming it), each with a different minutes varbind so that
commsmon's 5-second dedup does not hide any, sent from 50 source addresses
(127.0.0.10-59) so that one source's rate limit does not either.

* commsmon: ``TrapReceiver`` with a one-UPS configuration (rate far above the
  offered load), counting what it applied.
* snmptrapd: ``snmptrapd -f -Lf FILE -C -c CONF`` with ``authCommunity log
  trap-community`` and no handler: one line per trap in FILE.

For each: traps offered at PACE per second (both keep up, so the kernel drops
none), CPU seconds (utime + stime from /proc) from before the first trap until
the count settles, and traps handled; ratio = commsmon's traps per CPU-s
over snmptrapd's. Then the loss at bursts of 1 000, 5 000 and 20 000 traps/s
(two seconds each) for commsmon: sent minus applied.

Run: .venv/bin/python bench/traps.py [--traps 20000]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from pysnmp.proto import rfc1902

from commsmon.sim.traps import encode_v2c_trap

ROOT = Path(__file__).resolve().parents[1]
ON_BATTERY = "1.3.6.1.2.1.33.2.1"
MINUTES = "1.3.6.1.2.1.33.1.2.3.0"
TRAP_ADDRESS = "1.3.6.1.6.3.18.1.3.0"
SOURCES = [f"127.0.0.{i}" for i in range(10, 60)]
PACE = 500.0  # traps/s offered for the CPU comparison: both keep up, no kernel drops

CONFIG = """
district: bench
profiles_dir: {profiles}
traps: {{listen: ["127.0.0.1:{port}"], communities: [trap-community], rate: 1000000,
        queue_size: 1000000}}
sites:
  - id: v01
    name: bench
    town: bench
    devices:
      - {{id: v01-ups, kind: ups, profile: ups-rfc1628,
         snmp: {{host: 10.8.1.20, port: 161}}}}
"""

COMMSMON = """
import asyncio, sys
from pathlib import Path
from commsmon.config.compile import Setup
from commsmon.config.load import load_config
from commsmon.log import configure_logging
from commsmon.sources.traps.receiver import TrapReceiver
configure_logging("warning", json=True)
count = 0
def sink(obs):
    global count
    count += 1
async def main():
    receiver = TrapReceiver(Setup.of(load_config(sys.argv[1])), sink, lambda d, r: None,
                            Path(sys.argv[2]))
    task = asyncio.create_task(receiver.run())
    await asyncio.sleep(0.5)
    print("ready", flush=True)
    counted = Path(sys.argv[3])
    while True:
        await asyncio.sleep(0.2)
        counted.write_text(str(count))
asyncio.run(main())
"""


def trap(minutes: int) -> bytes:
    return encode_v2c_trap("trap-community", ON_BATTERY,
                           (MINUTES, rfc1902.Integer32(minutes)),
                           (TRAP_ADDRESS, rfc1902.IpAddress("10.8.1.20")))


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def send(port: int, count: int, per_second: float, offset: int = 0) -> None:
    """``count`` distinct traps at ``per_second``, round-robin over SOURCES."""
    socks = []
    for address in SOURCES:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind((address, 0))
        socks.append(sock)
    datagrams = [trap(offset + i) for i in range(count)]
    started = time.perf_counter()
    for i, datagram in enumerate(datagrams):
        socks[i % len(socks)].sendto(datagram, ("127.0.0.1", port))
        ahead = i / per_second - (time.perf_counter() - started)
        if ahead > 0.002:
            time.sleep(ahead)
    for sock in socks:
        sock.close()


def settle(read: Callable[[], int], limit: float = 30.0) -> int:
    last, since, deadline = -1, time.monotonic(), time.monotonic() + limit
    while time.monotonic() < deadline:
        now = read()
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since > 1.5:
            break
        time.sleep(0.2)
    return last


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run_commsmon(work: Path, traps: int, rates: list[float]) -> dict[str, object]:
    port = free_port()
    config = work / "commsmon.yaml"
    config.write_text(CONFIG.format(profiles=ROOT / "config" / "profiles", port=port))
    counted = work / "count"
    proc = subprocess.Popen([sys.executable, "-c", COMMSMON, str(config), str(work / "state"),
                             str(counted)], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    assert proc.stdout is not None

    def read() -> int:
        with contextlib.suppress(OSError, ValueError):
            return int(counted.read_text())
        return 0

    try:
        while proc.stdout.readline().strip() != "ready":
            pass
        cpu = cpu_seconds(proc.pid)
        send(port, traps, per_second=PACE)
        handled = settle(read)
        result: dict[str, object] = {"handled": handled, "cpu": cpu_seconds(proc.pid) - cpu}
        losses = {}
        for rate in rates:
            before = settle(read)
            count = int(rate * 2)
            send(port, count, per_second=rate, offset=10_000_000 + int(rate) * 10)
            losses[str(int(rate))] = count - (settle(read) - before)
        result["loss"] = losses
        return result
    finally:
        proc.kill()
        proc.wait()


def run_snmptrapd(work: Path, traps: int) -> dict[str, object]:
    port = free_port()
    conf, log = work / "snmptrapd.conf", work / "traps.log"
    conf.write_text("authCommunity log trap-community\ndoNotRetainNotificationLogs yes\n")
    proc = subprocess.Popen(["snmptrapd", "-f", "-n", "-On", "-C", "-c", str(conf), "-Lf", str(log),
                             "-p", str(work / "pid"), f"udp:127.0.0.1:{port}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(1.0)
        cpu = cpu_seconds(proc.pid)

        def read() -> int:
            with contextlib.suppress(OSError):
                return log.read_text(errors="replace").count(ON_BATTERY)
            return 0

        send(port, traps, per_second=PACE)
        handled = settle(read)
        return {"handled": handled, "cpu": cpu_seconds(proc.pid) - cpu}
    finally:
        proc.kill()
        proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--traps", type=int, default=20_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        ours = run_commsmon(work, args.traps, [1_000, 5_000, 20_000])
        peer = run_snmptrapd(work, args.traps)
    rate = {name: r["handled"] / max(r["cpu"], 1e-9)  # type: ignore[operator]
            for name, r in (("commsmon", ours), ("snmptrapd", peer))}
    print(f"{args.traps} v2c traps, one sender, 50 source addresses")
    for name, r in (("commsmon", ours), ("snmptrapd", peer)):
        print(f"  {name:10s} handled {r['handled']:>6}  CPU {r['cpu']:.2f} s  "
              f"{rate[name]:,.0f} traps per CPU-s")
    print(f"  ratio commsmon / snmptrapd: {rate['commsmon'] / rate['snmptrapd']:.2f}")
    print(f"  commsmon loss at bursts (2 s each): {ours['loss']}")
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "traps.json").write_text(json.dumps(
        {"traps": args.traps, "commsmon": ours, "snmptrapd": peer, "per_cpu_second": rate},
        indent=2))


if __name__ == "__main__":
    main()
