"""A soak run: `python -m tests.soak SECONDS`, from the repository root (scripts/test.sh runs it).

It hammers the profiler the way the load benchmark did when it once hit a segmentation fault
inside CPython 3.11 (README, Known limits), with the native sampler and the sampled heap on: busy
threads, threads that start and end all the time, an asyncio loop, garbage-collector pressure,
and clients polling goroutine dumps at every debug level, CPU and wall profiles, traces, the
heap, cmdline and symbol. faulthandler prints every thread's stack if the process crashes, or if
it is still running 60 s after its end. It exits non-zero if any request failed.
"""

from __future__ import annotations

import asyncio
import faulthandler
import gc
import random
import sys
import threading
import time
import urllib.request

import duragraph_pprof
from tests.support.threads import BusyThreads

PATHS = ("goroutine?debug=0", "goroutine?debug=1", "goroutine?debug=2", "", "cmdline",
         "symbol", "profile?seconds=20", "wall?seconds=3", "trace?seconds=2", "heap",
         "allocs?debug=1", "heap?gc=1")


def _churn(stop: threading.Event) -> None:
    while not stop.is_set():
        born = [threading.Thread(target=sum, args=(range(random.randint(100, 20_000)),))
                for _ in range(5)]
        for t in born:
            t.start()
        for t in born:
            t.join()


def _tasks(stop: threading.Event) -> None:
    async def leaf() -> None:
        await asyncio.sleep(random.random() / 100)

    async def main() -> None:
        while not stop.is_set():
            await asyncio.gather(*(leaf() for _ in range(50)))

    asyncio.run(main())


def _garbage(stop: threading.Event) -> None:
    """Cycles for the collector, and allocations for the heap sampler, all the time."""
    while not stop.is_set():
        for _ in range(2000):
            a: dict = {}
            b = {"a": a, "payload": "x" * random.randint(10, 5000)}
            a["b"] = b
        gc.collect(random.randint(0, 2))


def _poll(stop: threading.Event, url: str, errors: list[str]) -> None:
    while not stop.is_set():
        try:
            with urllib.request.urlopen(url, timeout=60) as response:
                response.read()
        except Exception as exc:  # noqa: BLE001 - counted, the soak goes on
            errors.append(f"{url}: {exc}")


def main(argv: list[str]) -> int:
    seconds = float(argv[0]) if argv else 60.0
    faulthandler.enable()
    faulthandler.dump_traceback_later(seconds + 60, exit=True)
    profiler = duragraph_pprof.start("serve", environ={}, http_addr="127.0.0.1:0",
                                     grpc_addr=None)
    base = f"http://127.0.0.1:{profiler.http_address[1]}/debug/pprof/"
    stop = threading.Event()
    errors: list[str] = []
    jobs = [threading.Thread(target=_churn, args=(stop,)) for _ in range(2)]
    jobs.append(threading.Thread(target=_tasks, args=(stop,)))
    jobs.append(threading.Thread(target=_garbage, args=(stop,)))
    jobs += [threading.Thread(target=_poll, args=(stop, base + path, errors)) for path in PATHS]
    try:
        with BusyThreads(2):
            for job in jobs:
                job.start()
            time.sleep(seconds)
            stop.set()
            for job in jobs:
                job.join()
    finally:
        stop.set()
        profiler.stop()
    faulthandler.cancel_dump_traceback_later()
    stats = profiler.core.sampler.stats()
    print(f"soak: {seconds:g} s survived, {len(errors)} failed requests, "
          f"sampler {profiler.core.sampler.describe()} took {stats.ticks} ticks")
    for line in errors[:10]:
        print(f"  {line}")
    return 1 if errors or not stats.ticks else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
