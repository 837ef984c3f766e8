"""Numbers as an officer reads them: rounded so that the decision shows.

Quantities that last (hours, litres, charge) are shown rounded *down* to one
decimal: 71.96 h reads "71.9", never "72.0" beside a 72 h target it does not
reach, and a figure never promises more than there is.  Hours of 100 or more
drop the decimal.  A trailing ".0" is dropped ("72", "96 %").
"""

from __future__ import annotations

import math

__all__ = ["decimal", "down", "hours_number", "percent_number", "rate_number"]

_EPSILON = 1e-6  # float noise: 107.85 / 1.5 is 71.8999...; it reads 71.9


def down(value: float, places: int = 1) -> float:
    """``value`` rounded down to ``places`` decimals (float noise forgiven)."""
    scale = 10**places
    return float(math.floor(value * scale + _EPSILON) / scale)


def decimal(value: float) -> str:
    """``value`` without a trailing ``.0``."""
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def hours_number(hours: float) -> str:
    """Hours as shown: ``∞``, ``57.6``, ``72``, ``109`` (rounded down)."""
    if math.isinf(hours):
        return "∞"
    return decimal(down(hours, 0 if hours >= 100 else 1))


def percent_number(ratio: float) -> str:
    """A ratio 0-1 as a percentage number, rounded down: ``74.9``, ``96``."""
    return decimal(down(ratio * 100, 1))


def rate_number(rate: float) -> str:
    """A consumption rate (litres per hour) to two decimals: ``1.5``, ``2``, ``1.08``."""
    return decimal(math.floor(rate * 100 + 0.5) / 100)  # half up: 1.075 reads 1.08
