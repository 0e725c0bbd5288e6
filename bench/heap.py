"""Target 4: the heap endpoint against tracemalloc's own cost, and tracemalloc's slowdown; the
sampled heap's rows are heap_sampled.py's (sampled_rows).

Every measurement runs in a fresh `bench.heap_child` process: timings interleave the two variants
in one process; each peak-memory variant gets its own process so that one peak cannot hide
another.
"""

from __future__ import annotations

import json
import subprocess
import sys

from .heap_sampled import rows as sampled_rows
from .report import Row, fmt, summarize

__all__ = ["rows", "sampled_rows"]


def _child(*args: object) -> dict:
    done = subprocess.run([sys.executable, "-m", "bench.heap_child", *map(str, args)],
                          check=True, capture_output=True, text=True, timeout=1200)
    return json.loads(done.stdout.strip().splitlines()[-1])


def rows(blocks: int, reps: int, mix_rounds: int, mix_reps: int) -> list[Row]:
    timed = _child("time", blocks, reps)
    ratio = summarize([r / t for r, t in zip(timed["render"], timed["traces"])])
    traces_mem = _child("mem-traces", blocks)
    render_mem = _child("mem-render", blocks)
    mem = render_mem["extra_kb"] / traces_mem["extra_kb"]
    depths = _child("depths", mix_rounds, mix_reps)
    out = [
        Row(f"heap endpoint, exact, vs bare tracemalloc._get_traces(), {timed['traced']:,} live blocks",
            fmt(ratio, "x"), "<= 2x", ratio.median <= 2.0,
            f"render(heap) includes its own _get_traces(); bare _get_traces() "
            f"{fmt(summarize(timed['traces']), ' s')}"),
        Row("heap endpoint, exact: peak extra RSS vs bare _get_traces()", f"{mem:.2f}x "
            f"({render_mem['extra_kb'] / 1024:.0f} MiB vs {traces_mem['extra_kb'] / 1024:.0f} MiB,"
            " one process each)", "<= 1.5x", mem <= 1.5,
            "peak resident size (VmHWM reset via /proc/self/clear_refs) minus resident size just "
            f"before; {render_mem['rss_kb'] / 1024:.0f} MiB resident with the blocks live"),
    ]
    for depth in ("1", "16", "64"):
        slow = summarize([d / o for d, o in zip(depths[depth], depths["0"])])
        out.append(Row(f"tracemalloc intrinsic slowdown, depth {depth}, request-like mix",
                       fmt(slow, "x"), "report it", None,
                       "30-frame stack; dicts, strings, json, small objects" if depth == "1"
                       else ""))
    return out
