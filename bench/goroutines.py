"""Target 5: the goroutine dump, the goroutine profile and the goroutine count, with 1,000
threads and 10,000 asyncio tasks alive (the caller holds the crowd open)."""

from __future__ import annotations

import time

from duragraph_pprof.config import load_config
from duragraph_pprof.core.profiling_core import ProfilingCore
from duragraph_pprof.render import ProfileRequest, render

from .report import Row, fmt, interleave, summarize


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def rows(reps: int, count_reps: int) -> list[Row]:
    core = ProfilingCore(load_config({}, "dev", http_addr=None, grpc_addr=None, heap=False))
    threads, tasks = core.goroutine_counts()
    runs = interleave({
        "debug=2": lambda: _timed(lambda: render(core, ProfileRequest("goroutine", debug="2"))),
        "debug=0": lambda: _timed(lambda: render(core, ProfileRequest("goroutine"))),
    }, reps)
    counts = summarize([_timed(core.goroutine_counts) for _ in range(count_reps)])
    crowd = f"{threads:,} threads + {tasks:,} tasks"
    out = []
    for debug in ("debug=2", "debug=0"):
        s = summarize(runs[debug])
        out.append(Row(f"goroutine?{debug} render, {crowd}", fmt(s, " s", digits=3), "<= 1 s",
                       s.median <= 1.0))
    out.append(Row(f"goroutine count collection, {crowd}", fmt(counts, " ms", 1e3),
                   "<= 5 ms", counts.median <= 0.005))
    return out
