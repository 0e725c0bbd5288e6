"""The sampled heap profile: Go's four heap values from the native allocation sampler.

The C extension picks one allocation per `rate` bytes on average and notices its free (see
native/heap.c); this module turns its raw counts into a profile scaled the way Go scales a heap
profile: a record of c sampled objects and b sampled bytes stands for c and b times
1 / (1 - e^(-(b/c)/rate)) (no scaling at rate 1).
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time

from .frames import frame_at, own_frame
from .native import _native, module_of
from .snapshot import Profile, Sample, Stack, ValueType

ALLOC_OBJECTS = ValueType("alloc_objects", "count")
ALLOC_SPACE = ValueType("alloc_space", "bytes")
INUSE_OBJECTS = ValueType("inuse_objects", "count")
INUSE_SPACE = ValueType("inuse_space", "bytes")
SPACE = ValueType("space", "bytes")
SAMPLE_TYPES = (ALLOC_OBJECTS, ALLOC_SPACE, INUSE_OBJECTS, INUSE_SPACE)
_COUNT_TTL = 1.0
_CUT_OUT = ("heap sampling stopped: another allocator hook set before the profiler took itself off "
            "and cut ours out of the chain (tracemalloc.stop() of a tracemalloc started first); "
            "the values are as of then - restart the profiler to sample again")
log = logging.getLogger("duragraph_pprof")


def scale(count: int, size: int, rate: int) -> tuple[int, int]:
    """Go's scaleHeapSample: the unsampled estimate of `count` objects of `size` bytes."""
    if count == 0 or size == 0:
        return 0, 0
    if rate <= 1:
        return count, size
    factor = 1 / (1 - math.exp(-(size / count) / rate))
    return int(count * factor), int(size * factor)


class SampledHeap:
    mode = "sampled"

    def __init__(self, rate: int, depth: int) -> None:
        if _native is None:
            raise RuntimeError("the native extension did not load")
        self.rate = rate
        self.depth = depth
        self._on = self._owner = self.cut_out = False
        self._lock = threading.Lock()
        self._stacks: dict[tuple[int, int], Stack | None] = {}
        self._count: tuple[float, int] = (float("-inf"), 0)

    @property
    def comment(self) -> str:
        return (f"heap: sampled, one allocation per {self.rate} bytes on average "
                "(DURAGRAPH_PPROF_HEAP=sampled); values are estimates scaled as Go scales them"
                + (f"; {_CUT_OUT}" if self.cut_out else ""))

    def start(self) -> None:
        # another profiler in this process may own the hooks: then this one reads them too
        self._on = _native.heap_start(self.rate, self.depth, os.getpid() ^ time.time_ns()) or \
            _heap_running()
        self._owner = self._on

    def stop(self) -> None:
        if self._on and self._owner:
            _native.heap_stop()
        self._on = False

    @property
    def tracing(self) -> bool:
        return self._on

    def stats(self) -> tuple[int, int] | None:
        return None  # the tracemalloc metrics are about tracemalloc

    def record_count(self) -> int:
        if not self._on:
            return 0
        taken, count = self._count
        if time.monotonic() - taken > _COUNT_TTL:
            profile = self.profile()
            count = len(profile.samples) if profile is not None else 0
            self._count = (time.monotonic(), count)
        return count

    def profile(self, collect_garbage: bool = False) -> Profile | None:
        if not self._on:
            return None
        if collect_garbage:
            import gc

            gc.collect()
        now = time.time_ns()
        with self._lock:
            generation, rate, rows, stats = _native.heap_snapshot()
            if not stats["attached"] and not self.cut_out:
                self.cut_out = True
                log.warning(_CUT_OUT)
            merged: dict[Stack, list[int]] = {}
            for stack_id, alloc_n, alloc_b, inuse_n, inuse_b in rows:
                stack = self._stack(generation, stack_id)
                if stack is None:
                    continue  # the profiler's own allocations never show
                values = (*scale(alloc_n, alloc_b, rate), *scale(inuse_n, inuse_b, rate))
                total = merged.get(stack)
                if total is None:
                    merged[stack] = list(values)
                else:
                    for i, v in enumerate(values):
                        total[i] += v
        samples = [Sample(stack, tuple(v), (), (("bytes", v[1] // v[0], "bytes"),))
                   for stack, v in merged.items() if v[0]]
        samples.sort(key=lambda s: tuple((f.function, f.line) for f in s.stack))
        return Profile(SAMPLE_TYPES, SPACE, rate, tuple(samples), now)

    def _stack(self, generation: int, stack_id: int) -> Stack | None:
        key = (generation, stack_id)
        if key in self._stacks:
            return self._stacks[key]
        frames = _native.heap_frames(generation, stack_id) or ()
        stack = tuple(frame_at(code, module_of(g), line) for code, g, line in frames)
        ours = any(own_frame(f) for f in stack)
        self._stacks[key] = None if ours else stack
        return self._stacks[key]


def _heap_running() -> bool:
    _, _, _, stats = _native.heap_snapshot()
    return bool(stats["on"])
