"""Load: 50 concurrent clients hammer the cheap endpoints while the application runs a CPU
workload. No errors (503 "busy" is the documented answer past the worker bound, and is counted),
the listener never grows past its thread bound, and the application's throughput loss is
measured and printed. The 60 s figure for the benchmark table comes from bench/."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

from support import TESTS

import duragraph_pprof

CLIENTS = 50
SECONDS = 10.0
HELPERS = 1  # the front: one loop that accepts and reads every request


class Workload:
    """The application: a CPU-bound loop counting its iterations."""

    def __init__(self) -> None:
        self.done = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="application")

    def _run(self) -> None:
        while not self._stop.is_set():
            sum(i * i for i in range(2000))
            self.done += 1

    def rate(self, seconds: float) -> float:
        before, began = self.done, time.monotonic()
        time.sleep(seconds)
        return (self.done - before) / (time.monotonic() - began)

    def __enter__(self) -> Workload:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def hammer(profiler, seconds: float, clients: int) -> tuple[subprocess.Popen, str, int]:
    """Start the client process against the profiler's HTTP listener."""
    host, port = profiler.http_address[:2]
    process = subprocess.Popen(
        [sys.executable, "-m", "support.load_clients", host, str(port), str(seconds),
         str(clients)], cwd=TESTS, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return process, host, port


def test_fifty_clients_on_the_cheap_endpoints_while_the_application_computes():
    profiler = duragraph_pprof.start("serve", environ={}, http_addr="127.0.0.1:0")
    bound = profiler.config.http_threads + HELPERS
    try:
        with Workload() as app:
            baseline = app.rate(3.0)
            process, _, _ = hammer(profiler, SECONDS, CLIENTS)
            most, before, began = 0, app.done, time.monotonic()
            while process.poll() is None and time.monotonic() - began < SECONDS + 60:
                listener = [t for t in threading.enumerate()
                            if t.name.startswith("duragraph-pprof-http")]
                most = max(most, len(listener))
                time.sleep(0.05)
            loaded = (app.done - before) / (time.monotonic() - began)
            out, err = process.communicate(timeout=60)
        report = json.loads(out.strip().splitlines()[-1]) if out.strip() else {}
        assert process.returncode == 0, err
    finally:
        profiler.stop()
    loss = 1 - loaded / baseline
    busy = report["statuses"].get("503", 0)
    print(f"\nload: {CLIENTS} clients, {SECONDS:g} s: {report['requests']} requests "
          f"({report['requests'] / SECONDS:.0f}/s), statuses {report['statuses']}, "
          f"failures {report['failures']}, p50 {report['p50_ms']:.1f} ms, "
          f"p99 {report['p99_ms']:.1f} ms, max {report['max_ms']:.0f} ms; "
          f"listener threads <= {most} (bound {bound}); application {baseline:.0f} -> "
          f"{loaded:.0f} ops/s, loss {loss:.0%}; 503 busy: {busy}")
    assert report["failures"] == {}, report
    assert set(report["statuses"]) <= {"200", "503"}, report
    assert busy <= 0.01 * report["requests"], report  # a burst waits for a worker (BUSY_WAIT)
    assert report["statuses"].get("200", 0) > 1000, report
    assert most <= bound, (most, bound)
    assert loaded > 0.2 * baseline, (baseline, loaded)  # slowed, never starved
