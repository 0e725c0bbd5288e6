"""One side of target 3, run in a child process: `python peer_child.py ours|theirs|probe ARGS`.

`ours` runs in the project's environment, `theirs` in the peer's own virtual environment (it
imports nothing of ours). Both run the same busy-thread workload and, per pair, one block without
a profiler and one with it, in a random order; a block's figure is the workload's throughput, and
the profiler thread's CPU clock is read around the `with` block. One JSON line on stdout.
"""

from __future__ import annotations

import json
import os
import random
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.workloads import BusyThreads

HZ = 100


def thread_cpu_ns(thread: threading.Thread | None) -> int | None:
    if thread is None or thread.ident is None:
        return None
    try:
        return time.clock_gettime_ns(time.pthread_getcpuclockid(thread.ident))
    except (OSError, AttributeError):
        return None


class Ours:
    name = "duragraph-pprof"

    def __init__(self) -> None:
        from duragraph_pprof.core.sampler import Sampler

        self._sampler = Sampler(HZ)
        self._window = None

    def start(self) -> None:
        self._window = self._sampler.open_window()

    def thread(self) -> threading.Thread | None:
        return self._sampler._thread

    def ticks(self) -> int:
        return self._sampler.stats().ticks

    def stop(self) -> None:
        if self._window is not None:
            self._window.close()
            self._window = None
        deadline = time.monotonic() + 2.0  # the thread ends at its next tick
        while self._sampler._thread is not None and time.monotonic() < deadline:
            time.sleep(0.002)


class Theirs:
    """The peer with its defaults (stack collector, trace context on) at a 10 ms interval, and
    its exporter set to `none`, so nothing is sent anywhere (its flush then drops the batch)."""

    name = "opentelemetry-sdk-extension-profiling"

    def __init__(self) -> None:
        os.environ["OTEL_PROFILING_EXPORTER"] = "none"
        from opentelemetry.sdk.extension.profiling import Profiler

        self._profiler = Profiler(sample_interval=1.0 / HZ)
        self._captures = 0
        original = self._profiler.capture_once

        def counted() -> None:
            self._captures += 1
            original()

        self._profiler._scheduler._capture = counted

    def start(self) -> None:
        self._profiler.start()

    def thread(self) -> threading.Thread | None:
        return self._profiler._scheduler._thread

    def ticks(self) -> int:
        return self._captures

    def stop(self) -> None:
        self._profiler.stop(flush=True)


def measure(tool, threads: int, pairs: int, block_s: float, seed: int) -> dict:
    rng = random.Random(seed)
    off, on, cpu, hz = [], [], [], []
    with BusyThreads(threads) as busy:
        time.sleep(0.3)
        for _ in range(pairs):
            order = [False, True]
            rng.shuffle(order)
            for profiling in order:
                if profiling:
                    tool.start()
                    time.sleep(0.05)  # the profiler thread is up
                    thread, ticks0 = tool.thread(), tool.ticks()
                    c0 = thread_cpu_ns(thread)
                count0, t0 = busy.total(), time.perf_counter()
                time.sleep(block_s)
                count1, t1 = busy.total(), time.perf_counter()
                (on if profiling else off).append((count1 - count0) / (t1 - t0))
                if profiling:
                    c1 = thread_cpu_ns(thread)
                    hz.append((tool.ticks() - ticks0) / (t1 - t0))
                    if c0 is not None and c1 is not None:
                        cpu.append(100.0 * (c1 - c0) / ((t1 - t0) * 1e9))
                    tool.stop()
    return {"off": off, "on": on, "cpu_pct": cpu, "hz": hz}


def main(argv: list[str]) -> int:
    which = argv[0]
    if which == "probe":
        from importlib.metadata import version

        print(json.dumps({"version": version("opentelemetry-sdk-extension-profiling")}))
        return 0
    thread_counts = [int(x) for x in argv[1].split(",")]
    pairs, block_s, seed = int(argv[2]), float(argv[3]), int(argv[4])
    tool = Ours() if which == "ours" else Theirs()
    out = {str(n): measure(tool, n, pairs, block_s, seed + n) for n in thread_counts}
    print(json.dumps({"tool": tool.name, "results": out}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
