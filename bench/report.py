"""Rows, robust summaries and the printed table.

Every row carries a median and its spread over interleaved repetitions; a figure with no spread is
a single measurement by nature (a byte count) and says so.
"""

from __future__ import annotations

import os
import platform
import random
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Row:
    benchmark: str
    figure: str
    target: str
    met: bool | None  # None: not measured or not applicable
    note: str = ""


@dataclass(frozen=True)
class Summary:
    median: float
    low: float  # minimum
    high: float  # maximum
    q1: float
    q3: float
    n: int


def summarize(values: Sequence[float]) -> Summary:
    ordered = sorted(values)
    if len(ordered) >= 4:
        q1, _, q3 = statistics.quantiles(ordered, n=4, method="inclusive")
    else:
        q1, q3 = ordered[0], ordered[-1]
    return Summary(statistics.median(ordered), ordered[0], ordered[-1], q1, q3, len(ordered))


def fmt(summary: Summary, unit: str = "", scale: float = 1.0, digits: int = 2) -> str:
    """`median unit (IQR q1..q3, n=N)`."""
    m, a, b = summary.median * scale, summary.q1 * scale, summary.q3 * scale
    return f"{m:.{digits}f}{unit} (IQR {a:.{digits}f}..{b:.{digits}f}, n={summary.n})"


def interleave(variants: dict[str, Callable[[], float]], reps: int,
               seed: int = 1) -> dict[str, list[float]]:
    """Run every variant once per repetition, in a fresh random order each time."""
    rng = random.Random(seed)
    names = list(variants)
    out: dict[str, list[float]] = {name: [] for name in names}
    for _ in range(reps):
        rng.shuffle(names)
        for name in names:
            out[name].append(variants[name]())
    return out


def table(rows: Sequence[Row]) -> str:
    header = ("benchmark", "ratio or figure", "target", "met?")
    body = [(r.benchmark, r.figure, r.target, _met(r.met)) for r in rows]
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(4)]
    lines = [" | ".join(c.ljust(w) for c, w in zip(header, widths)).rstrip()]
    lines.append("-|-".join("-" * w for w in widths))
    lines += [" | ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip() for line in body]
    notes = [f"- {r.benchmark}: {r.note}" for r in rows if r.note]
    return "\n".join(lines + ([""] + notes if notes else []))


def markdown(rows: Sequence[Row], command: str, elapsed_s: float) -> str:
    out = ["# Benchmark results", "", f"Command: `{command}` (took {elapsed_s:.0f} s)", "",
           "Machine: " + machine(), "",
           "| benchmark | ratio or figure | target | met? |", "|---|---|---|---|"]
    out += [f"| {r.benchmark} | {r.figure} | {r.target} | {_met(r.met)} |" for r in rows]
    notes = [f"- **{r.benchmark}**: {r.note}" for r in rows if r.note]
    if notes:
        out += ["", "Notes:", ""] + notes
    return "\n".join(out) + "\n"


def machine() -> str:
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return (f"{os.cpu_count()} cores (nproc), {model}, Python {platform.python_version()} "
            f"({platform.python_implementation()}), {platform.system()} {platform.release()}")


def _met(met: bool | None) -> str:
    return {True: "yes", False: "NO", None: "n/a"}[met]


def bootstrap(samples: Sequence[Sequence[float]], statistic: Callable[..., float],
              reps: int = 2000, seed: int = 7) -> tuple[float, float]:
    """A 95 % percentile interval for `statistic(*samples)`, each sample resampled with
    replacement on its own."""
    rng = random.Random(seed)
    values = []
    for _ in range(reps):
        drawn = [[rng.choice(s) for _ in s] for s in samples]
        try:
            values.append(statistic(*drawn))
        except ZeroDivisionError:
            continue
    values.sort()
    if not values:
        return float("nan"), float("nan")
    return values[int(0.025 * (len(values) - 1))], values[int(0.975 * (len(values) - 1))]
