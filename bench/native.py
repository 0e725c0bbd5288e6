"""The native sampler (issue 10): its tick against the pure-Python sampler's, and its rate and
blocking-wait share under the default caps. The side-by-side with pyroscope-io is native_peer.py.

Per-tick CPU: both samplers in this process on the same threads, blocks of each in a fresh random
order per repetition; a block's figure is the sampler's own thread CPU (stats().cpu_ns, waking up
included) over its ticks, after a warm-up; each repetition gives one native/python ratio.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time

from duragraph_pprof.config import DEV, SERVE, load_config
from duragraph_pprof.core import futex_hash
from duragraph_pprof.core.native import UNAVAILABLE, NativeSampler, make_sampler
from duragraph_pprof.core.sampler import Sampler

from .overhead import _wait_idle
from .peer import ROOT, _Failed, _run
from .report import Row, fmt, interleave, summarize
from .wake_floor import WakeFloor
from .workloads import DEPTH, BusyThreads, IdleCrowd

HZ = 100
PARKED_DEPTH = DEPTH + 2  # 29 frames from the thread's bootstrap to Condition.wait, as the busy one
CHILD = os.path.join(ROOT, "bench", "native_child.py")
TARGETS = {1: 0.2, 100: 0.12, 1000: 0.12}
PARTS = {"walk_ns": "reading the threads", "stop_ns": "stopping the world",
         "resume_ns": "letting it go"}


def tick_rows(reps: int, block_s: float) -> list[Row]:
    if UNAVAILABLE:
        return [Row(f"native/python sampler CPU per tick, {n:,} thread{'s' if n > 1 else ''}",
                    "not measured", f"<= {t:g}x", None, UNAVAILABLE) for n, t in TARGETS.items()]
    floor = WakeFloor(HZ)
    return [row for n, target in TARGETS.items()
            for row in _tick_rows(n, target, reps, block_s, floor)]


def _tick_rows(n: int, target: float, reps: int, block_s: float, floor: WakeFloor) -> list[Row]:
    samplers = {"native": NativeSampler(HZ, 1.0), "python": Sampler(HZ, 1.0)}
    per_tick: dict[str, list[float]] = {"native": [], "python": [], "floor": []}
    hz: dict[str, list[float]] = {"native": [], "python": []}
    parts: dict[str, list[float]] = {part: [] for part in PARTS}
    blocks = {name: (lambda name=name: _tick_block(samplers[name], block_s, per_tick[name],
                                                   hz[name], parts))
              for name in samplers}
    blocks["floor"] = lambda: _floor_block(floor, block_s, per_tick["floor"])
    crowd = IdleCrowd(n - 1, 0, depth=PARKED_DEPTH) if n > 1 else contextlib.nullcontext()
    with BusyThreads(1), crowd:
        time.sleep(0.3)
        interleave(blocks, reps, seed=n)
    for sampler in samplers.values():
        sampler.stop()
    ratio = summarize([a / b for a, b in zip(per_tick["native"], per_tick["python"])])
    beyond = summarize([(a - f) / (b - f) for a, b, f
                        in zip(per_tick["native"], per_tick["python"], per_tick["floor"])])
    nat, py = summarize(per_tick["native"]), summarize(per_tick["python"])
    wake = summarize(per_tick["floor"])
    plural = "s" if n > 1 else ""
    return [Row(
        f"native/python sampler CPU per tick, {n:,} thread{plural} (~30 frames)",
        f"{ratio.median:.3f}x (IQR {ratio.q1:.3f}..{ratio.q3:.3f}, n={ratio.n})",
        f"<= {target:g}x", ratio.median <= target,
        f"native {fmt(nat, ' us', digits=1)} (wall time in it: "
        + ", ".join(f"{what} {summarize(parts[part]).median:.1f} us"
                    for part, what in PARTS.items())
        + f"; the rest is waking up), python {fmt(py, ' us', digits=0)} of each "
        f"sampler's own thread CPU per tick (stats().cpu_ns over ticks, waking up included), "
        f"budget 1.0 so neither stretches for its cost: effective "
        f"{summarize(hz['native']).median:.0f} Hz vs {summarize(hz['python']).median:.0f} Hz; "
        "1 busy thread" + (f" + {n - 1:,} threads parked in Event.wait" if n > 1 else "")
        + f", each {PARKED_DEPTH + 6}-{PARKED_DEPTH + 7} frames deep; blocks of {block_s:g} s "
        "after a 0.2 s warm-up, the two samplers and the control in a fresh random order per "
        "repetition"),
        Row(f"control: a bare C thread waking at {HZ} Hz, {n:,} thread{plural}: CPU per wake-up",
            fmt(wake, " us", digits=1), "context for the row above", None,
            "wake_floor.c: a pthread that only sleeps in ppoll to its next deadline, as the "
            "native sampler's thread does between ticks, its own thread CPU over its wake-ups, "
            "in blocks interleaved with the samplers' on the same threads"),
        Row(f"native/python sampler CPU per tick beyond the control, {n:,} thread{plural}",
            f"{beyond.median:.3f}x (IQR {beyond.q1:.3f}..{beyond.q3:.3f}, n={beyond.n})",
            "context (each sampler's tick less the control's wake-up)", None,
            "per repetition (native - control) / (python - control): what each tick costs "
            "beyond what waking up alone costs a thread here")]


def _floor_block(floor: WakeFloor, block_s: float, per_wake: list[float]) -> float:
    floor.start()
    time.sleep(0.2)  # as the samplers' warm-up
    w0, c0 = floor.read()
    time.sleep(block_s)
    w1, c1 = floor.read()
    floor.stop()
    per_wake.append((c1 - c0) / max(w1 - w0, 1) / 1e3)
    return per_wake[-1]


def _tick_block(sampler, block_s: float, per_tick: list[float], hz: list[float],
                parts: dict[str, list[float]]) -> float:
    native = isinstance(sampler, NativeSampler)
    if not native:
        _wait_idle(sampler)
    window = sampler.open_window()
    time.sleep(0.2)  # the first ticks read every stack cold
    s0, t0 = sampler.stats(), time.monotonic_ns()
    n0 = sampler.native_stats() if native else {}
    time.sleep(block_s)
    s1, t1 = sampler.stats(), time.monotonic_ns()
    n1 = sampler.native_stats() if native else {}
    window.close()
    ticks = max(s1.ticks - s0.ticks, 1)
    for part in PARTS if native else ():
        parts[part].append((n1[part] - n0[part]) / ticks / 1e3)
    per_tick.append((s1.cpu_ns - s0.cpu_ns) / ticks / 1e3)
    hz.append(ticks * 1e9 / (t1 - t0))
    return per_tick[-1]


def serve_rows(blocks: int, block_s: float) -> list[Row]:
    config = load_config({}, SERVE)
    sampler = make_sampler(config.sample_hz, config.cpu_budget, config.sampler)
    hz, own = [], []
    with BusyThreads(1):
        window = sampler.open_window()
        time.sleep(1.0)  # the budget's moving average settles
        for _ in range(blocks):
            s0, t0 = sampler.stats(), time.monotonic_ns()
            time.sleep(block_s)
            s1, t1 = sampler.stats(), time.monotonic_ns()
            hz.append((s1.ticks - s0.ticks) * 1e9 / (t1 - t0))
            own.append(100.0 * (s1.cpu_ns - s0.cpu_ns) / (t1 - t0))
        reported = sampler.stats().effective_hz
        window.close()
    sampler.stop()
    rate = summarize(hz)
    return [Row(f"serve defaults (budget {config.cpu_budget:g}), 1 busy thread: effective rate",
                fmt(rate, " Hz", digits=1), ">= 95 Hz", rate.median >= 95,
                f"{sampler.describe()} sampler; its own thread CPU {fmt(summarize(own), ' %')} "
                f"of a core; stats().effective_hz at the end {reported:.1f} Hz; {block_s:g} s "
                "blocks after a 1 s settle")]


FUTEX_SLOTS = 4096


def futex_rows(reps: int, block_s: float) -> list[Row]:
    """The crowd at the serve budget with the process's futex hash at the kernel's size and at
    FUTEX_SLOTS (DURAGRAPH_PPROF_FUTEX_SLOTS), blocks of each in a fresh random order per
    repetition, in one process (the size is set back between blocks)."""
    name = (f"serve budget, 1 busy thread + 1,000 parked threads + 10,000 idle tasks, "
            f"DURAGRAPH_PPROF_FUTEX_SLOTS={FUTEX_SLOTS}: native sampler's rate and own CPU")
    if UNAVAILABLE:
        return [Row(name, "not measured", ">= 50 Hz at <= 1 % of a core", None, UNAVAILABLE)]
    budget = load_config({}, SERVE).cpu_budget
    sampler = NativeSampler(HZ, budget)
    figures: dict[str, dict[str, list[float]]] = {}
    with IdleCrowd(1000, 10_000), BusyThreads(1):
        kernel = futex_hash.slots()  # as the kernel sized it for this process
        if kernel:
            sizes = {"kernel": kernel, "grown": FUTEX_SLOTS}
            window = sampler.open_window()
            time.sleep(1.0)  # the budget's bucket settles
            interleave({size: (lambda size=size: _futex_block(sampler, sizes[size], block_s,
                                                              figures.setdefault(size, {})))
                        for size in sizes}, reps, seed=3)
            window.close()
            futex_hash.set_slots(kernel)
    sampler.stop()
    if not kernel:
        return [Row(name, "not measured", ">= 50 Hz at <= 1 % of a core", None,
                    "this kernel gives the process no private futex hash")]
    got = {size: {k: summarize(v) for k, v in f.items()} for size, f in figures.items()}
    grown, base = got["grown"], got["kernel"]
    met = grown["hz"].median >= 50 and grown["own_pct"].median <= 1.0
    return [Row(name, f"{fmt(grown['hz'], ' Hz', digits=0)} at {fmt(grown['own_pct'], ' %')} of "
                "a core", ">= 50 Hz at <= 1 % of a core", met,
                f"with the kernel's {kernel} slots in the same run: {fmt(base['hz'], ' Hz', digits=0)}"
                f" at {fmt(base['own_pct'], ' %')} of a core; CPU per tick "
                f"{fmt(grown['tick_us'], ' us', digits=0)} against "
                f"{fmt(base['tick_us'], ' us', digits=0)}, of which letting the stopped holder go "
                f"(one futex wake) {grown['resume_us'].median:.1f} us against "
                f"{base['resume_us'].median:.1f} us; budget {budget:g}; blocks of {block_s:g} s, "
                "the two sizes in a fresh random order per repetition, in one process; the "
                "sampler's own thread CPU over wall time (the workers' CPU is the peer rows' "
                "measure: a bigger hash also makes the application's own futex wakes cheaper)")]


def _futex_block(sampler, slots: int, block_s: float, out: dict[str, list[float]]) -> float:
    futex_hash.set_slots(slots)
    time.sleep(0.3)  # the budget's bucket follows the new cost
    s0, n0, t0 = sampler.stats(), sampler.native_stats(), time.monotonic_ns()
    time.sleep(block_s)
    s1, n1, t1 = sampler.stats(), sampler.native_stats(), time.monotonic_ns()
    ticks = max(s1.ticks - s0.ticks, 1)
    for key, value in (("hz", ticks * 1e9 / (t1 - t0)),
                       ("own_pct", 100.0 * (s1.cpu_ns - s0.cpu_ns) / (t1 - t0)),
                       ("tick_us", (s1.cpu_ns - s0.cpu_ns) / ticks / 1e3),
                       ("resume_us", (n1["resume_ns"] - n0["resume_ns"]) / ticks / 1e3)):
        out.setdefault(key, []).append(value)
    return out["hz"][-1]


def demo_rows(seconds: float, block_s: float) -> list[Row]:
    budget = load_config({}, DEV).cpu_budget
    out = []
    for heap, what in (("sampled", "dev defaults (heap sampled)"),
                       ("exact", "dev, heap exact (tracemalloc on)")):
        name = f"{what}, budget {budget:g}, the demo"
        try:
            text = _run([sys.executable, CHILD, "demo", str(seconds), str(block_s), heap],
                        60 + 2 * seconds)
            data = json.loads(text.strip().splitlines()[-1])
        except (_Failed, ValueError, IndexError) as exc:
            out += [Row(f"{name}: effective rate", "not measured", ">= 90 Hz", None, str(exc))]
            continue
        rate, wait = summarize(data["hz"]), summarize(data["wait_pct"])
        top = ", ".join(f"{leaf} {pct:g} %" for leaf, pct in data["top"])
        waiters = ", ".join(f"{who} {pct:g} %" for who, pct in data["waiters"][:3]) or "none"
        out += [
            Row(f"{name}: effective rate", fmt(rate, " Hz", digits=1), ">= 90 Hz",
                rate.median >= 90,
                f"{data['sampler']} sampler; the demo's six threads (CPU burner, allocator, two "
                f"lock holders, event loop with 8 tasks); {block_s:g} s blocks; own thread CPU "
                f"{fmt(summarize(data['own_pct']), ' %')} of a core, "
                f"{summarize(data['dropped']).median:.0f} ticks a block skipped for lateness"),
            Row(f"{name}: CPU profile share at a blocking-wait leaf", fmt(wait, " %"), "< 2 %",
                wait.median < 2,
                "CPU nanoseconds of the samples whose leaf is threading's Condition.wait, "
                "Event.wait, Thread.join, Semaphore.acquire, queue.Queue.get or a selector's "
                f"select, over each block's CPU profile; leaves of the whole run: {top}; the "
                f"waits' CPU by thread: {waiters}"),
        ]
    return out
