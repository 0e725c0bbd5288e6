"""python -m bench [--quick] [--only NAME ...]: every benchmark, one table of ratios.

Run from the repository root with the project's virtual environment. The table is printed and
written to bench/results.md with the command and the machine it ran on.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass

from . import (
    accuracy,
    goroutines,
    heap,
    heap_instructions,
    load,
    native,
    native_peer,
    onecore,
    otlp,
    overhead,
    peer,
)
from .report import Row, markdown, table
from .workloads import IdleCrowd

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results.md")


@dataclass(frozen=True)
class Plan:
    busy_reps: int = 30
    busy10_reps: int = 20
    block_s: float = 0.5
    idle_blocks: int = 5
    idle_block_s: float = 3.0
    accuracy_runs: int = 3
    accuracy_s: float = 15.0
    heap_blocks: int = 1_000_000
    heap_reps: int = 5
    mix_rounds: int = 3000
    mix_reps: int = 7
    goroutine_reps: int = 5
    count_reps: int = 50
    otlp_s: float = 60.0
    otlp_reps: int = 10
    peer_reps: int = 5
    peer_pairs: int = 3
    peer_block_s: float = 0.5
    onecore_s: int = 30
    onecore_reps: int = 2
    load_s: float = 60.0
    load_blocks: int = 6
    sampled_reps: int = 20
    sampled_block_s: float = 0.6
    sampled_objects: int = 1_000_000
    sampled_paired: tuple = (6, 10, 0.5)  # processes, rounds each, block seconds
    take_reps: int = 20
    sampled_instructions: tuple = ((10, 40), 3)  # (units at the two sizes), repetitions
    tick_reps: int = 6
    tick_block_s: float = 0.6
    serve_blocks: int = 6
    futex_reps: int = 6
    futex_block_s: float = 3.0
    demo_s: float = 13.0
    demo_block_s: float = 3.0
    # pyroscope side by side: scenario -> (repetitions, pairs per child, block seconds)
    vs_pyroscope: tuple = (("busy1", 6, 4, 1.0), ("busy10", 5, 4, 1.0), ("crowd", 3, 3, 1.5))


QUICK = Plan(busy_reps=6, busy10_reps=6, block_s=0.3, idle_blocks=2, idle_block_s=1.0,
             accuracy_runs=1, accuracy_s=5.0, heap_blocks=200_000, heap_reps=2, mix_rounds=1000,
             sampled_reps=3, sampled_block_s=0.3, take_reps=5, sampled_paired=(1, 2, 0.3),
             sampled_instructions=((2, 6), 1),
             mix_reps=3, goroutine_reps=2, count_reps=20, otlp_s=5.0, otlp_reps=3, peer_reps=2, peer_pairs=2,
             peer_block_s=0.3, onecore_s=3, onecore_reps=2, load_s=10.0, load_blocks=2,
             tick_reps=3, tick_block_s=0.3, serve_blocks=3, futex_reps=2, futex_block_s=1.0,
             demo_s=5.0, demo_block_s=1.5,
             vs_pyroscope=(("busy1", 2, 2, 0.5), ("busy10", 2, 2, 0.5), ("crowd", 1, 2, 0.5)))


def _native_rows(plan: Plan) -> list[Row]:
    return (native.tick_rows(plan.tick_reps, plan.tick_block_s)
            + native_peer.rows({name: spec for name, *spec in plan.vs_pyroscope})
            + native.serve_rows(plan.serve_blocks, 2.0)
            + native.futex_rows(plan.futex_reps, plan.futex_block_s)
            + native.demo_rows(plan.demo_s, plan.demo_block_s))


def _crowd_rows(plan: Plan) -> list[Row]:
    with IdleCrowd(1000, 10_000) as crowd:
        rows = overhead.idle_rows(crowd, plan.idle_blocks, plan.idle_block_s)
        return rows + goroutines.rows(plan.goroutine_reps, plan.count_reps)


BENCHMARKS = {
    "overhead": lambda p: (overhead.busy_rows(1, 1.0, p.busy_reps, p.block_s)
                           + overhead.busy_rows(10, 2.0, p.busy10_reps, p.block_s)),
    "crowd": _crowd_rows,
    "peer": lambda p: peer.rows((1, 10), p.peer_reps, p.peer_pairs, p.peer_block_s),
    "onecore": lambda p: onecore.rows(p.onecore_s, p.onecore_reps),
    "load": lambda p: load.rows(p.load_s, p.load_blocks),
    "accuracy": lambda p: accuracy.rows(p.accuracy_runs, p.accuracy_s),
    "heap": lambda p: (heap.rows(p.heap_blocks, p.heap_reps, p.mix_rounds, p.mix_reps)
                       + heap.sampled_rows(p.sampled_reps, p.sampled_block_s, 0.3,
                                           p.sampled_objects, p.take_reps,
                                           p.sampled_paired)
                       + heap_instructions.rows(*p.sampled_instructions)),
    "otlp": lambda p: otlp.rows(p.otlp_s, p.otlp_reps),
    "native": _native_rows,
}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run, under two minutes")
    parser.add_argument("--only", nargs="+", choices=sorted(BENCHMARKS), help="run only these")
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else Plan()
    started = time.monotonic()
    rows: list[Row] = []
    for name in args.only or BENCHMARKS:
        print(f"== {name}", file=sys.stderr, flush=True)
        rows += BENCHMARKS[name](plan)
    elapsed = time.monotonic() - started
    print(table(rows))
    command = "python -m bench" + "".join(f" {a}" for a in argv)
    with open(RESULTS, "w", encoding="utf-8") as f:
        f.write(markdown(rows, command, elapsed))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
