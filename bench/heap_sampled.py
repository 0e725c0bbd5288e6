"""The sampled heap's targets (issue 11): what leaving it on costs, beside pyroscope-io's memory
sampler and tracemalloc, and what taking a heap profile costs with a large live heap.

The targets are measured in one process at a time (bench/heap_sampled_child.py `pairs`): rounds
of three blocks, no profiler, the profiler with the sampled heap and the profiler with the heap
off, in a fresh random order, the profiler started before its block and stopped after it. A
round's slowdown is its no-profiler block's units of work per CPU second of the whole process
(background threads included) over the configuration's. Processes differ by several percent in
speed (heap layout, where they land), which a ratio taken within one process leaves out.

Beside them, every configuration also runs in its own fresh interpreter, so that the allocator
hooks of one never touch another and pyroscope-io and tracemalloc can be compared: one child per
configuration and mix per repetition, all of a repetition's children in a fresh random order.
pyroscope-io lives in its own virtual environment under the git-ignored `.build/`, created on
first use; if it cannot be set up or run, its rows say why and the run goes on.
"""

from __future__ import annotations

import json
import os
import random
import sys

from .peer import ROOT, _Failed, _run, ensure_venv
from .report import Row, fmt, summarize

PEER = "pyroscope-io"
PEER_VERSION = "1.4.0"
VENV = os.path.join(ROOT, ".build", "bench-heap-peer-venv")
CHILD = os.path.join(ROOT, "bench", "heap_sampled_child.py")
MIXES = {"alloc": ("none", "off", "sampled", "pyroscope", "exact"),
         "request": ("none", "off", "sampled", "pyroscope")}
UNHOOKED = ("none", "off")
MIX_NAMES = {"alloc": "allocation-heavy mix", "request": "request-like mix"}
LABELS = {"off": "control: the profiler with DURAGRAPH_PPROF_HEAP=off (listener only)",
          "sampled": "sampled heap, 512 KiB (serve's default)",
          "pyroscope": f"{PEER} {PEER_VERSION} memory sampler, 512 KiB",
          "exact": "tracemalloc, depth 16 (DURAGRAPH_PPROF_HEAP=exact)"}
TARGETS = {"alloc": 1.10, "request": 1.03}
PAIRED = {"sampled": "sampled heap, 512 KiB (serve's default)",
          "off": "control: the profiler with the heap off (listener only)"}


def _child(python: str, args: list[object], timeout: float) -> dict:
    out = _run([python, CHILD, *map(str, args)], timeout)
    return json.loads(out.strip().splitlines()[-1])


def rates(reps: int, block_s: float, warm_s: float) -> tuple[dict, dict, str]:
    """{(mix, config): [per-CPU-second rates by repetition]}, {config: why it did not run}, the
    peer's version or why it is missing."""
    peer, version = ensure_venv(VENV, f"{PEER}=={PEER_VERSION}", CHILD)
    failures: dict[str, str] = {}
    if peer is None:
        failures["pyroscope"] = f"{PEER} could not be set up: {version}"
    env = {"PYTHONHASHSEED": "0"}  # the same dict layouts in every child
    jobs = [(mix, config) for mix, configs in MIXES.items() for config in configs]
    data: dict[tuple[str, str], list[float | None]] = {job: [] for job in jobs}
    rng = random.Random(11)
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    try:
        _repeat(jobs, data, failures, peer, reps, block_s, warm_s, rng)
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    return data, failures, version


def _repeat(jobs, data, failures, peer, reps, block_s, warm_s, rng) -> None:
    for _ in range(reps):
        rng.shuffle(jobs)
        for mix, config in jobs:
            value = None
            if config not in failures:
                python = peer if config == "pyroscope" else sys.executable
                try:
                    got = _child(python, ["rate", config, mix, block_s, warm_s],
                                 60 + 10 * (block_s + warm_s))
                    if got["info"]["hooked"] != (config not in UNHOOKED):
                        raise _Failed(f"allocator hooks not as expected: {got['info']}")
                    value = got["per_cpu_s"]
                except (_Failed, ValueError, KeyError, IndexError) as exc:
                    failures[config] = str(exc)
            data[(mix, config)].append(value)


def _slowdowns(data: dict, mix: str, config: str) -> list[float]:
    return [none / on for none, on in zip(data[(mix, "none")], data[(mix, config)])
            if none is not None and on is not None]


def paired_rows(children: int, rounds: int, block_s: float, warm_s: float) -> list[Row]:
    out: list[Row] = []
    for mix in MIXES:
        rates: dict[str, list[float]] = {"none": [], "sampled": [], "off": []}
        why = ""
        for _ in range(children):
            try:
                got = _child(sys.executable, ["pairs", mix, rounds, block_s, warm_s],
                             60 + rounds * 4 * (block_s + 0.5))
                for config, values in got["rates"].items():
                    rates[config] += values
            except (_Failed, ValueError, KeyError, IndexError) as exc:
                why = str(exc)
        for config, label in PAIRED.items():
            name = (f"{label}, {MIX_NAMES[mix]}: slowdown vs no profiler, measured in one "
                    "process")
            limit = TARGETS[mix] if config == "sampled" else None
            target = f"<= {limit:.2f}x" if limit else "context"
            slow = [n / c for n, c in zip(rates["none"], rates[config])]
            if not slow:
                out.append(Row(name, "not measured", target, None, why or "no round ran"))
                continue
            s = summarize(slow)
            note = (f"{children} processes x {rounds} rounds of {block_s:g} s blocks (none, "
                    "sampled, off in a fresh random order, after a 0.1 s settle each), work per "
                    f"CPU second of the whole process; no profiler "
                    f"{fmt(summarize(rates['none']), ' units/s', digits=0)}")
            if config == "off":
                own = summarize([o / c for o, c in zip(rates["off"], rates["sampled"])])
                note = f"the sampled heap's own slowdown, over this listener-only control: {fmt(own, 'x')}"
            out.append(Row(name, fmt(s, "x"), target, s.median <= limit if limit else None,
                           note))
    return out


def overhead_rows(reps: int, block_s: float, warm_s: float) -> list[Row]:
    data, failures, version = rates(reps, block_s, warm_s)
    out: list[Row] = []
    for mix, configs in MIXES.items():
        for config in configs[1:]:
            name = (f"{LABELS[config]}, {MIX_NAMES[mix]}: slowdown vs no profiler, one "
                    "process per configuration")
            limit, target = None, "context"
            slow = _slowdowns(data, mix, config)
            if not slow:
                why = failures.get(config) or failures.get("none") or "no repetition completed"
                out.append(Row(name, "not measured", target, None, why))
                continue
            base = summarize([r for r in data[(mix, "none")] if r is not None])
            s = summarize(slow)
            note = (f"work per CPU second of the whole process, one fresh child per "
                    f"configuration per repetition, {s.n} repetitions interleaved in random "
                    f"order; no profiler {fmt(base, ' units/s', digits=0)}") \
                if config == "sampled" else ""
            if config == "pyroscope":
                note = (f"{PEER} {version} in its own venv: configure(mem_enabled=True, "
                        "cpu_enabled=False), server_address a closed loopback port")
            out.append(Row(name, fmt(s, "x"), target, s.median <= limit if limit else None,
                           note))
        if "pyroscope" in configs and "pyroscope" not in failures and "sampled" not in failures:
            ratio = summarize([t / o for o, t in zip(data[(mix, "sampled")],
                                                     data[(mix, "pyroscope")])
                               if o is not None and t is not None])
            if mix == "alloc":
                met = True if ratio.median <= 1.0 else (None if ratio.q1 <= 1.0 else False)
                target = "<= 1.00x (no dearer)"
            else:
                met, target = None, "context"
            out.append(Row(f"sampled heap vs {PEER}, {MIX_NAMES[mix]}: CPU per unit of work "
                           "ours/theirs", fmt(ratio, "x"), target, met,
                           "per repetition, their rate over ours; n/a when the median is "
                           "above 1 but the IQR reaches it (not resolved)" if mix == "alloc"
                           else ""))
    return out


def take_rows(objects: int, reps: int) -> list[Row]:
    got = _child(sys.executable, ["take", objects, reps], 300)
    http_cpu, http_wall = summarize(got["http_cpu"]), summarize(got["http_wall"])
    prof_cpu, prof_wall = summarize(got["profile_cpu"]), summarize(got["profile_wall"])
    what = f"{objects:,} live objects"
    return [
        Row(f"heap endpoint (GET /debug/pprof/heap), sampled, {what}: CPU",
            fmt(http_cpu, " ms", 1e3), "<= 50 ms", http_cpu.median <= 0.050,
            f"the process's CPU over the request (listener thread, encoding, the client); wall "
            f"{fmt(http_wall, ' ms', 1e3)}; {got['live_records']} sampled blocks live in "
            f"{got['stacks']} stacks, {got['samples']} samples, {got['body_bytes']:,} B "
            f"gzipped; {got['estimated_objects'] / 1e6:.2f} M live allocations estimated from "
            f"the objects' 100 call paths (ints and list item arrays are allocations too)"),
        Row(f"SampledHeap.profile(), {what}: CPU", fmt(prof_cpu, " ms", 1e3), "<= 50 ms",
            prof_cpu.median <= 0.050,
            f"wall {fmt(prof_wall, ' ms', 1e3)}; the first call, which resolves each stack's "
            f"frames once, {got['first_cpu'] * 1e3:.1f} ms CPU"),
    ]


def rows(reps: int, block_s: float, warm_s: float, objects: int, take_reps: int,
         paired: tuple[int, int, float]) -> list[Row]:
    children, rounds, paired_block_s = paired
    return (paired_rows(children, rounds, paired_block_s, 1.5)
            + overhead_rows(reps, block_s, warm_s) + take_rows(objects, take_reps))
