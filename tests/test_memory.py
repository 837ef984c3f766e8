"""The daemon's collector settings (commsmon.memory), in a child interpreter: freezing the
heap would last for the rest of the test session."""

from __future__ import annotations

import subprocess
import sys

CHILD = """
import gc, weakref
from commsmon.memory import GC_THRESHOLDS, settle, tune_gc

class Node:
    pass

settle()
print("untuned", gc.get_freeze_count(), gc.get_threshold() == GC_THRESHOLDS)
tune_gc()
held = Node()
held.me = held                      # a cycle the daemon still holds
ref = weakref.ref(held)
settle()                            # the daemon runs
print("settled", gc.get_freeze_count() > 0, gc.get_threshold() == GC_THRESHOLDS)
del held                            # a reload lets it go: garbage, but frozen
gc.collect()
print("collected", ref() is not None)
settle()                            # the reload settles: unfrozen, found
print("reloaded", ref() is None)
young = Node()
young.me = young
ref = weakref.ref(young)
del young                           # made after the freeze: collected as ever
gc.collect()
print("young", ref() is None)
"""


def test_settle_freezes_only_a_tuned_daemon_and_a_reload_finds_frozen_cycles() -> None:
    """Untuned (tests, the demo): nothing frozen, CPython's thresholds.  Tuned (commsmon
    run): settle freezes what is held; a cycle let go among the frozen is not collected
    until the next settle (a reload's), which finds it; one made after is collected."""
    out = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True,
                         check=True).stdout.split("\n")
    assert out[:5] == ["untuned 0 False", "settled True True", "collected True",
                       "reloaded True", "young True"]
