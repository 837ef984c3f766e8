"""``promtool check metrics`` on an exposition. Not a test module.

Every metric is in base units (endurance too is in ``_seconds``), so promtool
may find nothing at all: any finding fails.
"""

from __future__ import annotations

import asyncio


async def promtool_problems(exposition: str) -> list[str]:
    """What promtool finds wrong; [] if clean."""
    proc = await asyncio.create_subprocess_exec(
        "promtool", "check", "metrics", stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await proc.communicate(exposition.encode())
    if proc.returncode not in (0, 3):  # 3: lint findings; anything else: could not parse
        return [f"promtool exited {proc.returncode}: {out.decode()}"]
    return [line for line in out.decode().splitlines() if line.strip()]
