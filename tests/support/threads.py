"""Threads for the profiler to look at: targets run until the block ends, busy workers that burn
pure-Python CPU a fixed depth down, and a crowd of parked threads.

These are the tests' own, not the benchmarks' (bench/workloads.py): a benchmark may retune its
workloads without moving a test's numbers."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from duragraph_pprof.core.threads import thread_cpu_ns

DEPTH = 20  # frames below each busy thread's entry point, a modest application stack


@contextmanager
def running(*targets: Callable[[threading.Event], object]) -> Iterator[None]:
    """Run each target(stop) in its own thread, named after it, until the block ends."""
    stop = threading.Event()
    threads = [threading.Thread(target=t, args=(stop,), name=t.__name__) for t in targets]
    for t in threads:
        t.start()
    try:
        yield
    finally:
        stop.set()
        for t in threads:
            t.join()


def spin(n: int) -> int:
    x = 0
    for i in range(n):
        x += i * i
    return x


def _descend(depth: int, leaf: Callable[[], object]) -> None:
    if depth <= 0:
        leaf()
    else:
        _descend(depth - 1, leaf)


class BusyThreads:
    """N threads named busy-0.. doing small units of pure-Python work DEPTH frames deep, the
    innermost frames `BusyThreads._loop` and `spin`."""

    def __init__(self, n: int, unit: int = 400) -> None:
        self._stop = threading.Event()
        self._unit = unit
        self._threads = [threading.Thread(target=self._run, name=f"busy-{i}", daemon=True)
                         for i in range(n)]

    def __enter__(self) -> BusyThreads:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join()

    def cpu_ns(self) -> int:
        """The workers' CPU time together, from the kernel's per-thread clocks."""
        return sum(thread_cpu_ns(t.native_id) or 0 for t in self._threads)

    def _run(self) -> None:
        _descend(DEPTH, self._loop)

    def _loop(self) -> None:
        stop, unit = self._stop, self._unit
        while not stop.is_set():
            spin(unit)


class IdleCrowd:
    """`threads` threads parked on one event `depth` frames below their entry point."""

    def __init__(self, threads: int, depth: int = 5) -> None:
        self._depth = depth
        self._release = threading.Event()
        self._threads = [threading.Thread(target=self._park, name=f"idle-{i}", daemon=True)
                         for i in range(threads)]

    def __enter__(self) -> IdleCrowd:
        previous = threading.stack_size(256 * 1024)  # hundreds of threads: little address space
        try:
            for t in self._threads:
                t.start()
        finally:
            threading.stack_size(previous)
        return self

    def __exit__(self, *exc: object) -> None:
        self._release.set()
        for t in self._threads:
            t.join()

    def _park(self) -> None:
        _descend(self._depth, self._release.wait)
