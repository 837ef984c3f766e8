"""``commsmon run | check-config | demo``."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import Any

import structlog

from commsmon.config import Config, load_config
from commsmon.errors import ConfigError
from commsmon.log import configure_logging

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

    demo = sub.add_parser("demo", help="run the daemon on the simulated fleet")
    demo.add_argument("-c", "--config", type=Path, default=Path("config/demo.yaml"))
    demo.add_argument("--mqtt-port", type=int,
                      help="use the broker on 127.0.0.1:PORT instead of starting Mosquitto")
    demo.add_argument("--listen-port", type=int, help="override http.port")

    args = parser.parse_args(argv)
    configure_logging(args.log_level, None if args.log_format is None
                      else args.log_format == "json")
    try:
        if args.command == "check-config":
            return _check_config(args.config)
        config = _override_port(load_config(args.config), args.listen_port)
    except ConfigError as exc:
        print("\n".join(exc.problems), file=sys.stderr)
        return 2
    if args.command == "run":
        from commsmon.daemon import Daemon

        return _run_until_signal(Daemon(config).run())
    from commsmon.sim.demo import run_demo

    return _run_until_signal(run_demo(config, mqtt_port=args.mqtt_port))


def _check_config(path: Path) -> int:
    try:
        config = load_config(path)
    except ConfigError as exc:
        print("\n".join(exc.problems), file=sys.stderr)
        return 2
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
    except Exception:
        log.exception("commsmon failed")
        return 1
