"""Mutex and block profiles: sampled lock contention and blocking waits.

Off by default, as in Go. When a fraction N > 0 is set, `threading.Lock` and `threading.RLock`
return wrappers for locks created from then on, and `threading.Condition.wait` (which Event,
Semaphore, Barrier and queue.Queue wait on) is timed; 1 in N events is recorded with its stack and
values are scaled by N, like Go's fraction. Python cannot see which thread holds a lock, so both
profiles attribute the delay to the waiter's stack (Go's mutex profile names the holder).
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable

from .frames import profiler_file, stack_of
from .sampler import INTERNAL_PREFIX
from .snapshot import Profile, Sample, Stack, ValueType

CONTENTIONS = ValueType("contentions", "count")
DELAY = ValueType("delay", "nanoseconds")
MUTEX, BLOCK = "mutex", "block"


class _Recorder:
    def __init__(self, fraction: int) -> None:
        self.fraction = fraction
        self._events = 0
        self._lock = threading.Lock()  # created before patching: a real lock
        self._acc: dict[Stack, list[int]] = {}

    def record(self, delay_ns: int) -> None:
        """Never raises: it runs inside the application's lock calls."""
        try:
            if threading.current_thread().name.startswith(INTERNAL_PREFIX):
                return  # the profiler's own waits (listeners, push, sampler) are not the app's
            self._events += 1  # a lost increment under a race only shifts the sampling phase
            if self._events % self.fraction:
                return
            stack = stack_of(_caller())
            if any(profiler_file(f.filename) for f in stack):
                return  # e.g. start() waiting for its own threads to come up
            with self._lock:
                acc = self._acc.setdefault(stack, [0, 0])
                acc[0] += self.fraction
                acc[1] += delay_ns * self.fraction
        except Exception:  # noqa: BLE001, S110 - a lost sample beats an exception in app code
            pass

    def profile(self) -> Profile:
        with self._lock:
            items = sorted(self._acc.items(), key=lambda kv: tuple(f.function for f in kv[0]))
        samples = tuple(Sample(stack, tuple(values)) for stack, values in items)
        return Profile((CONTENTIONS, DELAY), CONTENTIONS, max(self.fraction, 1), samples,
                       time.time_ns())


def _caller():
    """The first frame outside this module: the code that waited, not our wrappers."""
    frame = sys._getframe(1)
    while frame is not None and frame.f_code.co_filename == __file__:
        frame = frame.f_back
    return frame


class _ProfiledLock:
    """A Lock/RLock that times contended acquisitions; everything else goes to the real lock."""

    __slots__ = ("__weakref__", "_on_wait", "_real")

    def __init__(self, real, on_wait: Callable[[int], None]) -> None:
        self._real = real
        self._on_wait = on_wait

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        if self._real.acquire(False):
            return True
        if not blocking:
            return False
        started = time.monotonic_ns()
        got = self._real.acquire(True, timeout)
        self._on_wait(time.monotonic_ns() - started)
        return got

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self._real.release()

    def release(self) -> None:
        self._real.release()

    def __getattr__(self, name: str):
        return getattr(self._real, name)

    def __repr__(self) -> str:
        return repr(self._real)


class Contention:
    def __init__(self, mutex_fraction: int, block_fraction: int) -> None:
        self._mutex = _Recorder(mutex_fraction) if mutex_fraction > 0 else None
        self._block = _Recorder(block_fraction) if block_fraction > 0 else None
        self._saved: tuple | None = None
        self._patched = None

    def profile(self, kind: str) -> Profile:
        recorder = self._mutex if kind == MUTEX else self._block
        if recorder is None:  # off: still a valid, empty profile
            return Profile((CONTENTIONS, DELAY), CONTENTIONS, 1, (), time.time_ns())
        return recorder.profile()

    def count(self, kind: str) -> int:
        return len(self.profile(kind).samples)

    def start(self) -> None:
        if self._saved is not None or (self._mutex is None and self._block is None):
            return
        real_lock, real_rlock, real_wait = threading.Lock, threading.RLock, threading.Condition.wait
        self._saved = (real_lock, real_rlock, real_wait)
        mutex, block = self._mutex, self._block

        def on_lock_wait(delay_ns: int) -> None:
            if mutex is not None:
                mutex.record(delay_ns)
            if block is not None:
                block.record(delay_ns)

        threading.Lock = self._patched = lambda: _ProfiledLock(real_lock(), on_lock_wait)  # type: ignore[misc]
        threading.RLock = lambda *a, **k: _ProfiledLock(real_rlock(*a, **k), on_lock_wait)  # type: ignore[misc]
        if block is not None:

            def wait(cond, timeout=None):
                started = time.monotonic_ns()
                try:
                    return real_wait(cond, timeout)
                finally:
                    block.record(time.monotonic_ns() - started)

            threading.Condition.wait = wait  # type: ignore[method-assign]

    def stop(self) -> None:
        if self._saved is None:
            return
        if threading.Lock is self._patched:  # a later profiler's patch stays until it stops
            threading.Lock, threading.RLock, threading.Condition.wait = self._saved  # type: ignore[misc]
        self._saved = None
