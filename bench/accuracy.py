"""Target 2: does the CPU profile tell the truth?

Each run starts `bench.accuracy_child` under `py-spy record` (py-spy starts the child itself, so
no attach permission is needed), so our sampler and py-spy profile the same execution at the
same nominal rate. Shares are of CPU time under the workload's `run` function.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

from .report import Row, fmt, summarize

SPLIT_A = 70.0  # part_a's share by construction
TOP = 5


def rows(runs: int, seconds: float) -> list[Row]:
    results = [_one_run(seconds) for _ in range(runs)]
    ours = [r for r, _ in results]
    split = summarize([r["inclusive"].get("part_a", 0.0) for r in ours])
    sleeper = summarize([r["sleeper"] for r in ours])
    diffs, names = [], []
    for mine, theirs in results:
        top = sorted(theirs, key=theirs.get, reverse=True)[:TOP]
        names = top
        diffs.append(max(abs(mine["leaf"].get(n, 0.0) - theirs[n]) for n in top))
    gap = summarize(diffs)
    hz = summarize([r["effective_hz"] for r in ours])
    return [
        Row("accuracy: 70/30 split by construction, part_a share", fmt(split, " %", digits=1),
            "70 +- 3 points", abs(split.median - SPLIT_A) <= 3.0,
            f"{runs} runs of {seconds:g} s, effective rate {fmt(hz, ' Hz', digits=0)}"),
        Row("accuracy: sleeping thread's share of CPU", fmt(sleeper, " %"), "< 1 %",
            sleeper.median < 1.0),
        Row("accuracy: top-5 leaf shares vs py-spy record, worst gap",
            fmt(gap, " points", digits=1), "<= 5 points", gap.median <= 5.0,
            f"py-spy's top five: {', '.join(names)}; both at 100 Hz on the same execution; "
            f"ours (last run): {_pairs(results[-1][0]['leaf'], names)}; "
            f"py-spy: {_pairs(results[-1][1], names)}"),
    ]


def _pairs(shares: dict, names: list[str]) -> str:
    return ", ".join(f"{n} {shares.get(n, 0.0):.1f}" for n in names)


def _one_run(seconds: float) -> tuple[dict, dict[str, float]]:
    with tempfile.TemporaryDirectory() as tmp:
        ours, raw = os.path.join(tmp, "ours.json"), os.path.join(tmp, "pyspy.txt")
        pyspy = os.path.join(os.path.dirname(sys.executable), "py-spy")
        command = [pyspy, "record", "-r", "100", "--format", "raw", "-o", raw, "--",
                   sys.executable, "-m", "bench.accuracy_child", str(seconds), ours]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       timeout=seconds + 120)
        with open(ours, encoding="utf-8") as f:
            mine = json.load(f)
        with open(raw, encoding="utf-8") as f:
            theirs = pyspy_leaf_shares(f.read())
    return mine, theirs


def pyspy_leaf_shares(raw: str) -> dict[str, float]:
    """Leaf function shares from py-spy's raw (collapsed) output, restricted to stacks under
    the workload's `run`. Lines read `root (file:line);...;leaf (file:line) COUNT`."""
    counts: dict[str, int] = {}
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        names = [frame.split(" (", 1)[0] for frame in stack.split(";")]
        if "run" not in names:
            continue
        counts[names[-1]] = counts.get(names[-1], 0) + int(count)
    total = sum(counts.values()) or 1
    return {name: 100.0 * n / total for name, n in counts.items()}
