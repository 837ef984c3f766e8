"""The evaluation loop's pace, worked by hand (commsmon.evaluation.pause_after)."""

from __future__ import annotations

import pytest

from commsmon.evaluation import EVALUATE_LATEST, pause_after
from commsmon.outputs.http import STALE_AFTER

# cost (s, wall) -> pause before the next evaluation: 40 x cost, within [1 s, 5 s]
PACE = [
    (0.0, 1.0),      # 40 x 0 = 0 -> at least 1 s: a small fleet, every second
    (0.02, 1.0),     # 40 x 0.02 = 0.8 -> 1 s
    (0.025, 1.0),    # 40 x 0.025 = 1.0: the floor's edge
    (0.05, 2.0),     # 40 x 0.05 = 2.0
    (0.1, 4.0),      # 40 x 0.1 = 4.0
    (0.125, 5.0),    # 40 x 0.125 = 5.0: the edge
    (0.163, 5.0),    # 40 x 0.163 = 6.52 -> 5 s: a 20 000-device province's evaluation
    (0.5, 5.0),      # 40 x 0.5 = 20.0 -> at most 5 s
    (1.85, 5.0),     # 40 x 1.85 = 74.0 -> 5 s (74 + 1.85 = 75.85 s: a stalled /healthz)
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
