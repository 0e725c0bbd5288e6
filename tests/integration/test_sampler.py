"""The stack sampler on its own: its CPU budget, the weights it gives, the stacks its cached walk
returns, and how it survives a broken consumer or a failed read."""

from __future__ import annotations

import inspect
import queue
import sys
import threading
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.threads import BusyThreads, IdleCrowd

from duragraph_pprof.core import sampler as sampler_module
from duragraph_pprof.core.frames import stack_of, walk
from duragraph_pprof.core.sampler import Sampler
from duragraph_pprof.core.threads import thread_cpu_ns


def _measure_own_cpu(sampler: Sampler, seconds: float) -> tuple[float, float, float]:
    """(kernel CPU share of the sampler thread, its self-reported share, ticks per second)."""
    thread = sampler._thread
    assert thread is not None
    s0, k0, t0 = sampler.stats(), thread_cpu_ns(thread.native_id), time.monotonic_ns()
    time.sleep(seconds)
    s1, k1, t1 = sampler.stats(), thread_cpu_ns(thread.native_id), time.monotonic_ns()
    assert k0 is not None and k1 is not None
    wall = t1 - t0
    return (k1 - k0) / wall, (s1.cpu_ns - s0.cpu_ns) / wall, (s1.ticks - s0.ticks) * 1e9 / wall


def test_budget_lowers_the_rate_and_holds_the_sampler_to_its_share():
    budget = 0.005
    with IdleCrowd(300):
        sampler = Sampler(100, budget)
        window = sampler.open_window()
        try:
            time.sleep(1.0)  # the budget settles within a few ticks
            kernel, reported, hz = _measure_own_cpu(sampler, 3.0)
            effective = sampler.stats().effective_hz
        finally:
            window.close()
            sampler.stop()
    # 300 stacks 20 deep at 100 Hz would cost several percent of a core; the budget stretches
    assert hz < 60, hz
    assert effective < 60, effective
    assert kernel <= 2 * budget, f"sampler thread used {kernel:.2%} of a core"
    # the self-report is the thread's own CPU clock, wake-ups included
    assert reported == pytest.approx(kernel, rel=0.25, abs=0.001)


def test_cpu_goes_to_the_thread_that_burned_it_and_wall_to_every_thread():
    sleeper = threading.Thread(target=time.sleep, args=(30,), name="sleeper", daemon=True)
    sleeper.start()
    sampler = Sampler(100, 0.05)
    with BusyThreads(1) as busy:  # one thread named busy-0
        window = sampler.open_window()
        time.sleep(0.3)
        window.take()
        burned0, t0 = busy.cpu_ns(), time.monotonic_ns()
        time.sleep(2.0)
        cpu, wall = window.take()
        burned, elapsed = busy.cpu_ns() - burned0, time.monotonic_ns() - t0
        window.close()
        sampler.stop()

    def total(profile, name: str) -> int:
        return sum(s.values[1] for s in profile.samples if ("thread.name", name) in s.labels)

    assert 0.8 * burned <= total(cpu, "busy-0") <= 1.1 * burned
    assert total(cpu, "sleeper") == 0
    for name in ("busy-0", "sleeper"):
        assert 0.8 * elapsed <= total(wall, name) <= 1.2 * elapsed, name
    assert any("Hz (nominal 100 Hz)" in c for c in cpu.comments)


class _Puppet:
    """A thread that, on order, goes one call down, comes back up, or stays, and then parks in a
    fresh call of `_next` at one of two lines. So one live frame is seen at one line and then at
    another, and a new innermost call appears under an unchanged caller (the busy-thread case)."""

    def __init__(self) -> None:
        self._gate = threading.Lock()
        self._gate.acquire()
        self._order = ("stay", 0)
        self.acks: queue.Queue = queue.Queue()
        self.thread = threading.Thread(target=self._level, args=(0,), name="puppet", daemon=True)
        self.thread.start()
        self.acks.get()

    def _level(self, where: int) -> None:
        while True:
            if where & 2:
                op, where = self._next(where)
            else:
                op, where = self._next(where)  # the caller waits at another line too
            if op == "down":
                self._level(where)
            elif op == "up":
                return

    def _next(self, where: int) -> tuple[str, int]:
        self.acks.put(None)
        if where & 1:
            self._gate.acquire()  # parked here
        else:
            self._gate.acquire()  # or here: the same call at another line
        return self._order

    def obey(self, op: str, where: int):
        """Carry out `op`, then return the puppet's leaf frame once it is parked again."""
        self._order = (op, where)
        self._gate.release()
        self.acks.get()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            frame = sys._current_frames()[self.thread.ident]
            if frame.f_code is _Puppet._next.__code__ and frame.f_lineno in _PARKED:
                return frame
            time.sleep(0.001)
        raise AssertionError("the puppet did not park")

    def close(self) -> None:
        while self.thread.is_alive():
            self._order = ("up", 0)
            if self._gate.locked():
                self._gate.release()
            self.thread.join(0.05)


_PARKED = {i + _Puppet._next.__code__.co_firstlineno
           for i, text in enumerate(inspect.getsource(_Puppet._next).splitlines())
           if "acquire()" in text}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(["down", "up", "stay"]), st.integers(0, 3)),
                min_size=1, max_size=40))
def test_cached_walk_gives_the_same_stack_as_a_full_walk(orders):
    puppet = _Puppet()
    previous = None
    depth = 0
    try:
        for op, where in orders:
            if op == "up" and depth == 0:
                continue  # would end the thread
            depth += {"down": 1, "up": -1, "stay": 0}[op]
            frame = puppet.obey(op, where)
            previous = walk(frame, previous)
            assert previous.stack == stack_of(frame)
    finally:
        puppet.close()


def test_a_broken_consumer_or_a_failed_read_does_not_stop_the_sampler(monkeypatch):
    class Broken:
        def on_tick(self, tick) -> None:
            raise RuntimeError("consumer bug")

    failures = iter(range(3))

    def flaky_walk(frame, previous=None):
        if next(failures, None) is not None:
            raise RuntimeError("frame torn down")
        return walk(frame, previous)

    monkeypatch.setattr(sampler_module, "walk", flaky_walk)
    sampler = Sampler(100, 0.05)
    with BusyThreads(1):
        sampler.subscribe(Broken())
        window = sampler.open_window()
        time.sleep(0.5)
        cpu, _ = window.take()
        alive = sampler._thread is not None and sampler._thread.is_alive()
        dropped = sampler.stats().dropped
        sampler.stop()
    assert alive
    assert dropped >= 3
    assert any(("thread.name", "busy-0") in s.labels for s in cpu.samples)
    assert sampler._thread is None


def test_stop_cuts_a_stretched_interval_short():
    with IdleCrowd(200):
        sampler = Sampler(100, 0.001)  # a tiny budget: seconds between ticks
        sampler.open_window()
        time.sleep(0.5)
        assert sampler.stats().effective_hz < 5
        started = time.monotonic()
        sampler.stop()
        stopped = time.monotonic() - started
    assert sampler._thread is None
    assert stopped < 0.5, stopped
