"""Tests of the simulated fleet (commsmon.sim), with a net-snmp helper they share."""

from __future__ import annotations

import asyncio


async def snmpget(
    port: int, community: str, oid: str, *, version: str = "2c", wait: float = 1.0
) -> str | None:
    """Value of ``oid`` from 127.0.0.1:``port`` via net-snmp ``snmpget``, or None on timeout.

    The value is printed bare (``-Oqv``), TimeTicks as a number (``-Ot``) and
    OCTET STRINGs as hex (``-Ox``; decode with :func:`octets`),
    OIDs numerically (``-On``), e.g. ``"9A 99 59 41 "`` (quotes included), ``"1"``,
    ``"No Such Instance currently exists at this OID"``.
    Runs as a subprocess without blocking the event loop, so a relay in this
    process keeps working. ``wait`` is the timeout in seconds, no retries.
    """
    proc = await asyncio.create_subprocess_exec(
        "snmpget",
        f"-v{version}",
        "-c",
        community,
        "-Oqvtxn",
        "-t",
        str(wait),
        "-r",
        "0",
        f"127.0.0.1:{port}",
        oid,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    if proc.returncode != 0:
        if b"Timeout" in err:
            return None
        raise RuntimeError(f"snmpget failed: {err.decode(errors='replace')}")
    return out.decode().strip()


def octets(value: str | None) -> bytes:
    """Bytes of an OCTET STRING printed by :func:`snmpget` (hex, maybe quoted)."""
    assert value is not None, "no answer"
    return bytes.fromhex(value.strip('"'))
