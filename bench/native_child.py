"""The child processes of the native sampler's rows: `python native_child.py MODE ARGS`.

- `ours|theirs SCENARIO PAIRS BLOCK_S SEED BUDGET`: the process-CPU comparison at 100 Hz. `ours`
  runs the native sampler in the project's environment; `theirs` runs pyroscope-io's stack
  backend in its own virtual environment (it imports nothing of ours but the workloads). Per pair,
  one block without a profiler and one with it, in a random order; each block records the
  process CPU, the workers' CPU and their units of work.
- `demo SECONDS BLOCK_S HEAP`: `duragraph-pprof dev` on the demo workload, listeners off; every
  block, the effective rate and the share of the CPU profile whose leaf is a blocking wait.
- `probe`: pyroscope-io's version.

One JSON line on stdout.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import random
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.workloads import DEPTH, BusyThreads, IdleCrowd

HZ = 100
# leaves that mean "this thread was waiting": CPU charged here burnt somewhere else
WAITS = ("threading.Condition.wait", "threading.Event.wait", "threading.Thread.join",
         "threading.Thread._wait_for_tstate_lock", "threading.Semaphore.acquire",
         "queue.Queue.get", "selectors.EpollSelector.select", "selectors.SelectSelector.select")


def tasks_cpu_ns(tids: set[int] | None = None) -> dict[int, int]:
    """Each of this process's threads (or the given ones): its CPU so far, from schedstat."""
    out = {}
    for name in os.listdir("/proc/self/task"):
        tid = int(name)
        if tids is not None and tid not in tids:
            continue
        try:
            with open(f"/proc/self/task/{tid}/schedstat", encoding="ascii") as f:
                out[tid] = int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            pass
    return out


class Ours:
    name = "duragraph-pprof (native sampler)"

    def __init__(self, budget: float) -> None:
        from duragraph_pprof.core.native import NativeSampler

        self._sampler = NativeSampler(HZ, budget)
        self._window = None

    def start(self) -> None:
        self._window = self._sampler.open_window()

    def ticks(self) -> int | None:
        return self._sampler.stats().ticks

    def own_cpu_ns(self) -> int:
        return self._sampler.stats().cpu_ns

    def stop(self) -> None:
        if self._window is not None:
            self._window.close()
            self._window = None
        self._sampler.stop()


class Theirs:
    """pyroscope-io with its stack backend at a fixed 10 ms (adaptive sampling off), its other
    settings left as they are; it uploads to a closed loopback port, so nothing leaves."""

    name = "pyroscope-io (ProfilerImplementation.Stack)"

    def __init__(self, budget: float) -> None:
        import pyroscope

        self._p = pyroscope
        if not pyroscope.configure_experimental_stack_profiler(adaptive_sampling=False):
            raise SystemExit("configure_experimental_stack_profiler refused")

    def start(self) -> None:
        ok = self._p.configure(application_name="duragraph-bench",
                               server_address="http://127.0.0.1:9", sample_rate=HZ,
                               cpu_implementation=self._p.ProfilerImplementation.Stack)
        if not ok:
            raise SystemExit("pyroscope.configure refused")

    def ticks(self) -> int | None:
        return None  # it does not say how often it sampled

    def own_cpu_ns(self) -> int | None:
        return None

    def stop(self) -> None:
        self._p.shutdown()


def compare(tool, scenario: str, pairs: int, block_s: float, seed: int) -> dict:
    rng = random.Random(seed)
    out: dict[str, list] = {"off": [], "on": [], "hz": [], "own_pct": [], "threads_pct": []}
    busy = BusyThreads(10 if scenario == "busy10" else 1)
    crowd = IdleCrowd(1000, 10_000) if scenario == "crowd" else None
    with busy:
        if crowd is not None:
            crowd.__enter__()
        try:
            gc.freeze()  # the crowd's objects out of the collector's way: less noise per block
            time.sleep(0.5)  # the workers settle
            for _ in range(pairs):
                order = [False, True]
                rng.shuffle(order)
                for profiling in order:
                    _block(tool, busy, block_s, profiling, out)
        finally:
            if crowd is not None:
                crowd.__exit__(None, None, None)
    return out


def _block(tool, busy: BusyThreads, block_s: float, profiling: bool, out: dict) -> None:
    before = set(tasks_cpu_ns())
    if profiling:
        tool.start()
        time.sleep(0.1)  # its threads are up; their start-up is not counted
    mine = set(tasks_cpu_ns()) - before  # the profiler's own threads
    # reading /proc gives the GIL up at each file, and with busy threads each take back waits up
    # to a switch interval: those reads go outside the span the other figures share, with their
    # own timestamps (ticks counted between a read and a later t0 made 10 busy threads read
    # 115-142 Hz)
    th0, tt0 = tasks_cpu_ns(mine), time.monotonic_ns()
    ticks0, own0 = tool.ticks(), tool.own_cpu_ns()
    p0, b0, w0, t0 = time.process_time_ns(), busy.cpu_ns(), busy.total(), time.monotonic_ns()
    time.sleep(block_s)
    p1, b1, w1, t1 = time.process_time_ns(), busy.cpu_ns(), busy.total(), time.monotonic_ns()
    ticks1, own1 = tool.ticks(), tool.own_cpu_ns()
    tt1, th1 = time.monotonic_ns(), tasks_cpu_ns(mine)
    out["on" if profiling else "off"].append([p1 - p0, b1 - b0, w1 - w0, t1 - t0])
    if profiling:
        if ticks0 is not None and ticks1 is not None:
            out["hz"].append((ticks1 - ticks0) * 1e9 / (t1 - t0))
        if own0 is not None and own1 is not None:
            out["own_pct"].append(100.0 * (own1 - own0) / (t1 - t0))
        out["threads_pct"].append(100.0 * sum(th1.get(t, 0) - th0.get(t, 0) for t in th1)
                                  / (tt1 - tt0))
        tool.stop()


def demo(seconds: float, block_s: float, heap: str) -> dict:
    import duragraph_pprof
    from duragraph_pprof.core.sampler import INTERNAL_PREFIX
    from duragraph_pprof.demo import run_demo

    profiler = duragraph_pprof.start("dev", environ={}, http_addr="off", grpc_addr="off",
                                     heap=heap)
    sampler = profiler.core.sampler
    out: dict[str, list] = {"hz": [], "own_pct": [], "dropped": [], "wait_pct": []}
    tops: dict[str, int] = {}
    waiters: dict[str, int] = {}  # thread name -> CPU charged to its waits
    done = threading.Event()

    def measure() -> None:
        window = sampler.open_window()
        if not done.wait(1.0):  # the demo's threads start
            window.take()
        while not done.is_set():
            s0, t0 = sampler.stats(), time.monotonic_ns()
            if done.wait(block_s):
                break
            s1, t1 = sampler.stats(), time.monotonic_ns()
            cpu, _ = window.take()
            out["hz"].append((s1.ticks - s0.ticks) * 1e9 / (t1 - t0))
            out["own_pct"].append(100.0 * (s1.cpu_ns - s0.cpu_ns) / (t1 - t0))
            out["dropped"].append(s1.dropped - s0.dropped)
            total = waits = 0
            for sample in cpu.samples:
                ns = sample.values[1]
                total += ns
                leaf = sample.stack[0].function if sample.stack else ""
                tops[leaf] = tops.get(leaf, 0) + ns
                if leaf in WAITS:
                    waits += ns
                    who = dict(sample.labels).get("thread.name", "?")
                    waiters[who] = waiters.get(who, 0) + ns
            out["wait_pct"].append(100.0 * waits / total if total else 0.0)
        window.close()

    meter = threading.Thread(target=measure, name=f"{INTERNAL_PREFIX}-bench-meter", daemon=True)
    with open(os.devnull, "w") as null, contextlib.redirect_stdout(null):  # the demo's help
        meter.start()
        try:
            run_demo(profiler, seconds)
        finally:
            done.set()
            meter.join()
    profiler.stop()
    total = sum(tops.values()) or 1
    leaves = sorted(tops.items(), key=lambda kv: -kv[1])[:4]
    out["top"] = [[name, round(100.0 * ns / total, 1)] for name, ns in leaves]
    out["waiters"] = [[name, round(100.0 * ns / total, 2)]
                      for name, ns in sorted(waiters.items(), key=lambda kv: -kv[1])]
    out["sampler"] = sampler.describe()
    out["budget"] = profiler.config.cpu_budget
    return out


def main(argv: list[str]) -> int:
    which = argv[0]
    if which == "probe":
        from importlib.metadata import version

        print(json.dumps({"version": version("pyroscope-io")}))
        return 0
    if which == "demo":
        print(json.dumps(demo(float(argv[1]), float(argv[2]), argv[3])))
        return 0
    scenario, pairs, block_s, seed, budget = argv[1], int(argv[2]), float(argv[3]), int(argv[4]), \
        float(argv[5])
    tool = Ours(budget) if which == "ours" else Theirs(budget)
    result = compare(tool, scenario, pairs, block_s, seed)
    print(json.dumps({"tool": tool.name, "depth": DEPTH, "results": result}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
