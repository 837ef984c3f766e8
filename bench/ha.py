"""An HA pair's failover: the leader SIGKILLed while a village is isolated.

Per trial (fresh etcd, two peered Alertmanagers, two daemons, the demo fleet):
v05 is isolated and told; v06 is isolated while commsmon's webhook answers 500, so
the leader holds it pending; the leader is SIGKILLed and the webhook recovers.
Measured: kill -> the standby reports itself leader (``commsmon_ha_role``, /metrics
polled every 0.1 s), kill -> v06 delivered by the new leader, and how many
notifications each receiver got for each alert (the goal: exactly one).  The
lease period is the bound (takeover within two leases).

    .venv/bin/python bench/ha.py [--trials 3] [--lease 3]

Writes bench/results/ha.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from commsmon.config.load import load_config  # noqa: E402
from commsmon.sim.broker import Mosquitto  # noqa: E402
from commsmon.sim.fleet import SimFleet  # noqa: E402
from commsmon.sim.hapeers import AlertmanagerCluster, Etcd  # noqa: E402
from tests.fleetharness import DaemonProcess, until, value  # noqa: E402
from tests.integration.test_ha import _direct, _pair_configs, _via_am  # noqa: E402
from tests.receiverharness import RecordingReceiver  # noqa: E402


async def _trial(lease: int, work: Path) -> dict[str, Any]:
    direct, am_hook = RecordingReceiver(), RecordingReceiver()
    await direct.start()
    await am_hook.start()
    assert direct.server and am_hook.server
    try:
        async with (Mosquitto() as broker, Etcd() as etcd,
                    AlertmanagerCluster(str(am_hook.server.make_url("/am"))) as cluster):
            (pa, porta), (pb, portb) = _pair_configs(
                work, broker.port, str(direct.server.make_url("/hook")), etcd.endpoint,
                cluster.urls, lease=lease)
            config = load_config(pa)
            async with SimFleet(config, telemetry_period=1.0) as fleet:
                a = DaemonProcess(pa, porta, work / "cc-a.log")
                await a.wait_for("leader", lambda s: value(
                    s, "commsmon_ha_role", role="leader") == 1, 30)
                b = DaemonProcess(pb, portb, work / "cc-b.log")
                try:
                    polled = [d.id for d in config.inventory().devices.values()
                              if d.source != "checkin"]
                    for d in (a, b):
                        await d.wait_for("up", lambda s: all(value(
                            s, "commsmon_device_up", device=i) == 1 for i in polled), 60)
                    fleet.take_down(fleet.site_devices("v05"))
                    await until("v05", lambda: _direct(direct, "v05", "firing"), 60)
                    direct.status = 500
                    fleet.take_down(fleet.site_devices("v06"))
                    await until("v06 tried", lambda: any(r.body["groupLabels"].get(
                        "site") == "v06" for r in direct.requests), 60)
                    a.kill()
                    killed = time.monotonic()
                    direct.status = 200
                    while True:
                        s = await b.samples()
                        if value(s, "commsmon_ha_role", role="leader") == 1:
                            break
                        await asyncio.sleep(0.1)
                    takeover = time.monotonic() - killed
                    await until("v06", lambda: _direct(direct, "v06", "firing"), 60)
                    delivered = time.monotonic() - killed
                    await until("v06 via AM", lambda: _via_am(am_hook, "v06"), 60)
                    await asyncio.sleep(6)
                    return {
                        "takeover_s": takeover, "v06_delivered_s": delivered,
                        "webhook_v05": len(_direct(direct, "v05", "firing")),
                        "webhook_v06": len(_direct(direct, "v06", "firing")),
                        "am_v05": len(_via_am(am_hook, "v05")),
                        "am_v06": len(_via_am(am_hook, "v06")),
                    }
                finally:
                    b.stop()
                    if a.proc.poll() is None:
                        a.stop()
    finally:
        await direct.close()
        await am_hook.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--lease", type=int, default=3, help="ha.lease, seconds")
    args = parser.parse_args()
    results = []
    for n in range(args.trials):
        with tempfile.TemporaryDirectory(prefix="commsmon-bench-ha-") as tmp:
            result = await _trial(args.lease, Path(tmp))
        results.append(result)
        print(f"trial {n + 1}: " + ", ".join(f"{k} {v:.2f}" if isinstance(v, float)
                                             else f"{k} {v}" for k, v in result.items()))
    takeovers = [r["takeover_s"] for r in results]
    print(f"\nlease {args.lease} s (bound: two leases = {2 * args.lease} s)")
    print("| what | median | max | bound |\n|---|---|---|---|")
    print(f"| kill -> standby leads | {statistics.median(takeovers):.2f} s | "
          f"{max(takeovers):.2f} s | {2 * args.lease} s |")
    sent = [r["v06_delivered_s"] for r in results]
    print(f"| kill -> held alert delivered | {statistics.median(sent):.2f} s | "
          f"{max(sent):.2f} s | — |")
    for key in ("webhook_v05", "webhook_v06", "am_v05", "am_v06"):
        counts = sorted({r[key] for r in results})
        print(f"| notifications {key} | {counts} | | exactly 1 |")
    out = ROOT / "bench" / "results" / "ha.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"lease": args.lease, "trials": results}, indent=1))


if __name__ == "__main__":
    asyncio.run(main())
