"""The demo workload that `duragraph-pprof dev` runs with no program: threads, asyncio tasks,
allocations and lock contention, so every profile has something to show."""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
import sys
import threading
import time

_retained: list[bytes] = []  # grows slowly: the heap diff in the README finds it


def burn_cpu(stop: threading.Event) -> None:
    data = b"duragraph"
    while not stop.wait(0.05):  # busy about two thirds of the time, not a whole core
        deadline = time.monotonic() + 0.1
        while time.monotonic() < deadline:
            data = hashlib.sha256(data).digest()


def leak_memory(stop: threading.Event) -> None:
    while not stop.wait(0.1):
        _retained.append(os.urandom(64 * 1024))
        del _retained[:-1000]  # bounded (64 MiB), so the demo can run all day


def contend(lock: threading.Lock, stop: threading.Event) -> None:
    while not stop.is_set():
        with lock:
            time.sleep(0.01)  # hold the lock so the other worker waits


async def handle_request(n: int, queue: asyncio.Queue) -> None:
    while True:
        await queue.get()


async def serve_forever(stop: threading.Event) -> None:
    queue: asyncio.Queue = asyncio.Queue()
    tasks = [asyncio.create_task(handle_request(n, queue), name=f"request-{n}") for n in range(8)]
    while not stop.is_set():
        await asyncio.sleep(0.05)
        queue.put_nowait(1)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def run_demo(profiler, seconds: float | None = None) -> int:
    stop = threading.Event()
    lock = threading.Lock()
    workers = [
        threading.Thread(target=burn_cpu, args=(stop,), name="cpu-worker"),
        threading.Thread(target=leak_memory, args=(stop,), name="allocator"),
        threading.Thread(target=contend, args=(lock, stop), name="lock-holder-1"),
        threading.Thread(target=contend, args=(lock, stop), name="lock-holder-2"),
        threading.Thread(target=asyncio.run, args=(serve_forever(stop),), name="event-loop"),
    ]
    for worker in workers:
        worker.start()
    _print_help(profiler)
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        stop.wait(seconds)
    except KeyboardInterrupt:
        pass
    stop.set()
    for worker in workers:
        worker.join()
    return 0


def _print_help(profiler) -> None:
    lines = [f"duragraph-pprof dev: demo workload running (pid {os.getpid()}); Ctrl-C stops it"]
    if profiler.http is not None:
        url = profiler.http.url
        lines += [
            f"  pprof (HTTP): {url}",
            f"  flame graphs (browser): {url}ui/",
            "try:",
            f"  curl -s '{url}goroutine?debug=2' | grep -c '^goroutine'",
            f"  go tool pprof -top '{url}profile?seconds=5'",
            f"  go tool pprof -top '{url}wall?seconds=5'",
            f"  curl -so before.pprof {url}heap; sleep 10; curl -so after.pprof {url}heap",
            "  go tool pprof -top -base before.pprof after.pprof",
            f"  curl -so trace.json '{url}trace?seconds=2'   # open in ui.perfetto.dev",
        ]
    if profiler.grpc is not None:
        host, port = profiler.grpc.address[:2]
        lines.append(f"  grpcurl -plaintext {host}:{port} list    # gRPC, with reflection")
    sys.stdout.write("\n".join(lines) + "\n")
    sys.stdout.flush()
