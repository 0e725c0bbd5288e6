"""The native stack sampler behind the pure-Python sampler's interface.

The C extension (`duragraph_pprof._native`) ticks on its own thread and counts CPU and wall time
by (thread, stack, asyncio task) in C; this module turns what it counted into the same windows
and ticks the consumers already read. Names, files and lines are resolved here, once per stack,
when a consumer takes its data; nothing runs per tick in Python unless a tick subscriber (the
trace recorder) is listening, and then only every `_PUMP_SECONDS`.
"""

from __future__ import annotations

import _thread
import asyncio.tasks as _tasks
import atexit
import logging
import threading
import weakref
from typing import Any

from ..errors import ConfigError
from .frames import MAX_DEPTH, frame_at
from .sampler import (
    INTERNAL_PREFIX,
    Sampler,
    SamplerStats,
    Subscriber,
    ThreadSample,
    Tick,
    Window,
)
from .snapshot import Frame, Stack
from .threads import task_name

try:
    from .. import _native
except ImportError as exc:  # no compiler where it was installed, or another CPython
    _native = None
    UNAVAILABLE = f"the native extension did not load ({exc})"
else:
    UNAVAILABLE = ""

_log = logging.getLogger("duragraph_pprof")
_PUMP_SECONDS = 0.1
# a stack the native tables had no room for (counted in the sampler's stats as lost)
_NO_ROOM: Stack = (Frame("[stack not recorded: the sampler's tables were full]", "", 0, 0),)
_live: weakref.WeakSet[NativeSampler] = weakref.WeakSet()


def make_sampler(hz: int, cpu_budget: float, choice: str = "auto") -> Sampler | NativeSampler:
    """The native sampler where it loads; the pure-Python one where asked, or as the fallback."""
    if choice == "python":
        return Sampler(hz, cpu_budget, "chosen by DURAGRAPH_PPROF_SAMPLER")
    if _native is None:
        if choice == "native":
            raise ConfigError("DURAGRAPH_PPROF_SAMPLER", choice, UNAVAILABLE,
                              "reinstall with a C compiler (pip install .) or use auto")
        return Sampler(hz, cpu_budget, f"fallback: {UNAVAILABLE}")
    return NativeSampler(hz, cpu_budget)


class NativeSampler:
    """One native sampling thread for every consumer; each window gets its own share."""

    implementation = "native"

    def __init__(self, hz: int = 100, cpu_budget: float = 0.01, stop_world: bool = True) -> None:
        if _native is None:
            raise RuntimeError(UNAVAILABLE)
        self.hz = hz
        self.cpu_budget = cpu_budget
        current = getattr(_tasks, "_current_tasks", None)
        # stop_world=False: every tick takes the GIL through its queue (native/gil.h says why not)
        self._core = _native.Sampler(hz, cpu_budget, threading._active,
                                     current if isinstance(current, dict) else None, MAX_DEPTH,
                                     stop_world)
        self._lock = _thread.allocate_lock()  # never a patched threading.Lock
        self._windows: tuple[NativeWindow, ...] = ()
        self._subscribers: tuple[Subscriber, ...] = ()
        self._pump: threading.Thread | None = None
        self._pump_stop = threading.Event()
        self._generation = -1
        self._stacks: dict[int, Stack] = {}
        self._failed = 0
        _live.add(self)

    # -- consumers ------------------------------------------------------------------------------
    def open_window(self) -> NativeWindow:
        window = NativeWindow(self)
        with self._lock:
            self._flush()  # what was counted before belongs to the windows already open
            self._windows += (window,)
            self._core.start()
        return window

    def subscribe(self, subscriber: Subscriber) -> None:
        if isinstance(subscriber, NativeWindow):
            raise TypeError("open windows with open_window()")
        with self._lock:
            self._subscribers += (subscriber,)
            if self._pump is None:
                self._core.keep_ticks(True)
                self._pump_stop.clear()
                self._pump = threading.Thread(target=self._run_pump, daemon=True,
                                              name=f"{INTERNAL_PREFIX}-pump")
                self._pump.start()
            self._core.start()

    def unsubscribe(self, subscriber: Any) -> None:
        pump = None
        with self._lock:
            if isinstance(subscriber, NativeWindow):
                self._flush()
                self._windows = tuple(w for w in self._windows if w is not subscriber)
            elif subscriber in self._subscribers:
                self._pump_ticks()  # the ticks up to now are still this subscriber's
                self._subscribers = tuple(s for s in self._subscribers if s is not subscriber)
                if not self._subscribers:
                    pump, self._pump = self._pump, None
                    self._core.keep_ticks(False)
            idle = not self._windows and not self._subscribers
        if pump is not None:
            self._pump_stop.set()
            if pump is not threading.current_thread():
                pump.join(timeout=5)
        if idle:
            self._core.stop()

    def flush(self) -> None:
        with self._lock:
            self._flush()

    def stop(self) -> None:
        """Drop every consumer and wait for the threads to end."""
        with self._lock:
            self._windows = self._subscribers = ()
            pump, self._pump = self._pump, None
            self._core.keep_ticks(False)
        if pump is not None:
            self._pump_stop.set()
            if pump is not threading.current_thread():
                pump.join(timeout=5)
        self._core.stop()

    def forget_in_child(self) -> None:
        """After fork: the sampling threads did not come along."""
        self._lock = _thread.allocate_lock()
        self._windows = self._subscribers = ()
        self._pump = None
        self._pump_stop = threading.Event()
        self._core.forget_in_child()

    # -- what it measures about itself ----------------------------------------------------------
    def stats(self) -> SamplerStats:
        s = self._core.stats()
        return SamplerStats(s["cpu_ns"], s["samples"], s["ticks"], s["dropped"],
                            s["effective_hz"], s["running"])

    def native_stats(self) -> dict[str, Any]:
        return self._core.stats()

    @property
    def period_ns(self) -> int:
        return 1_000_000_000 // self.hz

    def describe(self) -> str:
        return "native"

    # -- turning counts into stacks and labels --------------------------------------------------
    def _flush(self) -> None:
        """Hand what the native tables counted to every open window (the lock is held)."""
        generation, counts = self._core.drain()
        windows = self._windows
        if windows:
            names = _thread_names()
            for ident, name, stack_id, task, cpu_n, cpu_ns, wall_n, wall_ns in counts:
                labels = _labels(ident, names.get(ident) or name, task)
                if labels is None:
                    continue
                stack = self._stack(generation, stack_id)
                for window in windows:
                    window.add(stack, labels, cpu_n, cpu_ns, wall_n, wall_ns)
        if self._core.compact():  # the tables were filling up: emptied, stacks resolved anew
            self._stacks.clear()

    def _stack(self, generation: int, stack_id: int) -> Stack:
        if generation != self._generation:
            self._generation, self._stacks = generation, {}
        stack = self._stacks.get(stack_id)
        if stack is None:
            frames = self._core.frames(generation, stack_id)
            stack = _NO_ROOM if frames is None else tuple(
                frame_at(code, module_of(globals_), line) for code, globals_, line in frames
            )
            self._stacks[stack_id] = stack
        return stack

    def _run_pump(self) -> None:
        while not self._pump_stop.wait(_PUMP_SECONDS):
            with self._lock:
                self._pump_ticks()

    def _pump_ticks(self) -> None:
        """The kept samples since the last pump, as ticks, to every tick subscriber."""
        generation, records = self._core.drain_ticks()
        if not records or not self._subscribers:
            return
        names = _thread_names()
        ticks: list[Tick] = []
        samples: list[ThreadSample] = []
        at = records[0][0]
        for time_ns, ident, name, stack_id, task, cpu_ns, wall_ns in records:
            if time_ns != at:
                ticks.append(Tick(at, tuple(samples)))
                samples, at = [], time_ns
            labels = _labels(ident, names.get(ident) or name, task)
            if labels is not None:
                samples.append(ThreadSample(ident, labels, self._stack(generation, stack_id),
                                            cpu_ns, wall_ns))
        ticks.append(Tick(at, tuple(samples)))
        for subscriber in self._subscribers:
            for tick in ticks:
                try:
                    subscriber.on_tick(tick)
                except Exception:  # noqa: BLE001 - a broken consumer must not stop the others
                    self._failed += 1
                    if self._failed == 1:
                        _log.exception("a sampler subscriber failed; later failures are counted")
                    break


class NativeWindow(Window):
    """A window fed by the native sampler's counts rather than by ticks."""

    def add(self, stack: Stack, labels: tuple, cpu_n: int, cpu_ns: int, wall_n: int,
            wall_ns: int) -> None:
        with self._lock:
            key = (id(stack), labels)
            values = self._acc.get(key)
            if values is None:
                values = self._acc[key] = [stack, 0, 0, 0, 0]
            values[1] += cpu_n
            values[2] += cpu_ns
            values[3] += wall_n
            values[4] += wall_ns

    def take(self):
        self._sampler.flush()
        return super().take()


def _thread_names() -> dict[int, str]:
    active = threading._active  # read one key at a time: atomic under the GIL
    return {ident: thread.name for ident, thread in list(active.items())}


def _labels(ident: int, name: str, task: Any) -> tuple[tuple[str, str], ...] | None:
    """The labels the pure-Python sampler gives; None for the profiler's own threads."""
    if name.startswith(INTERNAL_PREFIX):
        return None
    labels: tuple[tuple[str, str], ...] = (("thread.id", str(ident)),
                                           ("thread.name", name or f"Thread-{ident}"))
    if task is not None:
        labels = (("asyncio.task.name", task_name(task)),) + labels
    return labels


def module_of(globals_: Any) -> str:
    name = globals_.get("__name__", "") if isinstance(globals_, dict) else ""
    return name if isinstance(name, str) else ""


def _stop_all() -> None:
    """At exit, before the interpreter finalizes: a native thread must not wait for the GIL then."""
    for sampler in list(_live):
        sampler.stop()


atexit.register(_stop_all)
