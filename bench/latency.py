"""Detection latency: a village's devices stop -> the critical webhook is received.

The real pieces on loopback: Mosquitto, the simulated fleet of the demo
inventory (snmpsim behind cuttable UDP links, MQTT devices), the daemon as a
child process, and a recording webhook receiver routed for critical alerts.
Once every polled device is up, each trial takes every device of one village
down (v01 .. v14 in turn, but see below), times the arrival of the firing notification whose
``groupLabels.site`` names that village, brings the village back and waits for
the resolved notification before the next trial.

One daemon serves every trial.  Its flap damping is switched off here
(``flap_changes`` very high): at benchmark speed the same village is
isolated again within minutes, which in service counts as flapping and is
reported at most every ``flap_hold``.  (Earlier, repeat trials on one daemon
lost their notification to a key that repeated; that commsmon bug, found by
this script, is fixed; ``--fresh-daemons`` restarts the daemon each time the
rotation comes back to a village, as the first version did.)

The peer is the configuration's own bound: ``down_after`` (3) failed polls at
most ``interval`` apart after the cut, the last one ending ``timeout`` later,
then ``for`` of ``site_isolated``, then ``group_wait``, plus one evaluation
period (1 s): 3·I + timeout + F + G + 1.  The target (province-scale issue) is
median <= bound + 1 s.

``--case mains-cut`` times the power-outage page instead: the drill cuts the
mains at a village with a UPS (the sim sets upsOutputSource battery in snmpsim
and sends upsTrapOnBattery), and the time runs to the firing ``outage_active``
notification naming that village and ``outage: power``; then mains comes back
and the resolved one is awaited.  Two daemons in the same run, same
configuration but for ``traps``: one listening for the sim's traps, one polling
only.  The gensets are left out of this configuration (their MQTT telemetry
would report the cut at once, whatever the UPS says), so the UPS alone tells.
Goal (issue 15): with traps, median <= 2 s + ``for`` + ``group_wait``; polling
only is bounded by one poll interval + timeout + ``for`` + ``group_wait`` + an
evaluation period.

Writes bench/results/latency.json (latency-mains.json for the mains cut).
Run: .venv/bin/python bench/latency.py [--trials 20] [--interval 2] [--for 2] [--group-wait 1]
     .venv/bin/python bench/latency.py --case mains-cut [--trials 8] [--interval 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from commsmon.config.load import load_config  # noqa: E402
from commsmon.sim.broker import Mosquitto  # noqa: E402
from commsmon.sim.fleet import SimFleet  # noqa: E402
from commsmon.sim.ports import free_port  # noqa: E402
from commsmon.sim.traps import TrapSender  # noqa: E402
from tests.fleetharness import DaemonProcess, value, write_config  # noqa: E402
from tests.receiverharness import Received, RecordingReceiver  # noqa: E402

VILLAGES = [f"v{n:02d}" for n in range(1, 15)]
DOWN_AFTER = 3  # the demo's defaults.down_after
EVALUATE_EVERY = 1.0  # commsmon.daemon.EVALUATE_EVERY
RULE = "site_isolated"


def alerting(hook: str, rule_for: float, group_wait: float) -> dict[str, Any]:
    return {
        "group_wait": group_wait, "group_interval": 2, "repeat_interval": 3600,
        "flap_changes": 1_000_000,  # the same village goes down again within minutes
        "rules": {RULE: {"for": rule_for}},
        "receivers": [{"name": "hook", "type": "webhook", "url": hook, "language": "en"}],
        "routes": [{"match": {"severity": ["critical"]}, "receivers": ["hook"]}],
    }


def bound(interval: float, timeout: float, rule_for: float, group_wait: float) -> float:
    return DOWN_AFTER * interval + timeout + rule_for + group_wait + EVALUATE_EVERY


def _isolated(labels: dict[str, Any]) -> bool:
    return bool(labels.get("alertname") == RULE)


def _note(r: RecordingReceiver, since: int, site: str, status: str,
          wanted: Callable[[dict[str, Any]], bool] = _isolated,
          resolved_too: bool = False) -> Received | None:
    """The first notification about ``site`` with ``status`` accepted after index ``since``,
    carrying an alert whose labels are ``wanted`` (checked when firing, and when resolved
    if ``resolved_too``)."""
    for req in r.accepted[since:]:
        body = req.body
        if body.get("groupLabels", {}).get("site") != site or body.get("status") != status:
            continue
        if (status == "firing" or resolved_too) and not any(
                wanted(a.get("labels", {})) for a in body.get("alerts", [])):
            continue
        return req
    return None


async def _wait_note(r: RecordingReceiver, since: int, site: str, status: str,
                     daemon: DaemonProcess, within: float,
                     wanted: Callable[[dict[str, Any]], bool] = _isolated,
                     resolved_too: bool = False) -> Received:
    deadline = time.monotonic() + within
    while (got := _note(r, since, site, status, wanted, resolved_too)) is None:
        if daemon.proc.poll() is not None:
            raise SystemExit(f"daemon exited {daemon.proc.returncode}:\n{daemon.log()[-3000:]}")
        if time.monotonic() > deadline:
            raise SystemExit(f"no {status} notification for {site} within {within} s\n"
                             f"{daemon.log()[-3000:]}")
        await asyncio.sleep(0.05)
    return got


async def _trial(fleet: SimFleet, hook: RecordingReceiver, daemon: DaemonProcess,
                 site: str, n: int) -> dict[str, Any]:
    since = len(hook.accepted)
    devices = fleet.site_devices(site)
    cut = time.time()
    fleet.take_down(devices)
    firing = await _wait_note(hook, since, site, "firing", daemon, 60)
    latency = firing.at - cut
    since = hook.accepted.index(firing) + 1
    back = time.time()
    fleet.bring_up(devices)
    resolved = await _wait_note(hook, since, site, "resolved", daemon, 60)
    print(f"trial {n:2d} {site}: firing after {latency:5.2f} s, "
          f"resolved after {resolved.at - back:5.2f} s", flush=True)
    return {"site": site, "devices": len(devices), "latency_s": round(latency, 3),
            "resolved_after_s": round(resolved.at - back, 3)}


async def run(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    hook = RecordingReceiver()
    url = await hook.start()
    try:
        async with Mosquitto() as broker:
            path, port = write_config(
                tmp, mqtt_port=broker.port, interval=args.interval, timeout=args.timeout,
                alerting=alerting(url, args.rule_for, args.group_wait))
            config = load_config(path)
            inventory = config.inventory()
            polled = [d.id for d in inventory.devices.values() if d.source != "checkin"]
            sites = list(VILLAGES)
            print(f"rotating over {', '.join(sites)}", flush=True)
            trials: list[dict[str, Any]] = []
            async with SimFleet(config, telemetry_period=1.0) as fleet:
                daemons = 0
                while len(trials) < args.trials:
                    # With --fresh-daemons, a new daemon and state directory each time
                    # the rotation comes back to a village.
                    round_trials = (min(len(sites), args.trials - len(trials))
                                    if args.fresh_daemons else args.trials - len(trials))
                    shutil.rmtree(tmp / "state", ignore_errors=True)
                    daemon = DaemonProcess(path, port, tmp / "daemon.log")
                    daemons += 1
                    try:
                        took = await daemon.wait_for(
                            "every polled device up",
                            lambda s: all(value(s, "commsmon_device_up", device=d) == 1
                                          for d in polled),
                            within=60)
                        print(f"daemon {daemons}: {len(polled)} polled devices up after "
                              f"{took:.1f} s", flush=True)
                        for _ in range(round_trials):
                            trials.append(await _trial(
                                fleet, hook, daemon, sites[len(trials) % len(sites)],
                                len(trials) + 1))
                    finally:
                        rc = daemon.stop()
                        if rc != 0:
                            print(f"daemon exited {rc}", file=sys.stderr)
    finally:
        await hook.close()
    return {"polled_devices": len(polled), "notifications": len(hook.accepted),
            "sites": sites, "daemons": daemons, "trials": trials}


UPS_VILLAGES = ("v01", "v03", "v05", "v08", "v11", "v13")  # the demo's villages with a UPS
TRAP_COMMUNITY = "bench-traps"


def _without_gensets(path: Path) -> None:
    """Drop the gensets from the written config (the UPSes, on mains only, alone tell)."""
    yaml = YAML()
    data = yaml.load(path.read_text(encoding="utf-8"))
    for site in data["sites"]:
        gensets = {d["id"] for d in site["devices"] if d.get("kind") == "generator"}
        site["devices"] = [d for d in site["devices"] if d["id"] not in gensets]
        for d in site["devices"]:
            if str(d.get("power", "")).removeprefix("generator:") in gensets:
                d["power"] = "mains"
    with path.open("w", encoding="utf-8") as f:
        yaml.dump(data, f)


def _power(labels: dict[str, Any]) -> bool:
    return labels.get("alertname") == "outage_active" and labels.get("outage") == "power"


async def run_mains(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    """Both modes, traps then polling only, each with its own daemon and config."""
    hook = RecordingReceiver()
    url = await hook.start()
    modes: dict[str, list[dict[str, Any]]] = {}
    try:
        async with Mosquitto() as broker:
            for mode in ("traps", "polling"):
                directory = tmp / mode
                directory.mkdir()
                rules = alerting(url, args.rule_for, args.group_wait)
                rules["rules"]["outage_active"] = {"for": args.rule_for}
                path, port = write_config(directory, mqtt_port=broker.port,
                                          interval=args.interval, timeout=args.timeout,
                                          alerting=rules)
                _without_gensets(path)
                config = load_config(path)
                sender = None
                if mode == "traps":
                    trap_port = free_port(socket.SOCK_DGRAM)
                    config_text = path.read_text(encoding="utf-8") + (
                        f"traps:\n  listen: ['127.0.0.1:{trap_port}']\n"
                        f"  communities: [{TRAP_COMMUNITY}]\n")
                    path.write_text(config_text, encoding="utf-8")
                    config = load_config(path)
                    sender = TrapSender("127.0.0.1", trap_port, TRAP_COMMUNITY)
                polled = [d.id for d in config.inventory().devices.values()
                          if d.source != "checkin"]
                trials: list[dict[str, Any]] = []
                modes[mode] = trials
                async with SimFleet(config, telemetry_period=1.0, traps=sender) as fleet:
                    daemon = DaemonProcess(path, port, directory / "daemon.log")
                    try:
                        await daemon.wait_for(
                            "every polled device up",
                            lambda s, ids=polled: all(  # type: ignore[misc]
                                value(s, "commsmon_device_up", device=d) == 1 for d in ids),
                            within=max(60.0, 3 * args.interval))  # first polls spread over I
                        for n in range(args.trials):
                            site = UPS_VILLAGES[n % len(UPS_VILLAGES)]
                            since = len(hook.accepted)
                            cut = time.time()
                            await fleet.cut_mains(site)
                            firing = await _wait_note(hook, since, site, "firing", daemon, 120,
                                                      _power, resolved_too=True)
                            since = hook.accepted.index(firing) + 1
                            await fleet.restore_mains(site)
                            await _wait_note(hook, since, site, "resolved", daemon, 120, _power,
                                             resolved_too=True)
                            latency = firing.at - cut
                            print(f"{mode:7s} trial {n + 1:2d} {site}: power page after "
                                  f"{latency:5.2f} s", flush=True)
                            trials.append({"site": site, "latency_s": round(latency, 3)})
                    finally:
                        daemon.stop()
                        if sender is not None:
                            sender.close()
    finally:
        await hook.close()
    return modes


def main_mains(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="commsmon-latency-") as d:
        modes = asyncio.run(run_mains(args, Path(d)))
    goal = 2.0 + args.rule_for + args.group_wait
    poll_bound = args.interval + args.timeout + args.rule_for + args.group_wait + EVALUATE_EVERY
    medians = {m: statistics.median(t["latency_s"] for t in trials)
               for m, trials in modes.items()}
    print()
    print(f"UPS mains cut -> power-outage webhook (I={args.interval:g} s, "
          f"timeout={args.timeout:g} s, for={args.rule_for:g} s, "
          f"group_wait={args.group_wait:g} s)")
    print("| mode | trials | median s | max s | bound s |")
    print("|---|---|---|---|---|")
    for mode, trials in modes.items():
        values = [t["latency_s"] for t in trials]
        print(f"| {mode} | {len(values)} | {medians[mode]:.2f} | {max(values):.2f} | "
              f"{goal if mode == 'traps' else poll_bound:.2f} |")
    ratio = medians["traps"] / medians["polling"]
    met = medians["traps"] <= goal
    print(f"traps/polling median: {ratio:.2f}; goal with traps median <= {goal:.2f} s: "
          f"{'met' if met else 'NOT met'}")
    out = ROOT / "bench" / "results" / "latency-mains.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "interval_s": args.interval, "timeout_s": args.timeout, "for_s": args.rule_for,
        "group_wait_s": args.group_wait, "goal_s": goal, "poll_bound_s": poll_bound,
        "medians_s": medians, "traps_over_polling": round(ratio, 3), "goal_met": met,
        "trials": modes,
    }, indent=2) + "\n")
    print(f"wrote {out.relative_to(ROOT)}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--case", choices=("village-down", "mains-cut"), default="village-down")
    p.add_argument("--trials", type=int, default=20)
    p.add_argument("--interval", type=float, default=2.0, help="SNMP poll interval I, s")
    p.add_argument("--timeout", type=float, default=0.5, help="SNMP timeout, s")
    p.add_argument("--for", dest="rule_for", type=float, default=2.0,
                   help=f"{RULE} for F, s")
    p.add_argument("--group-wait", type=float, default=1.0, help="group_wait G, s")
    p.add_argument("--fresh-daemons", action="store_true",
                   help="restart the daemon each time the rotation comes back to a village")
    args = p.parse_args()
    if args.case == "mains-cut":
        main_mains(args)
        return

    with tempfile.TemporaryDirectory(prefix="commsmon-latency-") as d:
        result = asyncio.run(run(args, Path(d)))

    latencies = [t["latency_s"] for t in result["trials"]]
    median, worst = statistics.median(latencies), max(latencies)
    limit = bound(args.interval, args.timeout, args.rule_for, args.group_wait)
    met = median <= limit + 1.0
    print()
    print(f"village down -> webhook (I={args.interval:g} s, timeout={args.timeout:g} s, "
          f"down_after={DOWN_AFTER}, for={args.rule_for:g} s, group_wait={args.group_wait:g} s)")
    print("| trials | median s | max s | bound s | median/bound |")
    print("|---|---|---|---|---|")
    print(f"| {len(latencies)} | {median:.2f} | {worst:.2f} | {limit:.2f} | "
          f"{median / limit:.2f} |")
    print(f"target median <= bound + 1 s ({limit + 1:.2f} s): {'met' if met else 'NOT met'}")

    out = ROOT / "bench" / "results" / "latency.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "interval_s": args.interval, "timeout_s": args.timeout, "down_after": DOWN_AFTER,
        "for_s": args.rule_for, "group_wait_s": args.group_wait,
        "evaluate_every_s": EVALUATE_EVERY, "bound_s": limit,
        "median_s": median, "max_s": worst, "min_s": min(latencies),
        "median_over_bound": round(median / limit, 3), "target_s": limit + 1.0,
        "target_met": met, **result,
    }, indent=2) + "\n")
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
