"""Heap benchmarks, one fresh process per measurement so that peaks do not mix.

  python -m bench.heap_child time BLOCKS REPS     heap render vs bare _get_traces, interleaved
  python -m bench.heap_child mem-traces BLOCKS    peak extra RSS of a bare _get_traces
  python -m bench.heap_child mem-render BLOCKS    peak extra RSS of the heap endpoint
  python -m bench.heap_child depths ROUNDS REPS   tracemalloc slowdown at depths 1, 16, 64

Each prints one JSON object. Peak extra memory is the kernel's high-water mark (VmHWM, reset
through /proc/self/clear_refs) minus the resident size just before the operation.
"""

from __future__ import annotations

import collections
import gc
import json
import sys
import time
import tracemalloc

from duragraph_pprof.config import load_config
from duragraph_pprof.core.collector import Collector
from duragraph_pprof.render import ProfileRequest, render

from .report import interleave

DEPTH = 16  # the collector's default heap traceback depth


def _nest(depth: int, fn, *args):
    return fn(*args) if depth <= 0 else _nest(depth - 1, fn, *args)


def _alloc(keep: list, n: int, site: int) -> None:
    for i in range(n):
        kind = (i + site) % 4
        if kind == 0:
            keep.append(f"item-{site}-{i}")
        elif kind == 1:
            keep.append([i, site])
        elif kind == 2:
            keep.append((i, site, None))
        else:
            keep.append({"i": i})


def live_blocks(blocks: int) -> list:
    """About `blocks` live traced blocks from 100 distinct call paths (an item is ~2.2 blocks:
    the object, its int, a list's item array)."""
    keep: list = []
    per_site = int(blocks * 0.45) // 100
    for site in range(100):
        _nest(site % 20, _alloc, keep, per_site, site)
    return keep


def _status_kb(field: str) -> int:
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(field)


def _collector() -> Collector:
    return Collector(load_config({}, "dev", http_addr=None, grpc_addr=None, heap_depth=DEPTH))


def _render(collector: Collector) -> int:
    return len(render(collector, ProfileRequest("heap")).body)


def _timed(fn) -> float:
    gc.collect()
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def time_mode(blocks: int, reps: int) -> dict:
    tracemalloc.start(DEPTH)
    keep = live_blocks(blocks)
    collector = _collector()
    traced = len(tracemalloc._get_traces())
    _render(collector)  # warm the source caches once, as a long-lived process has them
    runs = interleave({"traces": lambda: _timed(tracemalloc._get_traces),
                       "render": lambda: _timed(lambda: _render(collector))}, reps)
    del keep
    return {"traced": traced, **runs}


def mem_mode(blocks: int, variant: str) -> dict:
    tracemalloc.start(DEPTH)
    keep = live_blocks(blocks)
    collector = _collector()
    op = tracemalloc._get_traces if variant == "traces" else lambda: _render(collector)
    gc.collect()
    with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
        f.write("5")  # reset the peak resident size to the current one
    before = _status_kb("VmRSS")
    result = op()
    peak = _status_kb("VmHWM")
    del result, keep
    return {"extra_kb": peak - before, "rss_kb": before}


def _mix(rounds: int) -> None:
    """A request-handling mix: dicts, strings, lists, small objects, a rolling live set."""
    live: collections.deque = collections.deque(maxlen=2000)
    for i in range(rounds):
        request = {"id": i, "path": f"/items/{i % 97}", "headers": {"a": "b" * (i % 13)}}
        items = [(k, str(v)) for k, v in request.items()]
        text = json.dumps(request)
        parsed = json.loads(text)
        live.append((items, parsed["path"].split("/"), Point(i, i + 1)))


class Point:
    __slots__ = ("x", "y")

    def __init__(self, x: int, y: int) -> None:
        self.x, self.y = x, y


def depths_mode(rounds: int, reps: int) -> dict:
    def variant(depth: int):
        def one() -> float:
            if depth:
                tracemalloc.start(depth)
            try:
                return _timed(lambda: _nest(30, _mix, rounds))  # a 30-frame application stack
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
