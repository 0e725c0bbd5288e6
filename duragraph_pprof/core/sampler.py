"""The one stack sampler. Every consumer (an HTTP CPU profile, a gRPC pull, the OTLP push, the
trace recorder) subscribes and gets its own view of the same stream of ticks.

Each tick reads every thread's stack and its CPU clock: CPU time is the per-thread CPU clock's
delta since the previous tick (a sleeping thread gets none); wall time is the elapsed time between
ticks (every thread gets it). The sampler measures its own CPU and stretches its interval so that
it stays within the configured share of one core.
"""

from __future__ import annotations

import _thread
import contextlib
import threading
import time
from dataclasses import dataclass
from operator import is_
from types import FrameType
from typing import Any, NamedTuple, Protocol

from .frames import Walk, walk
from .snapshot import Profile, Sample, Stack, ValueType
from .threads import cpu_clock, current_frames, current_tasks, task_name, thread_table

INTERNAL_PREFIX = "duragraph-pprof"  # our own threads are left out of CPU and wall samples
CPU = ValueType("cpu", "nanoseconds")
WALL = ValueType("wall", "nanoseconds")
SAMPLES = ValueType("samples", "count")
# The budget is a token bucket (as the native sampler's): ticks aim a twentieth under it, and what
# cheap ticks save is kept for dear ones up to the allowance of _BURST_S of wall time.
_BUDGET_AIM = 0.95
_BURST_S = 0.2
# the effective rate is the ticks over the wall time they spanned, both fading over about this
# much wall time, or over about _RATE_TICKS ticks where those span more (at a few hertz one dear
# tick's wait would otherwise halve it): it follows a budget-bound 1 Hz within about 12 s, and uneven
# spacing does not skew it
_RATE_WINDOW_S = 1.0
_RATE_TICKS = 8
_RATE_SEED = 1e-3  # the nominal rate's weight: the first tick measured outweighs it
_MAX_STACKS = 100_000  # bounds the interning table when stacks keep changing


class ThreadSample(NamedTuple):  # a tuple: the sampler makes one per thread per tick
    ident: int
    labels: tuple[tuple[str, str], ...]
    stack: Stack
    cpu_ns: int
    wall_ns: int


class Tick(NamedTuple):
    time_ns: int  # wall clock, ns since the epoch
    samples: tuple[ThreadSample, ...]


@dataclass(frozen=True, slots=True)
class SamplerStats:
    cpu_ns: int  # the sampler thread's own CPU time
    samples: int  # thread samples taken
    ticks: int
    dropped: int  # ticks skipped because the sampler fell behind or the budget stretched it
    effective_hz: float
    running_threads: int


class Subscriber(Protocol):
    def on_tick(self, tick: Tick) -> None: ...


class _Seen:
    """What the sampler remembers about one thread between ticks."""

    __slots__ = ("clock", "cpu", "internal", "labels", "name", "thread", "walk")

    def __init__(self, ident: int, thread: threading.Thread | None, me: int) -> None:
        self.thread = thread
        self.clock = cpu_clock(thread.native_id if thread is not None else None)
        self.cpu: int | None = None  # its CPU clock at the last tick
        self.walk: Walk | None = None
        self.rename(ident, thread.name if thread is not None else f"Thread-{ident}", me)

    def rename(self, ident: int, name: str, me: int) -> None:
        self.name = name
        self.internal = ident == me or name.startswith(INTERNAL_PREFIX)
        self.labels = (("thread.id", str(ident)), ("thread.name", name))

    def read_cpu(self) -> tuple[int, bool]:
        """(CPU nanoseconds since the last tick, 0 when unknown; whether the thread may have run
        since: its clock moved, or it cannot be read)."""
        cpu = None
        if self.clock is not None:
            try:
                cpu = time.clock_gettime_ns(self.clock)
            except OSError:  # exited since _current_frames()
                pass
        previous, self.cpu = self.cpu, cpu
        if cpu is None:
            return 0, True
        return (max(cpu - previous, 0) if previous is not None else 0), cpu != previous


class Sampler:
    """The pure-Python sampler: the fallback where the native one cannot load, and its twin."""

    implementation = "python"
    _running = 0  # live sampler threads in this process, for tests and self-metrics
    _running_lock = threading.Lock()

    def __init__(self, hz: int = 100, cpu_budget: float = 0.01, why: str = "") -> None:
        self.why = why  # why this one runs rather than the native sampler
        self.hz = hz
        self.cpu_budget = cpu_budget
        self._lock = threading.Lock()
        self._subscribers: tuple[Subscriber, ...] = ()  # replaced, never mutated: read lock-free
        # held while the thread sleeps between ticks; stop() releases it to cut the sleep short
        self._wake: Any = None
        self._thread: threading.Thread | None = None
        self._seen: dict[int, _Seen] = {}
        self._stacks: dict[tuple[int, ...], Stack] = {}
        self._cpu_ns = self._samples = self._ticks = self._dropped = 0
        self._fresh_bucket()

    # -- subscription -------------------------------------------------------------------------
    def subscribe(self, subscriber: Subscriber) -> None:
        with self._lock:
            self._subscribers += (subscriber,)
            if self._thread is None:
                self._wake = wake = _thread.allocate_lock()
                wake.acquire()
                self._thread = threading.Thread(
                    target=self._run, args=(wake,), name=f"{INTERNAL_PREFIX}-sampler", daemon=True
                )
                self._thread.start()

    def unsubscribe(self, subscriber: Subscriber) -> None:
        with self._lock:
            self._subscribers = tuple(s for s in self._subscribers if s is not subscriber)

    def open_window(self) -> Window:
        window = Window(self)
        self.subscribe(window)
        return window

    def stop(self) -> None:
        """Drop every subscriber and wait for the thread to end."""
        with self._lock:
            self._subscribers = ()
            thread, wake = self._thread, self._wake
        if wake is not None:
            with contextlib.suppress(RuntimeError):  # already released: the thread is waking
                wake.release()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)

    def forget_in_child(self) -> None:
        """After fork: the sampler thread did not come along, and a lock may be held forever."""
        self._lock = threading.Lock()
        self._subscribers = ()
        self._thread = self._wake = None
        Sampler._running_lock = threading.Lock()
        Sampler._running = 0

    def stats(self) -> SamplerStats:
        return SamplerStats(
            self._cpu_ns, self._samples, self._ticks, self._dropped,
            # the measured rate, and no faster than the wait since the last tick allows: a long
            # stretch shows while it lasts, not only after the next tick
            min(self._rate_ticks / self._rate_s,
                1e9 / max(1, time.monotonic_ns() - self._last_tick_ns)),
            Sampler._running,
        )

    @property
    def period_ns(self) -> int:
        return 1_000_000_000 // self.hz

    def describe(self) -> str:
        return f"python ({self.why})" if self.why else "python"

    # -- the sampling thread ------------------------------------------------------------------
    def _run(self, wake: Any) -> None:
        with Sampler._running_lock:
            Sampler._running += 1
        try:
            self._loop(wake)
        finally:
            with Sampler._running_lock:
                Sampler._running -= 1

    def _loop(self, wake: Any) -> None:
        me = threading.get_ident()
        self._fresh_bucket()  # each sampling thread starts with an empty bucket
        last = time.monotonic_ns()
        deadline = time.monotonic()
        spent = time.thread_time_ns()
        while True:
            subscribers = self._subscribers
            if not subscribers:
                with self._lock:
                    if not self._subscribers:  # nobody subscribed again meanwhile
                        self._thread = self._wake = None
                        self._seen.clear()
                        self._stacks.clear()
                        return
                continue
            now = time.monotonic_ns()
            spacing = now - last
            try:
                tick = self._sample(me, spacing)
            except Exception:  # noqa: BLE001 - a thread torn down mid-read: skip this tick
                tick = Tick(time.time_ns(), ())
                self._dropped += 1
            last = self._last_tick_ns = now
            for subscriber in subscribers:
                try:
                    subscriber.on_tick(tick)
                except Exception:  # noqa: BLE001 - a broken consumer must not stop the others
                    self._dropped += 1
            # the thread's whole CPU since the last tick: waking up and sleeping cost too
            cpu = time.thread_time_ns()
            self._account(cpu - spent, spacing / 1e9)
            spent = cpu
            deadline += self._interval
            pause = deadline - time.monotonic()
            if pause < 0:  # fell behind: skip the missed ticks rather than burst
                self._dropped += int(-pause / self._interval)
                deadline = time.monotonic()
                pause = 0.0
            wake.acquire(True, pause)  # returns early when stop() releases it

    def _fresh_bucket(self) -> None:
        self._interval = 1.0 / self.hz
        self._rate_ticks, self._rate_s = _RATE_SEED, _RATE_SEED / self.hz  # nominal until measured
        self._credit = 0.0  # CPU seconds the budget still allows (negative: owed)
        self._last_tick_ns = time.monotonic_ns()

    def _account(self, cost_ns: int, spacing: float) -> None:
        """Keep the thread's CPU within its budget: the wall time since the last tick earns its
        share and the tick pays what it cost; while in debt the next tick waits until the debt
        is paid. A dear tick (cold caches, a GC pause) is paid from what cheap ticks saved, so it
        does not slow the ticks after it for longer than its own cost."""
        self._cpu_ns += cost_ns
        self._ticks += 1
        share = _BUDGET_AIM * self.cpu_budget
        self._credit = min(self._credit + share * spacing - cost_ns / 1e9, share * _BURST_S)
        self._interval = max(1.0 / self.hz, -self._credit / share)
        fade = max(_RATE_WINDOW_S / (_RATE_WINDOW_S + spacing), 1 - 1 / _RATE_TICKS)
        self._rate_ticks = self._rate_ticks * fade + 1
        self._rate_s = self._rate_s * fade + spacing

    def _sample(self, me: int, wall_ns: int) -> Tick:
        """One tick: every thread's stack, CPU time since the last tick and labels."""
        frames = current_frames()
        threads = _live_threads()
        tasks = current_tasks()
        samples = []
        for ident, frame in frames.items():
            seen = self._track(ident, threads.get(ident), me)
            if seen.internal:
                continue
            cpu_ns, ran = seen.read_cpu()
            stack = self._stack(seen, frame, ran)
            samples.append(ThreadSample(ident, _labels(seen, tasks.get(ident)), stack, cpu_ns,
                                        wall_ns))
        self._forget_ended(frames)
        self._samples += len(samples)
        return Tick(time.time_ns(), tuple(samples))

    def _track(self, ident: int, thread: threading.Thread | None, me: int) -> _Seen:
        """What the sampler knows of the thread `ident`: new when the ident is new or now names
        another Thread, renamed when its Thread was."""
        seen = self._seen.get(ident)
        if seen is None or seen.thread is not thread:
            seen = self._seen[ident] = _Seen(ident, thread, me)
        elif thread is not None and thread.name != seen.name:
            seen.rename(ident, thread.name, me)
        return seen

    def _stack(self, seen: _Seen, frame: FrameType, ran: bool) -> Stack:
        """The thread's stack, interned. A thread that has not run since the last tick still
        has the same frame and line, so it is walked again only when it ran or moved."""
        cached = seen.walk
        if cached is not None and cached.leaf is frame and not ran:
            return cached.stack
        last = cached.stack if cached is not None else None
        cached = seen.walk = walk(frame, cached)  # may update `cached` in place
        if cached.stack is not last:
            # the very same frames as last time: no need to hash the whole stack again
            cached.stack = last if _same_frames(cached.stack, last) else self._intern(cached.stack)
        return cached.stack

    def _forget_ended(self, frames: dict[int, FrameType]) -> None:
        known = self._seen
        if len(known) > len(frames):  # some threads ended
            for gone in known.keys() - frames.keys():
                del known[gone]

    def _intern(self, stack: Stack) -> Stack:
        """One object per distinct stack, so consumers can group by identity. Frames are interned
        by frames.py, so their ids name the stack; the table holds the stacks, keeping ids unique."""
        key = tuple(map(id, stack))
        interned = self._stacks.get(key)
        if interned is None:
            if len(self._stacks) >= _MAX_STACKS:
                self._stacks.clear()
            interned = self._stacks[key] = stack
        return interned


def _live_threads() -> dict[int, threading.Thread]:
    """The live ident -> Thread dict, read one key at a time (atomic under the GIL) rather than
    copied every tick; thread_table() where the threading module has no such dict."""
    table = getattr(threading, "_active", None)
    return table if isinstance(table, dict) else thread_table()


def _labels(seen: _Seen, task: Any) -> tuple[tuple[str, str], ...]:
    if task is None:
        return seen.labels
    return (("asyncio.task.name", task_name(task)),) + seen.labels


def _same_frames(stack: Stack, last: Stack | None) -> bool:
    return last is not None and len(stack) == len(last) and all(map(is_, stack, last))


class Window:
    """CPU and wall time aggregated by stack and thread since the window opened (or last take)."""

    def __init__(self, sampler: Sampler) -> None:
        self._sampler = sampler
        self._lock = threading.Lock()
        self._reset(time.time_ns())

    def _reset(self, now_ns: int) -> None:
        self._start_ns = now_ns
        # (id(stack), labels) -> [stack, cpu count, cpu ns, wall count, wall ns]: the sampler
        # interns stacks, so grouping by identity spares hashing every frame of every sample
        self._acc: dict[tuple, list] = {}

    def on_tick(self, tick: Tick) -> None:
        with self._lock:
            acc = self._acc
            for s in tick.samples:
                key = (id(s.stack), s.labels)
                values = acc.get(key)
                if values is None:
                    values = acc[key] = [s.stack, 0, 0, 0, 0]
                if s.cpu_ns > 0:
                    values[1] += 1
                    values[2] += s.cpu_ns
                values[3] += 1
                values[4] += s.wall_ns

    def take(self) -> tuple[Profile, Profile]:
        """(cpu, wall) since the last take, then start over."""
        now = time.time_ns()
        with self._lock:
            acc, start = self._acc, self._start_ns
            self._reset(now)
        return self._profiles(acc, start, now)

    def close(self) -> tuple[Profile, Profile]:
        self._sampler.unsubscribe(self)
        return self.take()

    def _profiles(self, acc: dict, start: int, end: int) -> tuple[Profile, Profile]:
        stats = self._sampler.stats()
        period = self._sampler.period_ns
        comment = (f"sampling at {stats.effective_hz:.1f} Hz (nominal {self._sampler.hz} Hz)",
                   f"sampler: {self._sampler.describe()}")
        cpu, wall = [], []
        for (stack, labels), (n_cpu, cpu_ns, n_wall, wall_ns) in sorted(_merge(acc).items(),
                                                                        key=_order):
            if n_cpu:
                cpu.append(Sample(stack, (n_cpu, cpu_ns), labels))
            wall.append(Sample(stack, (n_wall, wall_ns), labels))

        def make(kind: ValueType, samples: list[Sample]) -> Profile:
            return Profile((SAMPLES, kind), kind, period, tuple(samples), start, end - start,
                           comments=comment)

        return make(CPU, cpu), make(WALL, wall)


def _merge(acc: dict[tuple, list]) -> dict[tuple, list[int]]:
    """Group by value: equal stacks are distinct objects only after the intern table was reset."""
    merged: dict[tuple, list[int]] = {}
    for (_, labels), (stack, *values) in acc.items():
        total = merged.get((stack, labels))
        if total is None:
            merged[(stack, labels)] = values
        else:
            for i, v in enumerate(values):
                total[i] += v
    return merged


def _order(item) -> tuple:
    (stack, labels), _ = item
    return labels, tuple((f.function, f.filename, f.line) for f in stack)
