"""The evaluation loop's pace, worked by hand (commsmon.evaluation.pause_after)."""

from __future__ import annotations

import pytest

from commsmon.evaluation import EVALUATE_LATEST, pause_after
from commsmon.outputs.http import STALE_AFTER

# cost (s, wall) -> pause before the next evaluation: 60 x cost, within [1 s, 5 s]
PACE = [
    (0.0, 1.0),      # 60 x 0 = 0 -> at least 1 s: a small fleet, every second
    (0.01, 1.0),     # 60 x 0.01 = 0.6 -> 1 s
    (1 / 60, 1.0),   # 60 x 1/60 = 1.0: the floor's edge
    (0.025, 1.5),    # 60 x 0.025 = 1.5
    (0.05, 3.0),     # 60 x 0.05 = 3.0
    (0.08, 4.8),     # 60 x 0.08 = 4.8
    (1 / 12, 5.0),   # 60 x 1/12 = 5.0: the cap's edge
    (0.143, 5.0),    # 60 x 0.143 = 8.58 -> 5 s: a 20 000-device province's evaluation
    (0.5, 5.0),      # 60 x 0.5 = 30.0 -> at most 5 s
    (1.85, 5.0),     # 60 x 1.85 = 111.0 -> 5 s (111 + 1.85 s: a stalled /healthz)
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
