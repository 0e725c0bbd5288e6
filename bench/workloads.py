"""Workloads shared by the benchmarks: busy pure-Python threads with progress counters, idle
threads and idle asyncio tasks, and a mix of call paths deep enough to look like an application.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable

from duragraph_pprof.core.threads import thread_cpu_ns

DEPTH = 20  # frames below each busy thread's entry point, a modest application stack


def spin(n: int) -> int:
    x = 0
    for i in range(n):
        x += i * i
    return x


def _descend(depth: int, leaf: Callable[[], None]) -> None:
    if depth <= 0:
        leaf()
    else:
        _descend(depth - 1, leaf)


class BusyThreads:
    """N threads doing small units of pure-Python work DEPTH frames deep, counting the units."""

    def __init__(self, n: int, unit: int = 400) -> None:
        self.counts = [0] * n
        self._stop = threading.Event()
        self._unit = unit
        self._threads = [threading.Thread(target=self._run, args=(i,), name=f"busy-{i}",
                                          daemon=True) for i in range(n)]

    def __enter__(self) -> BusyThreads:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join()

    def total(self) -> int:
        return sum(self.counts)

    def cpu_ns(self) -> int:
        """The workers' CPU time together, from the kernel's per-thread clocks."""
        return sum(thread_cpu_ns(t.native_id) or 0 for t in self._threads)

    def _run(self, index: int) -> None:
        _descend(DEPTH, lambda: self._loop(index))

    def _loop(self, index: int) -> None:
        counts, stop, unit = self.counts, self._stop, self._unit
        n = 0
        while not stop.is_set():
            spin(unit)
            n += 1
            counts[index] = n


class IdleCrowd:
    """`threads` threads parked on an event `depth` frames below their entry point and `tasks`
    asyncio tasks awaiting a future, on one event loop in its own thread."""

    def __init__(self, threads: int, tasks: int, depth: int = 5) -> None:
        self._depth = depth
        self._release = threading.Event()
        self._threads = [threading.Thread(target=self._park, name=f"idle-{i}", daemon=True)
                         for i in range(threads)]
        self._tasks = tasks
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._loop_thread = threading.Thread(target=self._serve, name="idle-loop", daemon=True)
        self._done: asyncio.Future | None = None

    def __enter__(self) -> IdleCrowd:
        previous = threading.stack_size(256 * 1024)  # 1,000 threads: keep address space small
        try:
            for t in self._threads:
                t.start()
        finally:
            threading.stack_size(previous)
        self._loop_thread.start()
        self._ready.wait()
        return self

    def __exit__(self, *exc: object) -> None:
        self._release.set()
        self._loop.call_soon_threadsafe(self._finish)
        for t in self._threads:
            t.join()
        self._loop_thread.join()
        self._loop.close()

    def _park(self) -> None:
        _descend(self._depth, self._release.wait)

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._main())

    async def _main(self) -> None:
        self._done = self._loop.create_future()
        tasks = [asyncio.ensure_future(_idle_task(self._done), loop=self._loop)
                 for _ in range(self._tasks)]
        await asyncio.sleep(0)
        self._ready.set()
        await asyncio.gather(*tasks)

    def _finish(self) -> None:
        if self._done is not None and not self._done.done():
            self._done.set_result(None)


async def _idle_task(done: asyncio.Future) -> None:
    await _idle_inner(done)


async def _idle_inner(done: asyncio.Future) -> None:
    await done


class VariedThreads(BusyThreads):
    """Busy threads that wander between several call paths, so a profile has many stacks."""

    def _loop(self, index: int) -> None:
        counts, stop = self.counts, self._stop
        n = 0
        while not stop.is_set():
            _descend(n % 7, _PATHS[(n + index) % len(_PATHS)])
            n += 1
            counts[index] = n


def _parse() -> None:
    text = ",".join(str(i) for i in range(300))
    sum(int(x) for x in text.split(","))


def _sort() -> None:
    sorted((i * 7919) % 1000 for i in range(500))


def _build() -> None:
    {str(i): [i, i + 1] for i in range(200)}


def _compute() -> None:
    spin(800)


_PATHS = (_parse, _sort, _build, _compute)


class Waker:
    """The control for the sampler's overhead: a plain thread that wakes at `hz` and does nothing
    but take the GIL, so the cost of the hand-off alone can be told apart from the sampler's work.
    It keeps the same deadline schedule as the sampler."""

    def __init__(self, hz: int = 100) -> None:
        self._interval = 1.0 / hz
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.wakes = 0

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="control-waker", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _run(self) -> None:
        interval, stop = self._interval, self._stop
        deadline = time.monotonic()
        give_up = deadline + 600.0  # bounded even if nobody stops it
        while not stop.is_set() and deadline < give_up:
            self.wakes += 1
            deadline += interval
            time.sleep(max(0.0, deadline - time.monotonic()))
