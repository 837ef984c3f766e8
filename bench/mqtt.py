"""A 200 000-message MQTT burst from 1 000 devices: commsmon's ingest beside three peers.

One real mosquitto (``commsmon.sim.broker.Mosquitto``, max_queued_messages
100000) on 127.0.0.1.  For each consumer in turn (one at a time, a fresh burst
each, so they never compete for the CPU) the consumer is started and
subscribed, then the burst is published: 1 000 simulated devices (the genset
gateways, satphone docks and PDT terminals of 334 synthetic villages) x 200
telemetry messages each, interleaved, QoS 1, from several aiomqtt clients in
this process, as fast as the broker takes them.  Then we wait until the
consumer's count stops rising (bounded) and record:

* processed: messages the consumer handled; lost = 200 000 - processed;
* msgs/s (wall): processed / seconds from its first to its last message;
* msgs/CPU-s: processed / CPU seconds (utime + stime from /proc) the consumer
  process used from just before the burst until its count settled.

Consumers:

1. commsmon: ``MqttSource`` with routes for the 1 000 telemetry topics, its
   sink calling ``Fleet.observe`` (ingest into state), in a child process.
2. ``mosquitto_sub -t 'province/#' -q 1 -C 200000`` (the raw limit; its stdout
   is counted line by line by a thread here).
3. hikhvar/mqtt2prometheus (Debian ``prometheus-mqtt-exporter``): one JSON
   field (fuel_pct), QoS 1; counted by its ``received_messages`` counter.
4. kpetremann/mqtt-exporter (PyPI, in /tmp/mqtt-exporter-venv); counted by
   its ``mqtt_message_total`` counter.  It subscribes at QoS 0 (not
   configurable), so the broker may drop for it what it keeps for the others.

Scrape-counted peers are polled every 0.5 s, so their wall time has that
resolution and their CPU includes serving those scrapes.  Messages mosquitto
drops for a slow subscriber are reported from its log.

Writes bench/results/mqtt.json.  Run: .venv/bin/python bench/mqtt.py
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiomqtt
from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from commsmon.config.load import load_config  # noqa: E402
from commsmon.sim.broker import Mosquitto  # noqa: E402
from commsmon.sim.scale import province  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")
DEVICES = 1000
PER_DEVICE = 200
TOTAL = DEVICES * PER_DEVICE
PUBLISHERS = 8
WINDOW = 200  # QoS 1 publishes in flight per publisher client
SETTLE_S = 5.0  # count unchanged this long after publishing = done
MAX_WAIT_S = 180.0
ME_VENV = Path("/tmp/mqtt-exporter-venv")

CHILD = r"""
import asyncio, json, sys, time
sys.path.insert(0, sys.argv[2])
from prometheus_client import REGISTRY
from commsmon.config.load import load_config
from commsmon.core.fleet import Fleet
from commsmon.sources.mqtt import MqttSource, routes_from_config

config = load_config(sys.argv[1])
topics = set(json.loads(sys.argv[3]))
routes = {t: r for t, r in routes_from_config(config).items() if t in topics}
fleet = Fleet(config.inventory(), time.time())
state = {"n": 0, "unknown": 0, "first": None, "last": None}

def sink(obs):
    if fleet.observe(obs):
        state["n"] += 1
    else:
        state["unknown"] += 1
    now = time.time()
    if state["first"] is None:
        state["first"] = now
    state["last"] = now

def on_link(up):
    if up:
        print("BENCH", json.dumps({"ready": True}), flush=True)

async def report():
    while True:
        await asyncio.sleep(0.25)
        results = {}
        for m in REGISTRY.collect():
            if m.name == "commsmon_mqtt_messages":
                for s in m.samples:
                    if s.name.endswith("_total"):
                        result = s.labels["result"]
                        results[result] = results.get(result, 0) + s.value
        print("BENCH", json.dumps({**state, "results": results}), flush=True)

async def main():
    source = MqttSource(config.mqtt, routes, sink, on_link)
    await asyncio.gather(source.run(), report())

asyncio.run(main())
"""


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def scrape_sum(url: str, metric: str) -> float:
    with urllib.request.urlopen(url, timeout=5) as resp:
        text = resp.read().decode()
    total = 0.0
    for line in text.splitlines():
        if line.startswith(metric + "{") or line.startswith(metric + " "):
            total += float(line.rsplit(" ", 1)[1]) if "}" not in line else float(
                line.rsplit("}", 1)[1].split()[0])
    return total


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


# --------------------------------------------------------------------------- devices


def devices_and_config(tmp: Path, port: int) -> tuple[Path, list[tuple[str, str]]]:
    """Write the synthetic province; return its path and (telemetry topic, profile) x 1000."""
    villages = -(-DEVICES // 3)
    data = province(villages, endpoints=[("127.0.0.1", 1, "x")], mqtt_port=port)
    path = tmp / "province.yaml"
    with path.open("w", encoding="utf-8") as f:
        YAML().dump(data, f)
    config = load_config(path)
    devices: list[tuple[str, str]] = []
    for site, device in config.devices():
        _, telemetry = config.topics(site, device)
        if telemetry and device.profile:
            devices.append((telemetry, device.profile))
    return path, devices[:DEVICES]


def payloads(profile: str, seed: int, ts: int) -> list[bytes]:
    """A few telemetry documents in the profile's JSON shape (see config/profiles)."""
    out = []
    for k in range(8):
        v = (seed * 7 + k * 13) % 100
        if profile == "genset-gateway":
            doc: dict[str, Any] = {"ts": ts, "running": k % 2 == 0, "mains": k % 3 != 0,
                                   "fuel_pct": v, "fuel_l": round(v * 2.0, 1),
                                   "battery_v": f"{12 + v / 100:.1f} V",
                                   "load_pct": (v * 3) % 100, "alarms": 0}
        elif profile == "satphone-dock":
            doc = {"ts": ts, "registered": True, "signal_bars": k % 6, "battery_pct": v}
        else:
            doc = {"ts": ts, "registered": True, "rssi_dbm": -80 - v % 30, "battery_pct": v}
        out.append(json.dumps(doc).encode())
    return out


async def publish_burst(port: int, devices: list[tuple[str, str]], tag: str) -> dict[str, float]:
    """1 000 devices x 200 messages, QoS 1, interleaved, from PUBLISHERS aiomqtt clients."""
    ts = int(time.time())
    quiet = logging.getLogger("bench.publisher")  # not "There are N pending publish calls"
    quiet.setLevel(logging.ERROR)
    docs = [(topic, payloads(profile, i, ts)) for i, (topic, profile) in enumerate(devices)]

    async def one(n: int) -> None:
        mine = docs[n::PUBLISHERS]
        async with aiomqtt.Client("127.0.0.1", port, identifier=f"bench-pub-{tag}-{n}",
                                  logger=quiet,
                                  max_inflight_messages=WINDOW,
                                  max_queued_outgoing_messages=0) as client:
            pending: list[Any] = []
            for r in range(PER_DEVICE):
                for topic, variants in mine:
                    pending.append(client.publish(topic, variants[r % 8], qos=1))
                    if len(pending) >= WINDOW:
                        await asyncio.gather(*pending)
                        pending = []
            await asyncio.gather(*pending)

    w0, c0 = time.perf_counter(), time.process_time()
    await asyncio.gather(*(one(n) for n in range(PUBLISHERS)))
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    return {"publish_wall_s": wall, "publish_msgs_per_s": TOTAL / wall, "publisher_cpu_s": cpu}


# --------------------------------------------------------------------------- consumers


class Consumer:
    """A consumer process and a way to read how many messages it has handled."""

    name = ""
    note = ""

    def __init__(self) -> None:
        self.proc: subprocess.Popen[bytes] | None = None
        self.count = 0
        self.first: float | None = None
        self.last: float | None = None
        self.extra: dict[str, Any] = {}
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def available(self) -> str | None:
        """Why it cannot run, or None."""
        return None

    def start(self, port: int, tmp: Path) -> None:
        raise NotImplementedError

    def ready(self) -> bool:
        raise NotImplementedError

    def _spawn(self, target: Callable[[], None]) -> None:
        t = threading.Thread(target=target, daemon=True)
        t.start()
        self._threads.append(t)

    def _seen(self, count: float) -> None:
        now = time.time()
        if count > self.count:
            if self.first is None:
                self.first = now
            self.last = now
            self.count = int(count)

    def _poll_metric(self, url: str, metric: str) -> None:
        def loop() -> None:
            while not self._stop.is_set():
                with contextlib.suppress(OSError, ValueError):
                    self._seen(scrape_sum(url, metric))
                self._stop.wait(0.5)
        self._spawn(loop)

    def stop(self) -> None:
        self._stop.set()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for t in self._threads:
            t.join(2)


class Commsmon(Consumer):
    name = "commsmon"
    note = "MqttSource -> Fleet.observe, 1000 telemetry routes, child process"

    def __init__(self, config_path: Path, topics: list[str]) -> None:
        super().__init__()
        self.config_path = config_path
        self.topics = topics
        self._ready = False

    def start(self, port: int, tmp: Path) -> None:
        script = tmp / "commsmon_child.py"
        script.write_text(CHILD)
        self.proc = subprocess.Popen(
            [sys.executable, str(script), str(self.config_path), str(ROOT),
             json.dumps(self.topics)],
            stdout=subprocess.PIPE, stderr=(tmp / "commsmon_child.log").open("wb"), cwd=ROOT)

        def read() -> None:
            assert self.proc is not None and self.proc.stdout is not None
            for line in self.proc.stdout:  # structlog writes to stdout too
                if not line.startswith(b"BENCH "):
                    continue
                msg = json.loads(line[6:])
                if msg.get("ready"):
                    self._ready = True
                    continue
                self.count = msg["n"]
                self.first, self.last = msg["first"], msg["last"]
                self.extra = {"unknown_device": msg["unknown"], "mqtt_messages": msg["results"]}
        self._spawn(read)

    def ready(self) -> bool:
        return self._ready


class MosquittoSub(Consumer):
    name = "mosquitto_sub"
    note = "mosquitto_sub -t 'province/#' -q 1 -C 200000, stdout lines counted"

    def available(self) -> str | None:
        if shutil.which("mosquitto_sub"):
            return None
        return "mosquitto_sub not found (apt-get install mosquitto-clients)"

    def start(self, port: int, tmp: Path) -> None:
        self.proc = subprocess.Popen(
            ["mosquitto_sub", "-h", "127.0.0.1", "-p", str(port), "-i", "bench-mosquitto-sub",
             "-t", "province/#", "-q", "1", "-C", str(TOTAL)],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, bufsize=0)
        self._t0 = time.monotonic()

        def read() -> None:
            assert self.proc is not None and self.proc.stdout is not None
            n = 0
            while chunk := self.proc.stdout.read(1 << 16):
                n += chunk.count(b"\n")
                self._seen(n)
        self._spawn(read)

    def ready(self) -> bool:
        # No subscribed signal without -d (which would add output per message); C
        # client: connected and subscribed well within a second.
        return time.monotonic() - self._t0 > 1.5


class Mqtt2Prometheus(Consumer):
    name = "mqtt2prometheus"
    note = "Debian prometheus-mqtt-exporter, topic province/+/+/telemetry, fuel_pct, QoS 1"
    binary = "/usr/bin/prometheus-mqtt-exporter"

    def available(self) -> str | None:
        if os.access(self.binary, os.X_OK):
            return None
        return "not installed: apt-get install prometheus-mqtt-exporter"

    def start(self, port: int, tmp: Path) -> None:
        conf = tmp / "mqtt2prometheus.yaml"
        conf.write_text(
            "mqtt:\n"
            f"  server: tcp://127.0.0.1:{port}\n"
            "  client_id: bench-mqtt2prometheus\n"
            "  topic_path: province/+/+/telemetry\n"
            '  device_id_regex: "province/[^/]+/(?P<deviceid>[^/]+)/telemetry"\n'
            "  qos: 1\n"
            "cache:\n  timeout: -1\n"
            "metrics:\n"
            "  - prom_name: fuel_pct\n    mqtt_name: fuel_pct\n"
            "    help: genset fuel percent\n    type: gauge\n")
        self.http = free_port()
        self.proc = subprocess.Popen(
            [self.binary, "-config", str(conf), "-listen-address", "127.0.0.1",
             "-listen-port", str(self.http), "-log-level", "warn"],
            stdout=(tmp / "m2p.log").open("wb"), stderr=subprocess.STDOUT)
        self.url = f"http://127.0.0.1:{self.http}/metrics"
        self._t0 = time.monotonic()

    def ready(self) -> bool:
        try:
            up = scrape_sum(self.url, "mqtt2prometheus_connected") >= 1
        except OSError:
            return False
        if up and not self._threads:
            self._up_at = time.monotonic()
            self._poll_metric(self.url, "received_messages")
        # connected; the SUBSCRIBE follows the CONNACK at once, give it a moment
        return up and time.monotonic() - self._up_at > 1.0


class MqttExporter(Consumer):
    name = "mqtt-exporter"
    note = "kpetremann/mqtt-exporter (PyPI), MQTT_TOPIC=province/#, subscribes QoS 0"

    def available(self) -> str | None:
        if (ME_VENV / "bin" / "mqtt-exporter").exists():
            return None
        return (f"not installed: python3 -m venv {ME_VENV} && "
                f"{ME_VENV}/bin/pip install mqtt-exporter")

    def start(self, port: int, tmp: Path) -> None:
        self.http = free_port()
        env = {**os.environ, "MQTT_ADDRESS": "127.0.0.1", "MQTT_PORT": str(port),
               "MQTT_TOPIC": "province/#", "MQTT_CLIENT_ID": "bench-mqtt-exporter",
               "PROMETHEUS_ADDRESS": "127.0.0.1", "PROMETHEUS_PORT": str(self.http),
               "LOG_LEVEL": "INFO"}
        self.log = tmp / "mqtt-exporter.log"
        self.proc = subprocess.Popen([str(ME_VENV / "bin" / "mqtt-exporter")], env=env,
                                     stdout=self.log.open("wb"), stderr=subprocess.STDOUT)
        self.url = f"http://127.0.0.1:{self.http}/metrics"

    def ready(self) -> bool:
        if "subscribing to" not in self.log.read_text(errors="replace"):
            return False
        if not self._threads:
            self._up_at = time.monotonic()
            self._poll_metric(self.url, "mqtt_message_total")
        return time.monotonic() - self._up_at > 1.0


# --------------------------------------------------------------------------- run


def broker_drops(log_file: Path, offset: int) -> tuple[list[str], int]:
    text = log_file.read_text(errors="replace")
    lines = [ln for ln in text[offset:].splitlines() if "dropped" in ln.lower()]
    return lines, len(text)


async def measure(consumer: Consumer, broker: Mosquitto, devices: list[tuple[str, str]],
                  tmp: Path, log_offset: int) -> tuple[dict[str, Any], int]:
    row: dict[str, Any] = {"consumer": consumer.name, "how": consumer.note}
    consumer.start(broker.port, tmp)
    assert consumer.proc is not None
    pid = consumer.proc.pid
    try:
        deadline = time.monotonic() + 30
        while not consumer.ready():
            if consumer.proc.poll() is not None:
                raise RuntimeError(f"{consumer.name} exited with {consumer.proc.returncode}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{consumer.name} did not subscribe within 30 s")
            await asyncio.sleep(0.1)
        cpu0 = cpu_seconds(pid)
        row.update(await publish_burst(broker.port, devices, consumer.name))
        # wait until the count stops rising (or all arrived, or the bound)
        end = time.monotonic() + MAX_WAIT_S
        last_n, since = -1, time.monotonic()
        cpu1 = cpu0
        while time.monotonic() < end:
            # Not reaped until stop(): a zombie's /proc stat still holds its final CPU
            # times (mosquitto_sub exits once -C messages have arrived).
            cpu1 = cpu_seconds(pid)
            n = consumer.count
            if n != last_n:
                last_n, since = n, time.monotonic()
            elif n >= TOTAL or time.monotonic() - since > SETTLE_S:
                break
            await asyncio.sleep(0.2)
        else:
            row["note"] = f"still rising after {MAX_WAIT_S:.0f} s"
        cpu = cpu1 - cpu0
        n = consumer.count
        wall = (consumer.last - consumer.first) if consumer.first and consumer.last else 0.0
        row.update({
            "processed": n, "lost": TOTAL - n,
            "wall_s": wall, "cpu_s": cpu,
            "msgs_per_s": n / wall if wall > 0 else None,
            "msgs_per_cpu_s": n / cpu if cpu > 0 else None,
            **consumer.extra,
        })
    finally:
        consumer.stop()
    await asyncio.sleep(0.5)
    drops, log_offset = broker_drops(broker.log_file, log_offset)
    row["broker_drop_warnings"] = drops
    return row, log_offset


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", help="consumer names to run (default: all)")
    args = parser.parse_args()

    results: dict[str, Any] = {"messages": TOTAL, "devices": DEVICES, "per_device": PER_DEVICE,
                               "publishers": PUBLISHERS, "qos": 1, "mode": "one consumer at a "
                               "time, a fresh burst for each", "cpus": os.cpu_count(),
                               "rows": [], "skipped": {}}
    with tempfile.TemporaryDirectory(prefix="bench-mqtt-") as tmpdir:
        tmp = Path(tmpdir)
        async with Mosquitto() as broker:
            config_path, devices = devices_and_config(tmp, broker.port)
            assert len(devices) == DEVICES, len(devices)
            topics = [t for t, _ in devices]
            consumers: list[Consumer] = [MosquittoSub(), Commsmon(config_path, topics),
                                         Mqtt2Prometheus(), MqttExporter()]
            offset = 0
            for c in consumers:
                if args.only and c.name not in args.only:
                    continue
                why = c.available()
                if why:
                    print(f"{c.name}: skipped: {why}", flush=True)
                    results["skipped"][c.name] = why
                    continue
                print(f"{c.name}: burst of {TOTAL} ...", flush=True)
                try:
                    row, offset = await measure(c, broker, devices, tmp, offset)
                except Exception as exc:  # one peer failing must not stop the others
                    print(f"{c.name}: not measured: {exc}", flush=True)
                    results["skipped"][c.name] = str(exc)
                    continue
                if c.name == "commsmon":
                    # its session is persistent (clean_session=False): end it, or the
                    # broker keeps queueing the later bursts for it
                    async with aiomqtt.Client("127.0.0.1", broker.port,
                                              identifier="commsmon-bench", clean_session=True):
                        pass
                print(f"  processed {row['processed']}, published at "
                      f"{row['publish_msgs_per_s']:.0f} msgs/s, broker drop warnings: "
                      f"{len(row['broker_drop_warnings'])}", flush=True)
                results["rows"].append(row)

    rows = {r["consumer"]: r for r in results["rows"]}
    print()
    print(f"{TOTAL} messages, {DEVICES} devices x {PER_DEVICE}, QoS 1, {PUBLISHERS} aiomqtt "
          f"publishers, one consumer at a time, {os.cpu_count()} CPUs")
    print(f"{'consumer':<16}{'processed':>10}{'lost':>8}{'msgs/s wall':>13}{'msgs/CPU-s':>12}"
          f"{'pub msgs/s':>12}  broker drops")
    for r in results["rows"]:
        def f(x: float | None) -> str:
            return f"{x:,.0f}" if x else "-"
        drops = r["broker_drop_warnings"]
        print(f"{r['consumer']:<16}{r['processed']:>10}{r['lost']:>8}{f(r['msgs_per_s']):>13}"
              f"{f(r['msgs_per_cpu_s']):>12}{f(r['publish_msgs_per_s']):>12}  "
              f"{len(drops)} warning(s)" + (f": {drops[0][-90:]}" if drops else ""))
    for name, why in results["skipped"].items():
        print(f"{name:<16} not measured: {why}")
    for r in results["rows"]:
        r["kept_up"] = bool(r["msgs_per_s"] and r["lost"] == 0
                            and r["msgs_per_s"] >= 0.9 * r["publish_msgs_per_s"])
    kept = [r["consumer"] for r in results["rows"] if r["kept_up"]]
    if kept:
        print(f"\nkept up with the publishers (wall rate = publish rate, not their ceiling; "
              f"compare msgs/CPU-s): {', '.join(kept)}")
    if results["rows"] and not any(r["broker_drop_warnings"] for r in results["rows"]):
        print("mosquitto (max_queued_messages 100000) logged no dropped messages")
    ratios: dict[str, dict[str, float | None]] = {}
    cm = rows.get("commsmon")
    if cm:
        print("\nratios commsmon / peer (msgs/s wall, msgs/CPU-s; > 1 = commsmon faster):")
        for peer in ("mqtt-exporter", "mqtt2prometheus", "mosquitto_sub"):
            p = rows.get(peer)
            if not p:
                continue
            ratio = {k: (cm[k] / p[k] if cm[k] and p[k] else None)
                     for k in ("msgs_per_s", "msgs_per_cpu_s")}
            ratios[f"commsmon/{peer}"] = ratio
            print(f"  commsmon/{peer:<16} "
                  + "  ".join(f"{v:.2f}" if v else "-" for v in ratio.values()))
        if cm.get("mqtt_messages"):
            print(f"  commsmon mqtt_messages_total by result: {cm['mqtt_messages']}")
    results["ratios"] = ratios
    out = ROOT / "bench" / "results" / "mqtt.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"\nwrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    asyncio.run(main())
