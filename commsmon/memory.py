"""Memory settings for a daemon that builds large structures periodically: glibc's
malloc and CPython's cyclic garbage collector."""

from __future__ import annotations

import ctypes
import ctypes.util
import gc

__all__ = ["GC_THRESHOLDS", "settle", "tune_gc", "tune_malloc"]

_M_MMAP_THRESHOLD = -3  # mallopt parameters, <malloc.h>
_M_ARENA_MAX = -8
MMAP_THRESHOLD = 128 * 1024  # bytes: glibc's own starting value, now fixed
ARENA_MAX = 2


def tune_malloc() -> bool:
    """Keep freed large buffers from staying resident; ``False`` if not on glibc.

    At province scale each scrape renders about 40 MB of exposition text and
    each evaluation a snapshot of tens of MB.  glibc raises its mmap threshold
    to the size of the first large block freed (up to 32 MiB), so every later
    one comes from the heap and its pages stay with the process, and each
    thread (``asyncio.to_thread``) grows an arena of its own.  Fixing the
    threshold and capping arenas, measured with 20 000 devices after three
    scrapes: RSS 278 MiB instead of 401 MiB.  Call before threads start.
    """
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl, macOS: no mallopt
        return False
    return bool(mallopt(_M_ARENA_MAX, ARENA_MAX)) and bool(
        mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD))


#: Objects allocated (net of those freed) before a young collection, and young
#: collections before each older one; CPython's defaults are (700, 10, 10).
GC_THRESHOLDS = (50_000, 10, 10)


def tune_gc() -> None:
    """Collect cyclic garbage less often than CPython's defaults.

    An evaluation at province scale makes a few hundred thousand objects that
    live until the next one (statuses, verdicts, alert facts).  With a young
    collection every 700 allocations they all reach the oldest generation, and
    full collections, each scanning the whole heap (about a million objects,
    0.3 s at 20 000 devices) ran every few evaluations: 7.9 s of the 16 s of
    CPU that twelve evaluations and their alert rules took, in one process.
    With young collections every 50 000 allocations, 2.5 s of 11.6 s.  Cycles
    are still collected; reference counting frees everything else at once, as
    before.  Also lets :func:`settle` freeze the heap.
    """
    global _tuned
    gc.set_threshold(*GC_THRESHOLDS)
    _tuned = True


_tuned = False


def settle() -> None:
    """Take what the daemon holds for good out of the collector's way, once it runs
    (and again after each reload); nothing unless :func:`tune_gc` was called.

    At start a province's daemon holds a million objects the collector tracks (the
    setup and inventory, the fleet's trackers, the pages' templates, the SNMP
    stack), and every full collection scanned all of them: about 1 s each, every
    one to two minutes at 20 000 devices (bench/daemon.py), the event loop stopped
    meanwhile.  Frozen (``gc.freeze``) they are never scanned, and still freed when
    nothing refers to them; a cycle among them is found only once they are
    unfrozen, as each reload does before it collects and freezes again.
    """
    if _tuned:
        gc.unfreeze()
        gc.collect()
        gc.freeze()
