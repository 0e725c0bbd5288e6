"""The accuracy workload, run as its own process so that `py-spy record` can start it.

The CPU split is fixed by construction: identical loops, iteration counts in fixed proportions.
`part_a` takes 70 % (40 % itself, 20 % in `a_one`, 10 % in `a_two`) and `part_b` 30 % (20 %
itself, 10 % in `b_one`), so both the 70/30 split and the five leaf shares are known. A sleeping
thread wakes every 100 ms and does nothing. Our CPU profile of the run is written as JSON: leaf
shares and inclusive shares, both restricted to stacks under `run`, and the sleeper's share.

Usage: python -m bench.accuracy_child SECONDS OUT.json
"""

from __future__ import annotations

import json
import sys
import threading
import time

from duragraph_pprof.core.sampler import Sampler

UNIT = 4000  # iterations per tenth of a round


def a_one(n: int) -> int:
    x = 0
    for i in range(n):
        x += i * i
    return x


def a_two(n: int) -> int:
    x = 0
    for i in range(n):
        x += i * i
    return x


def b_one(n: int) -> int:
    x = 0
    for i in range(n):
        x += i * i
    return x


def part_a(n: int) -> int:
    x = 0
    for i in range(4 * n):
        x += i * i
    return x + a_one(2 * n) + a_two(n)


def part_b(n: int) -> int:
    x = 0
    for i in range(2 * n):
        x += i * i
    return x + b_one(n)


def run(seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        part_a(UNIT)
        part_b(UNIT)


def sleeper(stop: threading.Event) -> None:
    while not stop.is_set():
        time.sleep(0.1)


def short_name(function: str) -> str:
    return function.rsplit(".", 1)[-1]


def shares(cpu_profile) -> dict:
    leaf: dict[str, float] = {}
    inclusive: dict[str, float] = {}
    total = under_run = sleeping = 0
    for sample in cpu_profile.samples:
        ns = sample.values[1]
        total += ns
        if dict(sample.labels).get("thread.name") == "sleeper":
            sleeping += ns
        names = [short_name(f.function) for f in sample.stack]
        if "run" not in names:
            continue
        under_run += ns
        leaf[names[0]] = leaf.get(names[0], 0) + ns
        for name in set(names):
            inclusive[name] = inclusive.get(name, 0) + ns
    return {
        "leaf": {k: 100.0 * v / under_run for k, v in leaf.items()},
        "inclusive": {k: 100.0 * v / under_run for k, v in inclusive.items()},
        "sleeper": 100.0 * sleeping / total if total else 0.0,
    }


def main(seconds: float, out: str) -> None:
    stop = threading.Event()
    sleeping = threading.Thread(target=sleeper, args=(stop,), name="sleeper", daemon=True)
    sleeping.start()
    sampler = Sampler(100)
    window = sampler.open_window()
    started = time.monotonic()
    run(seconds)
    elapsed = time.monotonic() - started
    cpu, _wall = window.close()
    stats = sampler.stats()
    sampler.stop()
    stop.set()
    result = shares(cpu)
    result["effective_hz"] = stats.ticks / elapsed
    with open(out, "w", encoding="utf-8") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main(float(sys.argv[1]), sys.argv[2])
