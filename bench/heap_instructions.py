"""The sampled heap's cost in instructions: what its hooks add to each unit of a mix, counted by
`valgrind --tool=callgrind`, which counts the same for the same program and input however busy
the machine is. The timed rows (heap_sampled.py) carry this VM's drift of several percent; this
one tells a 2 % cost from a 4 % one. It counts instructions, not time: a cache miss costs
nothing here.

Each figure is one child's whole-process count at two sizes (bench/heap_sampled_child.py
`count`), so start-up cancels: (I(large) - I(small)) / (large - small) instructions per unit,
for no profiler and for the sampled heap's hooks at serve's rate, children in a fresh random
order per repetition, all with one string hash seed. The hooks' picks are random, so
repetitions differ a little.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import subprocess
import sys

from .heap_sampled import CHILD, MIX_NAMES, TARGETS
from .peer import _Failed
from .report import Row, fmt, summarize

CONFIGS = ("none", "sampled")
_COLLECTED = re.compile(r"Collected\s*:\s*(\d+)")


def _instructions(config: str, mix: str, units: int) -> int:
    """The child's whole-process count; callgrind prints it on stderr, which peer._run drops."""
    cmd = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable,
           CHILD, "count", config, mix, str(units)]
    try:
        # one string hash seed, so that dicts and sets lay out alike in every child
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=600,
                              stdin=subprocess.DEVNULL, check=False,
                              env=dict(os.environ, PYTHONHASHSEED="0"))
    except subprocess.TimeoutExpired:
        raise _Failed(f"callgrind on `count {config} {mix} {units}` took over 600 s") from None
    found = _COLLECTED.search(done.stderr)
    if done.returncode != 0 or found is None:
        last = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise _Failed(f"callgrind on `count {config} {mix} {units}` exited "
                      f"{done.returncode}: {last[:300]}")
    return int(found.group(1))


def _per_unit(config: str, mix: str, small: int, large: int) -> float:
    return (_instructions(config, mix, large) - _instructions(config, mix, small)) / (large - small)


def rows(units: tuple[int, int], reps: int) -> list[Row]:
    small, large = units
    out: list[Row] = []
    for mix, mix_name in MIX_NAMES.items():
        name = (f"sampled heap, 512 KiB (serve's default), {mix_name}: instructions per unit vs "
                "no profiler (callgrind)")
        target = f"context (the timed target is <= {TARGETS[mix]:.2f}x)"
        if shutil.which("valgrind") is None:
            out.append(Row(name, "not measured", target, None, "valgrind is not installed"))
            continue
        counts: dict[str, list[float]] = {c: [] for c in CONFIGS}
        rng = random.Random(len(mix))
        try:
            for _ in range(reps):
                for config in rng.sample(CONFIGS, len(CONFIGS)):
                    counts[config].append(_per_unit(config, mix, small, large))
        except _Failed as exc:
            out.append(Row(name, "not measured", target, None, str(exc)))
            continue
        ratio = summarize([on / off for on, off in zip(counts["sampled"], counts["none"])])
        none = summarize(counts["none"])
        out.append(Row(
            name, fmt(ratio, "x", digits=3), target, None,
            f"no profiler {fmt(none, ' M instructions a unit', scale=1e-6, digits=2)}, "
            f"the sampled heap's hooks alone (no sampler thread, no listener); whole-process "
            f"counts at {small} and {large} units, differenced; {reps} repetitions"))
    return out
