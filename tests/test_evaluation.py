"""The evaluation loop's pace, worked by hand (commsmon.evaluation.pause_after)."""

from __future__ import annotations

import pytest

from commsmon.evaluation import EVALUATE_LATEST, pause_after
from commsmon.outputs.http import STALE_AFTER

# cost (s, wall) -> pause before the next evaluation: 20 x cost, within [1 s, 5 s]
PACE = [
    (0.0, 1.0),      # 20 x 0 = 0 -> at least 1 s: a small fleet, every second
    (0.04, 1.0),     # 20 x 0.04 = 0.8 -> 1 s
    (0.05, 1.0),     # 20 x 0.05 = 1.0: the floor's edge
    (0.1, 2.0),      # 20 x 0.1 = 2.0
    (0.18, 3.6),     # 20 x 0.18 = 3.6: a 20 000-device province's steady evaluation
    (0.25, 5.0),     # 20 x 0.25 = 5.0: the edge
    (0.5, 5.0),      # 20 x 0.5 = 10.0 -> at most 5 s
    (1.85, 5.0),     # 20 x 1.85 = 37.0 -> 5 s (37 + 1.85 = 38.85 s: a stalled /healthz)
]


@pytest.mark.parametrize(("cost", "pause"), PACE)
def test_pause_after_an_evaluation(cost: float, pause: float) -> None:
    assert pause_after(cost) == pytest.approx(pause)


@pytest.mark.parametrize("cost", [0.0, 0.5, 1.0, 1.85, 4.9])
def test_a_snapshot_is_never_stalled_between_evaluations(cost: float) -> None:
    # The snapshot is stamped when an evaluation starts; the next is stamped after
    # the pause and the next evaluation's own cost (about the same).
    assert pause_after(cost) + cost < STALE_AFTER
    assert EVALUATE_LATEST == STALE_AFTER / 2
