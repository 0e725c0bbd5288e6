"""Heap benchmarks, one fresh process per measurement so that peaks do not mix.

  python -m bench.heap_child time BLOCKS REPS     heap render vs bare _get_traces, interleaved
  python -m bench.heap_child mem-traces BLOCKS    peak extra RSS of a bare _get_traces
  python -m bench.heap_child mem-render BLOCKS    peak extra RSS of the heap endpoint
  python -m bench.heap_child depths ROUNDS REPS   tracemalloc slowdown at depths 1, 16, 64

Each prints one JSON object. Peak extra memory is the kernel's high-water mark (VmHWM, reset
through /proc/self/clear_refs) minus the resident size just before the operation.
"""

from __future__ import annotations

import gc
import json
import sys
import time
import tracemalloc

from duragraph_pprof.config import load_config
from duragraph_pprof.core.profiling_core import ProfilingCore
from duragraph_pprof.render import ProfileRequest, render

from .heap_workloads import live_items, nest, request_mix
from .report import interleave

DEPTH = 16  # the profiling core's default heap traceback depth


def live_blocks(blocks: int) -> list:
    """About `blocks` live traced blocks from 100 distinct call paths (an item is ~2.2 blocks:
    the object, its int, a list's item array)."""
    return live_items(int(blocks * 0.45))


def _status_kb(field: str) -> int:
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(field)


def _core() -> ProfilingCore:
    return ProfilingCore(load_config({}, "dev", http_addr=None, grpc_addr=None, heap="exact",
                                 heap_depth=DEPTH))


def _render(core: ProfilingCore) -> int:
    return len(render(core, ProfileRequest("heap")).body)


def _timed(fn) -> float:
    gc.collect()
    start = time.process_time()  # CPU, not wall: the machine is shared
    fn()
    return time.process_time() - start


def time_mode(blocks: int, reps: int) -> dict:
    tracemalloc.start(DEPTH)
    keep = live_blocks(blocks)
    core = _core()
    traced = len(tracemalloc._get_traces())
    _render(core)  # warm the source caches once, as a long-lived process has them
    runs = interleave({"traces": lambda: _timed(tracemalloc._get_traces),
                       "render": lambda: _timed(lambda: _render(core))}, reps)
    del keep
    return {"traced": traced, **runs}


def mem_mode(blocks: int, variant: str) -> dict:
    tracemalloc.start(DEPTH)
    keep = live_blocks(blocks)
    core = _core()
    op = tracemalloc._get_traces if variant == "traces" else lambda: _render(core)
    gc.collect()
    with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
        f.write("5")  # reset the peak resident size to the current one
    before = _status_kb("VmRSS")
    result = op()
    peak = _status_kb("VmHWM")
    del result, keep
    return {"extra_kb": peak - before, "rss_kb": before}


def depths_mode(rounds: int, reps: int) -> dict:
    def variant(depth: int):
        def one() -> float:
            if depth:
                tracemalloc.start(depth)
            try:
                return _timed(lambda: nest(30, request_mix, rounds))  # a 30-frame application stack
            finally:
                if depth:
                    tracemalloc.stop()
        return one

    return interleave({str(d): variant(d) for d in (0, 1, 16, 64)}, reps)


def main(argv: list[str]) -> None:
    mode = argv[0]
    if mode == "time":
        out = time_mode(int(argv[1]), int(argv[2]))
    elif mode.startswith("mem-"):
        out = mem_mode(int(argv[1]), mode[4:])
    elif mode == "depths":
        out = depths_mode(int(argv[1]), int(argv[2]))
    else:
        raise SystemExit(f"unknown mode {mode!r}")
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1:])
