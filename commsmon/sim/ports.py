"""Free ports on 127.0.0.1 for simulated agents, brokers and tests.

Picked below the kernel's ephemeral range (``net.ipv4.ip_local_port_range``,
32768-60999 by default): a port chosen by binding to 0 comes from that range,
and between choosing it and the service binding it any outgoing socket on the
host may take it (seen when a test's fleet of UDP links started beside a
daemon's thousand SNMP sockets).  Below the range only an explicit bind can
take a port.

A port is handed out once per process: two services configured before either
binds (a fleet's links, a trap listener) would otherwise be given the same
port by chance, and the second bind fails.  The generator is our own so that a
test seeding :mod:`random` cannot make the sequence repeat.
"""

from __future__ import annotations

import random
import socket

__all__ = ["free_port"]

LOW, HIGH = 20_000, 32_000  # below the ephemeral range on Linux defaults

_rng = random.Random()
_handed_out: set[tuple[int, int]] = set()


def free_port(kind: int = socket.SOCK_STREAM, host: str = "127.0.0.1") -> int:
    """A TCP (default) or UDP port on ``host`` that nothing holds now.

    Raises:
        OSError: no free port found in 200 tries.
    """
    for _ in range(200):
        port = _rng.randrange(LOW, HIGH)
        if (kind, port) in _handed_out:
            continue
        with socket.socket(socket.AF_INET, kind) as probe:
            try:
                probe.bind((host, port))
            except OSError:
                continue
        _handed_out.add((kind, port))
        return port
    raise OSError(f"no free port on {host} in {LOW}..{HIGH}")
