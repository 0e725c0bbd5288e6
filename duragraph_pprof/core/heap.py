"""The exact heap profile: live blocks from tracemalloc, grouped by traceback (the sampled one,
the default, is in sampled_heap.py; make_heap picks).

tracemalloc measures what is live now (blocks allocated and not yet freed), exactly and
unsampled. It keeps no count of blocks that were allocated and freed, so there is no honest
`alloc_*` value to report: both `heap` and `allocs` carry in-use values (see the README).
"""

from __future__ import annotations

import gc
import threading
import time
import tracemalloc

from .frames import profiler_file
from .snapshot import Profile, Sample, ValueType
from .source import resolve

_COUNT_TTL = 1.0  # seconds an index page may reuse the record count
INUSE_OBJECTS = ValueType("inuse_objects", "count")
INUSE_SPACE = ValueType("inuse_space", "bytes")
SPACE = ValueType("space", "bytes")


class Heap:
    """The exact heap (DURAGRAPH_PPROF_HEAP=exact): every live block, by tracemalloc."""

    rate = 1  # unsampled
    comment = "tracemalloc: live blocks only, unsampled; values are in-use objects and bytes"

    def __init__(self, enabled: bool, depth: int) -> None:
        self.enabled = enabled
        self.depth = depth
        self._started_here = False
        # one snapshot at a time: each holds a copy of every trace, which is large
        self._lock = threading.Lock()
        self._count: tuple[float, int] = (float("-inf"), 0)
        self.why_off = ""

    @property
    def mode(self) -> str:
        return "exact" if self.enabled else "off"

    def start(self) -> None:
        if self.enabled and not tracemalloc.is_tracing():
            tracemalloc.start(self.depth)
            self._started_here = True

    def stop(self) -> None:
        if self._started_here:
            self._started_here = False
            tracemalloc.stop()

    @property
    def tracing(self) -> bool:
        return tracemalloc.is_tracing()

    def stats(self) -> tuple[int, int] | None:
        """(current, peak) traced bytes, or None when tracing is off."""
        return tracemalloc.get_traced_memory() if self.tracing else None

    def record_count(self) -> int:
        """Distinct tracebacks, Go's count for heap and allocs (heap and allocs share one)."""
        if not self.tracing:
            return 0
        taken, count = self._count
        if time.monotonic() - taken > _COUNT_TTL:
            count = len(self._groups())
            self._count = (time.monotonic(), count)
        return count

    def profile(self, collect_garbage: bool = False) -> Profile | None:
        if not self.tracing:
            return None
        if collect_garbage:
            gc.collect()
        now = time.time_ns()
        samples = []
        for traceback, (count, size) in self._groups().items():
            stack = tuple(resolve(filename, line) for filename, line in traceback)
            samples.append(Sample(stack, (count, size)))
        samples.sort(key=lambda s: tuple((f.function, f.line) for f in s.stack))
        return Profile((INUSE_OBJECTS, INUSE_SPACE), SPACE, 1, tuple(samples), now)

    def _groups(self) -> dict[tuple, list[int]]:
        # No arithmetic per trace: while tracemalloc traces, every int a `+=` creates is a traced
        # allocation, which costs more than the rest of the loop. Appending existing size
        # objects allocates only when a list grows; len() and sum() then run in C.
        sizes: dict[tuple, list[int]] = {}
        with self._lock:
            for _domain, size, traceback, _total in tracemalloc._get_traces():
                found = sizes.get(traceback)
                if found is None:
                    found = sizes[traceback] = []
                found.append(size)
        return {traceback: [len(found), sum(found)] for traceback, found in sizes.items()
                if not _ours(traceback)}  # never our own


def _ours(traceback: tuple) -> bool:
    """The profiler's own allocations, which never appear."""
    return any(profiler_file(f) for f, _ in traceback)


def make_heap(mode: str, depth: int, rate: int):
    """The heap profile the configuration asks for. Sampled needs the native extension; where it
    did not load, the heap is off and says why (tracemalloc, the exact mode, is far dearer to turn
    on behind someone's back)."""
    if mode == "sampled":
        from .native import UNAVAILABLE
        from .sampled_heap import SampledHeap

        if not UNAVAILABLE:
            return SampledHeap(rate, depth)
        heap = Heap(False, depth)
        heap.why_off = UNAVAILABLE
        return heap
    return Heap(mode == "exact", depth)
