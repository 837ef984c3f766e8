"""``commsmon run | check-config | demo``."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import time
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import Any

import structlog

from commsmon.config.load import load_config
from commsmon.config.settings import Config
from commsmon.errors import CommsmonError, ConfigError
from commsmon.log import configure_logging
from commsmon.memory import tune_gc, tune_malloc

__all__ = ["main"]

log = structlog.get_logger("commsmon")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``commsmon`` console script; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="commsmon",
        description="Monitors last-resort emergency communications kit over SNMP and MQTT.",
    )
    parser.add_argument("--log-level", default="info",
                        choices=["debug", "info", "warning", "error"])
    parser.add_argument("--log-format", choices=["json", "console"],
                        help="default: console on a terminal, JSON otherwise")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the daemon")
    run.add_argument("-c", "--config", required=True, type=Path, help="configuration file")
    run.add_argument("--listen-port", type=int, help="override http.port (0: any free port)")

    check = sub.add_parser("check-config", help="validate a configuration file and exit")
    check.add_argument("config", type=Path)

    def client(name: str, help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help)
        p.add_argument("-c", "--config", type=Path,
                       help="take the API address and token from this configuration")
        p.add_argument("--url", help="the daemon's address (default http://127.0.0.1:9470)")
        p.add_argument("--token", help="bearer token (default $COMMSMON_TOKEN or http.token)")
        return p

    status = client("status", "villages x scenarios and now: ready or not, endurance, outages")
    status.add_argument("--reasons", action="store_true", help="say why each is not ready")
    status.add_argument("--site", help="only this site")
    status.add_argument("--lang", choices=["zh", "en"],
                        help="language of the table (default: the daemon's)")
    checkin = client("checkin", "record a test call or roll-call answer for a device")
    checkin.add_argument("device")
    checkin.add_argument("result", choices=["ok", "failed"])
    checkin.add_argument("--note", default="")
    checkin.add_argument("--by", default=os.environ.get("USER", ""))
    checkin.add_argument("--battery", type=float, help="charge read off the device, 0-1")
    declare = client("declare", "declare an outage (roads cut) at a site")
    declare.add_argument("kind", choices=["road"])
    declare.add_argument("site")
    declare.add_argument("--until", help="ISO 8601 time it ends, e.g. 2026-12-01T18:00+08:00")
    declare.add_argument("--note", default="")
    declare.add_argument("--by", default=os.environ.get("USER", ""))
    clear = client("clear", "clear a declared outage")
    clear.add_argument("kind", choices=["road"])
    clear.add_argument("site")
    for name, help in (("ack", "acknowledge a site's alerts (stops escalation)"),
                       ("unack", "withdraw a site's acknowledgement"),
                       ("escalate", "take a site's next escalation step now")):
        act = client(name, help)
        act.add_argument("site", help="the site (monitor: the monitor's own alerts)")
        act.add_argument("--by", default=os.environ.get("USER", ""))

    drill = client("drill", "start, stop, list or show drills (演练)")
    drill.add_argument("action", choices=["start", "stop", "list", "show"])
    drill.add_argument("target", nargs="?",
                       help="stop: the site or drill id; show: the drill id")
    drill.add_argument("--site", help="start: the site drilled")
    drill.add_argument("--scenario", choices=["network", "road", "power", "all"])
    drill.add_argument("--until", help="ISO 8601 time it ends, e.g. 2026-12-01T18:00+08:00")
    drill.add_argument("--minutes", type=float, help="or: how long it runs")
    drill.add_argument("--note", default="")
    drill.add_argument("--by", default=os.environ.get("USER", ""))

    report = sub.add_parser("report", help="write the period's report (or a drill's "
                            "record) from the state directory's history: XLSX and PDF")
    report.add_argument("-c", "--config", required=True, type=Path, help="configuration file")
    report.add_argument("--period", help="2026-11, 2026-Q4 or 2026")
    report.add_argument("--drill", help="a drill's id: write its record instead")
    report.add_argument("--site", help="only this site")
    report.add_argument("--format", default="xlsx,pdf",
                        help="xlsx, pdf or both (default: xlsx,pdf)")
    report.add_argument("--lang", choices=["zh", "en"], help="default: the configuration's")
    report.add_argument("-o", "--output", type=Path, default=Path("."), help="directory")

    demo = sub.add_parser("demo", help="run the daemon on the simulated fleet")
    demo.add_argument("-c", "--config", type=Path, default=Path("config/demo.yaml"))
    demo.add_argument("--mqtt-port", type=int,
                      help="use the broker on 127.0.0.1:PORT instead of starting Mosquitto")
    demo.add_argument("--listen-port", type=int, help="override http.port")
    demo.add_argument("--no-drill", action="store_true",
                      help="do not play the mains-cut and network-cut drill")
    demo.add_argument("--drill-step", type=float, default=60.0,
                      help="seconds between the drill's steps (default 60)")

    args = parser.parse_args(argv)
    configure_logging(args.log_level, None if args.log_format is None
                      else args.log_format == "json")
    if args.command in ("status", "checkin", "declare", "clear", "ack", "unack", "escalate",
                        "drill"):
        from commsmon.cli.client import run_client

        return run_client(args)
    try:
        if args.command == "check-config":
            return _check_config(args.config)
        if args.command == "report":
            return _report(args)
        if args.command == "run":
            from commsmon.config.compile import load_setup
            from commsmon.daemon import Daemon

            tune_malloc()  # before the first thread and the first large load
            tune_gc()
            setup = load_setup(args.config).with_http_port(args.listen_port)
            return _run_until_signal(Daemon(setup).run())
        config = _override_port(load_config(args.config), args.listen_port)
    except ConfigError as exc:
        print("\n".join(exc.problems), file=sys.stderr)
        return 2
    from commsmon.sim.demo import run_demo

    return _run_until_signal(run_demo(config, mqtt_port=args.mqtt_port, drill=not args.no_drill,
                                      drill_step=max(args.drill_step, 1.0)))


def _report(args: argparse.Namespace) -> int:
    """Count the period's figures (or a drill's record) from the state directory and
    write the files asked for; prints each one's path and SHA-256."""
    from zoneinfo import ZoneInfo

    from commsmon.outputs.reports.writer import write_drill, write_report
    from commsmon.outputs.wording import Wording
    from commsmon.state.store import Store

    formats = [f.strip() for f in args.format.split(",") if f.strip()]
    if not formats or set(formats) - {"xlsx", "pdf"} or (args.period is None) == (
            args.drill is None):
        print("commsmon report: give --period or --drill, and --format xlsx, pdf or "
              "xlsx,pdf", file=sys.stderr)
        return 2
    config = load_config(args.config)
    tz = ZoneInfo(config.timezone)
    state = config.state_path() / "commsmon.db"
    if not state.is_file():
        print(f"commsmon: no history at {state} (has the daemon run with this "
              "configuration?)", file=sys.stderr)
        return 1
    store = Store(state)
    args.output.mkdir(parents=True, exist_ok=True)
    words = Wording(args.lang or config.language, tz)
    try:
        if args.drill:
            written = write_drill(store, config, config.inventory(), args.drill, words,
                                  formats, args.output, time.time())
        else:
            written = write_report(store, config, config.inventory(), args.period, args.site,
                                   words, formats, args.output, time.time())
    except (ValueError, KeyError, FileNotFoundError) as exc:
        print(f"commsmon: {exc}", file=sys.stderr)
        return 2
    finally:
        store.close()
    for path, digest in written:
        print(f"{path}  sha256 {digest}")
    return 0


def _check_config(path: Path) -> int:
    try:
        config = load_config(path)
    except ConfigError as exc:
        print("\n".join(exc.problems), file=sys.stderr)
        return 2
    for warning in config.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    inventory = config.inventory()
    print(f"{path}: ok: {len(inventory.sites)} sites, {len(inventory.devices)} devices, "
          f"{len(config.profiles)} profiles")
    return 0


def _override_port(config: Config, port: int | None) -> Config:
    if port is None:
        return config
    # model_copy skips validation on purpose: port 0 asks the OS for a free port.
    return config.model_copy(update={"http": config.http.model_copy(update={"port": port})})


def _run_until_signal(coro: Coroutine[Any, Any, None]) -> int:
    """Run ``coro`` until it ends or SIGTERM/SIGINT cancels it; 0 on a clean stop."""

    async def supervise() -> int:
        task = asyncio.ensure_future(coro)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, task.cancel)
        try:
            await task
        except asyncio.CancelledError:
            log.info("commsmon stopped")
            return 0
        return 0

    try:
        return asyncio.run(supervise())
    except Exception as exc:  # the last word before exit
        known = _commsmon_errors(exc)
        if known:
            for error in known:
                log.error("commsmon cannot run", error=str(error))
        else:
            log.exception("commsmon failed")
        return 1


def _commsmon_errors(exc: BaseException) -> list[CommsmonError]:
    """Our own errors inside ``exc`` (TaskGroups wrap them in ExceptionGroups)."""
    if isinstance(exc, CommsmonError):
        return [exc]
    if isinstance(exc, BaseExceptionGroup):
        return [e for sub in exc.exceptions for e in _commsmon_errors(sub)]
    return []
