"""Fakes shared by several test modules: a profiling core for the exporter and the metrics,
and a gRPC servicer context for driving the servicer without a server."""

from __future__ import annotations

from duragraph_pprof.core.snapshot import Frame, Profile, Sample, ValueType


# -- a profiling core: a sampler with windows, a heap, goroutine counts --------------------------
class FakeSampler:
    """Fixed self-statistics; every window it opens is kept for the test to inspect."""

    implementation = "native"

    def __init__(self):
        self.windows = []

    def stats(self):
        return type("Stats", (), {"cpu_ns": 2_500_000_000, "samples": 40, "dropped": 3,
                                  "effective_hz": 42.5})()

    def open_window(self):
        window = FakeWindow()
        self.windows.append(window)
        return window


class FakeHeap:
    """tracemalloc-style (used, peak) statistics, or None for heap tracing off."""

    def __init__(self, stats=(1000, 5000)):
        self._stats = stats

    def stats(self):
        return self._stats

    def profile(self):
        return None


class FakeCore:
    """What the pusher and the self-metrics read of the profiling core, and nothing more."""

    def __init__(self, heap_stats=(1000, 5000)):
        self.sampler = FakeSampler()
        self.heap = FakeHeap(heap_stats)

    def goroutine_counts(self):
        return 5, 2


class FakeWindow:
    """A sampler window giving one CPU profile with a sample and one empty wall profile."""

    def __init__(self):
        self.taken = 0
        self.closed = False

    def _profiles(self):
        frame = Frame("app.burn", "/app.py", 3, 1)
        cpu = ValueType("cpu", "nanoseconds")
        sample = Sample((frame,), (1, 10_000_000), (("thread.id", "1"),))
        return (
            Profile((ValueType("samples", "count"), cpu), cpu, 10_000_000, (sample,), 1, 2),
            Profile((ValueType("samples", "count"), cpu), cpu, 10_000_000, (), 1, 2),
        )

    def take(self):
        self.taken += 1
        return self._profiles()

    def close(self):
        self.closed = True
        return self.take()


# -- a gRPC servicer context ---------------------------------------------------------------------
class Aborted(Exception):
    """What `FakeContext.abort` raises, with the status code and details."""

    def __init__(self, code, details):
        super().__init__(code, details)
        self.code, self.details = code, details


class FakeContext:
    """Just enough of grpc.ServicerContext to drive the servicer without a server."""

    def __init__(self):
        self._callbacks, self.ended = [], False

    def add_callback(self, callback):
        if self.ended:
            return False
        self._callbacks.append(callback)
        return True

    def abort(self, code, details):
        raise Aborted(code, details)

    def end(self):
        self.ended = True
        for callback in self._callbacks:
            callback()
