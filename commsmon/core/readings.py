"""Reading names the core understands, whatever profile they come from.

Profiles may name readings freely; these names carry meaning for power
endurance and outage detection, so profiles use them for those facts.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "CHARGE",
    "ENUM_LABELS",
    "EVENT_COUNTERS",
    "FUEL",
    "FUEL_LITRES",
    "INPUT_LINE_BADS",
    "JUDGED",
    "LOAD",
    "MAINS_PRESENT",
    "OUTPUT_SOURCE",
    "RUNNING",
    "RUNTIME",
    "SUPPLY_TYPE",
    "USES",
    "Use",
]

CHARGE = "charge"  # battery charge, ratio 0-1
RUNTIME = "runtime"  # estimated battery runtime left, seconds (UPS)
FUEL = "fuel"  # fuel in the tank, ratio 0-1 of capacity
FUEL_LITRES = "fuel_litres"  # fuel in the tank, litres
LOAD = "load"  # generator load, ratio 0-1 of rated power
RUNNING = "running"  # generator running, bool
MAINS_PRESENT = "mains_present"  # mains seen by the generator controller, bool
OUTPUT_SOURCE = "output_source"  # UPS output source enum: "battery" means on battery
SUPPLY_TYPE = "supply_type"  # repeater supply enum: "battery" means mains lost
INPUT_LINE_BADS = "input_line_bads"  # UPS count of input out-of-tolerance events


@dataclass(frozen=True, slots=True)
class Use:
    """Something the core reads from a device of a kind.

    Attributes:
        readings: reading names of which at least one must be in the device's
            profile (alternatives, e.g. fuel in litres or as a ratio).
        purpose: what the core uses it for (``endurance``, ``mains loss``).
    """

    readings: tuple[str, ...]
    purpose: str


#: Every reading name above: all that the judgements (endurance, outages) read of a
#: device's values.  Other readings (a PDT terminal's RSSI) are shown, and may decide
#: the device's own state through its profile's rules, but judge nothing else.
JUDGED = frozenset({CHARGE, RUNTIME, FUEL, FUEL_LITRES, LOAD, RUNNING, MAINS_PRESENT,
                    OUTPUT_SOURCE, SUPPLY_TYPE, INPUT_LINE_BADS})

#: Counters whose going up is itself an event the outage logic reads (upsInputLineBads:
#: the input went out of tolerance since the poll before): the tracker notes when each
#: last rose, and no other reading's rises.
EVENT_COUNTERS = frozenset({INPUT_LINE_BADS})

#: What the core's power and outage logic reads, by device kind: a profile for a
#: device of that kind without it silently turns that logic off, so the
#: configuration check refuses it (commsmon.config.load).
USES: dict[str, tuple[Use, ...]] = {
    "ups": (Use((OUTPUT_SOURCE,), "mains loss"), Use((RUNTIME, CHARGE), "endurance")),
    "generator": (Use((FUEL_LITRES, FUEL), "endurance"), Use((RUNNING,), "mains loss"),
                  Use((MAINS_PRESENT,), "mains loss")),
}

#: Enum readings whose label the core compares against (outages.py): a profile that
#: maps such a reading without the label would never report the condition.
ENUM_LABELS: dict[str, str] = {OUTPUT_SOURCE: "battery", SUPPLY_TYPE: "battery"}
