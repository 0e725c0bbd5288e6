"""Mutex and block profiles: sampled lock contention and blocking waits.

Off by default, as in Go. When a fraction N > 0 is set, `threading.Lock` and `threading.RLock`
return wrappers for locks created from then on, and `threading.Condition.wait` (which Event,
Semaphore, Barrier and queue.Queue wait on) is timed; 1 in N events is recorded with its stack and
values are scaled by N, like Go's fraction. Python cannot see which thread holds a lock, so both
profiles attribute the delay to the waiter's stack (Go's mutex profile names the holder).
"""

from __future__ import annotations

import _thread
import sys
import threading
import time

from . import lockpatch
from .frames import own_frame, stack_of
from .sampler import INTERNAL_PREFIX
from .snapshot import Profile, Sample, Stack, ValueType

CONTENTIONS = ValueType("contentions", "count")
DELAY = ValueType("delay", "nanoseconds")
MUTEX, BLOCK = "mutex", "block"
_WRAPPERS = frozenset((__file__, lockpatch.__file__))


class _Recorder:
    def __init__(self, fraction: int) -> None:
        self.fraction = fraction
        self._waits = 0  # waits seen, recorded or not: every fraction-th is recorded
        self._lock = _thread.allocate_lock()  # a real lock even while another profiler patches
        self._acc: dict[Stack, list[int]] = {}

    def record(self, delay_ns: int) -> None:
        """Never raises: it runs inside the application's lock calls."""
        try:
            if threading.current_thread().name.startswith(INTERNAL_PREFIX):
                return  # the profiler's own waits (listeners, push, sampler) are not the app's
            self._waits += 1  # a lost increment under a race only shifts the sampling phase
            if self._waits % self.fraction:
                return
            stack = stack_of(_caller())
            if any(own_frame(f) for f in stack):
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
    """The first frame outside the lock wrappers: the code that waited, not our wrappers."""
    frame = sys._getframe(1)
    while frame is not None and frame.f_code.co_filename in _WRAPPERS:
        frame = frame.f_back
    return frame


class Contention:
    """One profiler's mutex and block recorders; the patch itself belongs to `lockpatch`."""

    def __init__(self, mutex_fraction: int, block_fraction: int) -> None:
        self._mutex = _Recorder(mutex_fraction) if mutex_fraction > 0 else None
        self._block = _Recorder(block_fraction) if block_fraction > 0 else None
        self.wants_waits = self._block is not None
        self._started = False

    def profile(self, kind: str) -> Profile:
        recorder = self._mutex if kind == MUTEX else self._block
        if recorder is None:  # off: still a valid, empty profile
            return Profile((CONTENTIONS, DELAY), CONTENTIONS, 1, (), time.time_ns())
        return recorder.profile()

    def count(self, kind: str) -> int:
        return len(self.profile(kind).samples)

    def on_lock_wait(self, delay_ns: int) -> None:
        if self._mutex is not None:
            self._mutex.record(delay_ns)
        if self._block is not None:
            self._block.record(delay_ns)

    def on_cond_wait(self, delay_ns: int) -> None:
        if self._block is not None:
            self._block.record(delay_ns)

    def start(self) -> None:
        if self._started or (self._mutex is None and self._block is None):
            return
        self._started = True
        lockpatch.join(self)

    def stop(self) -> None:
        if self._started:
            self._started = False
            lockpatch.leave(self)
