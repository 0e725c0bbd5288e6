"""Target 1: what the sampler costs at 100 Hz.

Busy threads: the throughput of a pure-Python workload in blocks with and without an open CPU
window, the two kinds of block interleaved in a fresh random order each repetition; each
repetition gives one with/without ratio. Idle crowd: the sampler thread's own CPU (its self-report
and, independently, the kernel's per-thread CPU clock) over wall time, in consecutive blocks.
"""

from __future__ import annotations

import time

from duragraph_pprof.core.sampler import Sampler
from duragraph_pprof.core.threads import thread_cpu_ns

from .report import Row, fmt, interleave, summarize
from .workloads import BusyThreads, IdleCrowd, Waker

HZ = 100


def busy_rows(threads: int, target_pct: float, reps: int, block_s: float) -> list[Row]:
    """Three kinds of block per repetition, in a fresh random order: no sampler, the sampler with
    an open window, and the control (a plain thread waking at 100 Hz and doing nothing)."""
    sampler = Sampler(HZ)
    waker = Waker(HZ)
    hz: list[float] = []
    per_cpu: dict[str, list[float]] = {"off": [], "on": []}  # work per CPU second of the workers
    with BusyThreads(threads) as busy:
        time.sleep(0.5)  # let the workers settle
        runs = interleave({"off": lambda: _block(sampler, busy, block_s, None, per_cpu["off"]),
                           "on": lambda: _block(sampler, busy, block_s, hz, per_cpu["on"]),
                           "control": lambda: _control_block(waker, busy, block_s)}, reps)
    sampler.stop()
    slower = summarize([100.0 * (1.0 - on / off) for on, off in zip(per_cpu["on"], per_cpu["off"])])
    loss = summarize([100.0 * (1.0 - on / off) for on, off in zip(runs["on"], runs["off"])])
    control = summarize([100.0 * (1.0 - c / off) for c, off in zip(runs["control"], runs["off"])])
    beyond = summarize([100.0 * (c - on) / off
                        for on, c, off in zip(runs["on"], runs["control"], runs["off"])])
    plural = "s" if threads > 1 else ""
    name = f"sampler overhead, {threads} busy thread{plural}, 100 Hz"
    return [
        Row(name, fmt(loss, " %") + " throughput lost", f"<= {target_pct:g} %",
            loss.median <= target_pct,
            f"with/without window per repetition, {block_s:g} s blocks; "
            f"effective rate {fmt(summarize(hz), ' Hz', digits=0)}; the workers' work per "
            f"second of their own CPU fell {fmt(slower, ' %')}: the rest of the loss is CPU "
            "they did not get (the sampler's GIL time and hand-offs)"),
        Row(f"control: idle thread waking at 100 Hz, {threads} busy thread{plural}",
            fmt(control, " %") + " throughput lost", "context for the row above", None,
            "a plain thread that sleeps to the next 10 ms deadline and does nothing: the GIL "
            "hand-off and the machine's noise alone, in the same interleaved repetitions"),
        Row(f"sampler beyond the control, {threads} busy thread{plural}",
            fmt(beyond, " points"), "context (sampler's own share)", None,
            "per repetition: (control - sampler) / no-sampler throughput, paired blocks; what the "
            "sampler's work costs on top of waking up"),
    ]


def _control_block(waker: Waker, busy: BusyThreads, seconds: float) -> float:
    waker.start()
    count0, t0 = busy.total(), time.perf_counter()
    time.sleep(seconds)
    count1, t1 = busy.total(), time.perf_counter()
    waker.stop()
    return (count1 - count0) / (t1 - t0)


def _block(sampler: Sampler, busy: BusyThreads, seconds: float, hz: list[float] | None,
           per_cpu: list[float]) -> float:
    _wait_idle(sampler)
    window = sampler.open_window() if hz is not None else None
    ticks0 = sampler.stats().ticks
    count0, t0, cpu0 = busy.total(), time.perf_counter(), busy.cpu_ns()
    time.sleep(seconds)
    count1, t1, cpu1 = busy.total(), time.perf_counter(), busy.cpu_ns()
    per_cpu.append((count1 - count0) / max(cpu1 - cpu0, 1))
    if window is not None and hz is not None:
        hz.append((sampler.stats().ticks - ticks0) / (t1 - t0))
        window.close()
    return (count1 - count0) / (t1 - t0)


def _wait_idle(sampler: Sampler) -> None:
    """A closed window's sampler thread ends at its next tick; do not let it leak into a block."""
    deadline = time.monotonic() + 2.0
    while sampler._thread is not None and time.monotonic() < deadline:
        time.sleep(0.002)


def idle_rows(crowd: IdleCrowd, blocks: int, block_s: float) -> list[Row]:
    sampler = Sampler(HZ)
    window = sampler.open_window()
    time.sleep(2.0)  # the budget's moving average settles from its cold start
    thread = sampler._thread
    native = thread.native_id if thread is not None else None
    own, kernel, hz = [], [], []
    for _ in range(blocks):
        s0, k0, t0 = sampler.stats(), thread_cpu_ns(native), time.monotonic_ns()
        time.sleep(block_s)
        s1, k1, t1 = sampler.stats(), thread_cpu_ns(native), time.monotonic_ns()
        own.append(100.0 * (s1.cpu_ns - s0.cpu_ns) / (t1 - t0))
        if k0 is not None and k1 is not None:
            kernel.append(100.0 * (k1 - k0) / (t1 - t0))
        hz.append((s1.ticks - s0.ticks) * 1e9 / (t1 - t0))
    reported = sampler.stats().effective_hz
    window.close()
    sampler.stop()
    share = summarize(kernel or own)
    return [
        Row("sampler own CPU, 1,000 idle threads + 10,000 idle tasks",
            fmt(share, " % of a core"), "<= 1 %", share.median <= 1.0,
            f"kernel per-thread CPU clock of the sampler thread; its self-report "
            f"{fmt(summarize(own), ' %')}; {block_s:g} s blocks"),
        Row("sampler effective rate, same crowd", fmt(summarize(hz), " Hz", digits=1),
            "report it (nominal 100 Hz)", None,
            f"stats().effective_hz at the end: {reported:.1f} Hz; the 1 % budget stretches the "
            "interval, and every tick reads all 1,001 stacks and CPU clocks"),
    ]
