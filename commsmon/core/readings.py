"""Reading names the core understands, whatever profile they come from.

Profiles may name readings freely; these names carry meaning for power
endurance and outage detection, so profiles use them for those facts.
"""

from __future__ import annotations

__all__ = [
    "CHARGE",
    "FUEL",
    "FUEL_LITRES",
    "INPUT_LINE_BADS",
    "LOAD",
    "MAINS_PRESENT",
    "OUTPUT_SOURCE",
    "RUNNING",
    "RUNTIME",
    "SUPPLY_TYPE",
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
