"""Target 6: one core for all. An HTTP CPU profile alone, against the same HTTP profile with a gRPC
GetProfile pull of the same window and the OTLP push (to a real Collector on loopback) all
overlapping; and a block with no profiler, for the application's throughput loss.

Each block starts a fresh profiler (`duragraph_pprof.start`) before its window, so start-up is
outside the measurement. Per block: the busy workload's throughput, and the profiler's CPU (the
process's CPU less the busy threads' own kernel CPU clocks), over the window. The three kinds of
block are interleaved in a fresh random order per repetition.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
import threading
import time

import duragraph_pprof

from .report import Row, fmt, interleave, summarize
from .workloads import BusyThreads

BUSY = 2
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@contextlib.contextmanager
def _sink():
    """(environ for the push, what it is) with a real Collector, or (None, why not)."""
    try:
        from tests.support.collector import running_collector
    except ImportError as exc:
        yield None, f"no Collector harness: {exc}"
        return
    with tempfile.TemporaryDirectory(prefix="bench-otelcol-") as tmp:
        try:
            cm = running_collector(tmp)
            collector = cm.__enter__()
        except Exception as exc:  # noqa: BLE001 - reported in the row
            yield None, f"the Collector could not start: {str(exc)[:200]}"
            return
        try:
            yield {"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://{collector.grpc_endpoint}",
                   "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
                   "OTEL_SERVICE_NAME": "bench"}, "a real OpenTelemetry Collector on loopback"
        finally:
            cm.__exit__(None, None, None)


def rows(window_s: int, reps: int) -> list[Row]:
    name = f"one core for all: HTTP {window_s} s CPU profile + gRPC pull + OTLP push"
    with _sink() as (push_env, sink), BusyThreads(BUSY) as busy:
        if push_env is None:
            return [Row(name, "not measured", "<= 1.1x one alone", None, sink)]
        time.sleep(0.5)
        pushes: list[int] = []
        runs = interleave({
            "none": lambda: _block(busy, window_s, None),
            "http": lambda: _block(busy, window_s, {}),
            "all": lambda: _block(busy, window_s, push_env, pushes),
        }, reps)
    thr = {k: [r[0] for r in v] for k, v in runs.items()}
    cpu = {k: [r[1] for r in v] for k, v in runs.items()}
    ticks = {k: summarize([r[2] for r in v]) for k, v in runs.items() if k != "none"}
    loss = {k: summarize([100.0 * (1 - x / n) for x, n in zip(thr[k], thr["none"])])
            for k in ("http", "all")}
    cpu_ratio = summarize([a / h for a, h in zip(cpu["all"], cpu["http"]) if h > 0])
    extra = summarize([100.0 * (1 - a / h) for a, h in zip(thr["all"], thr["http"])])
    return [
        Row(f"{name}: profiler CPU vs HTTP alone", fmt(cpu_ratio, "x"), "<= 1.1x",
            cpu_ratio.median <= 1.1,
            f"process CPU less the {BUSY} busy threads' own, per window, paired by repetition; "
            f"HTTP alone {fmt(summarize(cpu['http']), ' % of a core')}, all three "
            f"{fmt(summarize(cpu['all']), ' % of a core')}, of which the one sampler's ticks "
            f"{ticks['http'].median:.2f} % and {ticks['all'].median:.2f} % (the rest is encoding "
            f"and transport); no profiler "
            f"{fmt(summarize(cpu['none']), ' % of a core')} (the bench's own threads); push "
            f"every {window_s / 3:g} s to {sink}, {sum(pushes)} profile requests accepted"),
        Row(f"{name}: throughput lost vs no profiler",
            f"all {loss['all'].median:.2f} % vs HTTP alone {loss['http'].median:.2f} %",
            "context", None,
            f"all three {fmt(loss['all'], ' %')}; HTTP alone {fmt(loss['http'], ' %')}; all "
            f"three vs HTTP alone, paired: {fmt(extra, ' %')}; {BUSY} busy threads"),
    ]


def _block(busy: BusyThreads, seconds: int, push_env: dict | None,
           pushes: list[int] | None = None) -> tuple[float, float, float]:
    profiler = None
    if push_env is not None:
        env = dict(push_env)
        if env:
            env["DURAGRAPH_PPROF_PUSH_INTERVAL"] = f"{seconds / 3:g}"
        # both listeners in both kinds of block: only the consumers differ
        profiler = duragraph_pprof.start("serve", environ=env, http_addr="127.0.0.1:0",
                                         grpc_addr="127.0.0.1:0")
    try:
        time.sleep(0.3)  # start-up settles outside the window
        clients = _clients(profiler, seconds, bool(push_env)) if profiler is not None else []
        p0, b0 = time.process_time_ns(), busy.cpu_ns()  # this process only: not the clients
        s0 = _sampler_cpu(profiler)
        count0, t0 = busy.total(), time.perf_counter()
        for c in clients:
            c.start()
        if clients:
            for c in clients:
                c.join(timeout=seconds + 30)
        else:
            time.sleep(seconds)
        count1, t1 = busy.total(), time.perf_counter()
        p1, b1 = time.process_time_ns(), busy.cpu_ns()
        s1 = _sampler_cpu(profiler)
        if pushes is not None and profiler is not None and profiler.push is not None:
            queue = profiler.push.queue
            pushes.append(getattr(queue.stats(), "sent", 0) if queue is not None else 0)
    finally:
        if profiler is not None:
            profiler.stop()
    for c in clients:
        if getattr(c, "error", None):
            raise RuntimeError(f"a profile request failed: {c.error}")
    wall = t1 - t0
    return ((count1 - count0) / wall, 100.0 * ((p1 - p0) - (b1 - b0)) / (wall * 1e9),
            100.0 * (s1 - s0) / (wall * 1e9))


def _sampler_cpu(profiler) -> int:
    """The shared sampler's own CPU so far (its self-measurement; 0 without a profiler)."""
    return profiler.core.sampler.stats().cpu_ns if profiler is not None else 0


class _Client(threading.Thread):
    """One profile request from another process, as curl or grpcurl would make it: the client's
    own CPU is not the profiler's."""

    def __init__(self, args: list[str], seconds: int) -> None:
        super().__init__(daemon=True, name="bench-client")
        self._args, self._seconds = args, seconds
        self.error = ""

    def run(self) -> None:
        try:
            done = subprocess.run([sys.executable, "-m", "bench.onecore_client", *self._args],
                                  capture_output=True, text=True, check=False,
                                  timeout=self._seconds + 60,
                                  cwd=ROOT)
            if done.returncode != 0:
                self.error = done.stderr.strip()[-300:] or f"exit {done.returncode}"
        except Exception as exc:  # noqa: BLE001 - reported by the caller
            self.error = f"{type(exc).__name__}: {exc}"


def _clients(profiler, seconds: int, with_grpc: bool) -> list[_Client]:
    host, port = profiler.http_address[:2]
    out = [_Client(["http", f"http://{host}:{port}/debug/pprof/profile?seconds={seconds}"],
                   seconds)]
    if with_grpc:
        out.append(_Client(["grpc", f"127.0.0.1:{profiler.grpc_address[1]}", str(seconds)],
                           seconds))
    return out


os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "0")
