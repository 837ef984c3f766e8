"""``promtool check metrics`` on an exposition. Not a test module.

The endurance metrics are named in hours, as the readiness issue and
DESIGN.md §5 ask ("_hours only where hours is the natural unit of
endurance"); promtool's linter prefers seconds for every duration and says so.
That one finding, for exactly those metrics, is accepted; anything else fails.
"""

from __future__ import annotations

import asyncio

HOURS_BY_DESIGN = (
    "commsmon_device_endurance_hours",
    "commsmon_site_scenario_endurance_hours",
    "commsmon_site_target_hours",
)


async def promtool_problems(exposition: str) -> list[str]:
    """What promtool finds wrong, less the accepted hours finding; [] if clean."""
    proc = await asyncio.create_subprocess_exec(
        "promtool", "check", "metrics", stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await proc.communicate(exposition.encode())
    if proc.returncode not in (0, 3):  # 3: lint findings; anything else: could not parse
        return [f"promtool exited {proc.returncode}: {out.decode()}"]
    accepted = tuple(f'{m} use base unit "seconds" instead of "hours"' for m in HOURS_BY_DESIGN)
    return [line for line in out.decode().splitlines() if line.strip() and line not in accepted]
