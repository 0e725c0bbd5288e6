"""Issue 6, load: 50 concurrent loopback clients (in another process) hammer the cheap HTTP
endpoints (index, cmdline, goroutine?debug=1, symbol) while the application runs a CPU workload.
Blocks with and without the clients alternate; rows: errors (503 busy answers counted apart), the
listener's peak thread count against its bound, and the application's throughput loss."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

import duragraph_pprof

from .report import Row, fmt, summarize
from .workloads import BusyThreads

CLIENTS = 50
BUSY = 2
PREFIX = "duragraph-pprof-http"
CLIENT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "load_client.py")


class _Peak(threading.Thread):
    """Counts the listener's threads 20 times a second (the same in both kinds of block)."""

    def __init__(self, seconds_max: float) -> None:
        super().__init__(daemon=True, name="bench-thread-count")
        self.peak = 0
        self.peak_total = 0
        self._halt = threading.Event()
        self._limit = seconds_max

    def run(self) -> None:
        end = time.monotonic() + self._limit
        while not self._halt.wait(0.05) and time.monotonic() < end:
            names = [t.name for t in threading.enumerate()]
            self.peak = max(self.peak, sum(n.startswith(PREFIX) for n in names))
            self.peak_total = max(self.peak_total, len(names))

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=5)


def rows(total_s: float, blocks: int) -> list[Row]:
    block_s = total_s / blocks
    profiler = duragraph_pprof.start("serve", environ={}, http_addr="127.0.0.1:0", grpc_addr=None)
    bound = profiler.config.http_threads
    port = profiler.http_address[1]
    counts: dict[str, int] = {}
    quiet, loud = [], []
    peak = _Peak(4 * total_s + 120)
    try:
        with BusyThreads(BUSY) as busy:
            time.sleep(0.5)
            base_threads = threading.active_count()
            peak.start()
            for i in range(2 * blocks):
                with_clients = i % 2 == 1
                if i >= 2 and i % 4 in (2, 3):  # ABBA: neither kind always goes first
                    with_clients = not with_clients
                figure = _block(busy, port, block_s, counts) if with_clients else \
                    _quiet(busy, block_s)
                (loud if with_clients else quiet).append(figure)
            peak.stop()
    finally:
        profiler.stop()
    ok = counts.get("200", 0)
    busy_503 = counts.get("503", 0)
    errors = {k: v for k, v in counts.items() if k not in ("200", "503")}
    n_err = sum(errors.values())
    loss = summarize([100.0 * (1 - a / b) for a, b in zip(loud, quiet)])
    rate = (ok + busy_503 + n_err) / (block_s * blocks)
    name = f"load: {CLIENTS} loopback clients on cheap endpoints, {total_s:g} s"
    return [
        Row(f"{name}: errors", f"{n_err} errors in {ok + busy_503 + n_err:,} requests",
            "0 errors", n_err == 0,
            f"{ok:,} answered 200, {busy_503:,} answered 503 busy (the pool's bound), "
            f"other outcomes: {errors or 'none'}; {rate:,.0f} requests/s; index, cmdline, "
            f"goroutine?debug=1, symbol in turn, a new connection per request"),
        Row(f"{name}: listener threads, peak", f"{peak.peak} (bound {bound} workers + 2)",
            f"<= {bound + 2}", peak.peak <= bound + 2,
            f"threads named {PREFIX}*, counted 20 times a second; the process's peak "
            f"{peak.peak_total} threads vs {base_threads} before the clients"),
        Row(f"{name}: application throughput lost", fmt(loss, " %"), "measure and report it",
            None,
            f"{BUSY} busy threads, {block_s:g} s blocks with and without the clients, "
            f"alternating (ABBA); the clients' process shares the machine's "
            f"{os.cpu_count()} cores, so part of this is their CPU, not the listener's"),
    ]


def _quiet(busy: BusyThreads, seconds: float) -> float:
    count0, t0 = busy.total(), time.perf_counter()
    time.sleep(seconds)
    return (busy.total() - count0) / (time.perf_counter() - t0)


def _block(busy: BusyThreads, port: int, seconds: float, counts: dict[str, int]) -> float:
    proc = subprocess.Popen([sys.executable, CLIENT, str(port), str(CLIENTS), str(seconds)],
                            stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None
        proc.stdout.readline()  # "ready": the clients are about to start
        figure = _quiet(busy, seconds)
        out, _ = proc.communicate(timeout=seconds + 60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    for key, value in json.loads(out.strip().splitlines()[-1]).items():
        counts[key] = counts.get(key, 0) + value
    return figure
