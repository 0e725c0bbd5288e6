"""A soak run, not a test: `python -m tests.soak SECONDS`, from the repository root.

It hammers the HTTP surface the way the load benchmark did when it once hit a segmentation fault
inside CPython 3.11 (README, Known limits): busy threads, threads that start and end all the time,
an asyncio loop, and clients polling goroutine dumps at every debug level, CPU profiles, cmdline
and symbol. Run it with core dumps on (`ulimit -c unlimited`); faulthandler prints every
thread's stack if the process crashes, or if it is still running 60 s after its end.
"""

from __future__ import annotations

import asyncio
import faulthandler
import random
import sys
import threading
import time
import urllib.request

import duragraph_pprof
from bench.workloads import BusyThreads

PATHS = ("goroutine?debug=0", "goroutine?debug=1", "goroutine?debug=2", "", "cmdline",
         "symbol", "profile?seconds=20")


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
    print(f"soak: {seconds:g} s survived, {len(errors)} failed requests")
    for line in errors[:10]:
        print(f"  {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
