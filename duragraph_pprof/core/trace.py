"""The execution trace: a timeline of every thread's stack from the shared sampler, plus GC
pauses timed exactly by `gc.callbacks`, and the asyncio task running on each loop.

Stacks are sampled (one tick per sampling interval), so a span is accurate to one interval; GC
spans are exact. The result is bounded by `max_events`.
"""

from __future__ import annotations

import gc
import os
import threading
import time
from collections.abc import Iterable

from .own import StackCutter
from .sampler import Sampler, Tick
from .snapshot import TraceEvent

GC_TRACK = 0
TASK_TRACK_OFFSET = 1 << 52  # task spans get their own track beside their thread's


class TraceRecorder:
    """Subscribes to the sampler and gc for one trace window."""

    def __init__(self, sampler: Sampler, max_events: int) -> None:
        self._sampler = sampler
        # the trace holds at most max_events events, so at most as many ticks and GC spans are kept
        self._max_events = max_events
        self._ticks: list[Tick] = []
        self._gcs: list[tuple[int, int, int, int]] = []  # (ident, start_ns, end_ns, generation)
        self._gc_started: dict[int, int] = {}
        self._start_ns = 0

    def start(self) -> None:
        self._start_ns = time.time_ns()
        gc.callbacks.append(self._on_gc)
        self._sampler.subscribe(self)

    def finish(self) -> tuple[TraceEvent, ...]:
        self._sampler.unsubscribe(self)
        try:
            gc.callbacks.remove(self._on_gc)
        except ValueError:
            pass
        return timeline(_without_own_frames(self._ticks), self._gcs, self._start_ns, os.getpid(),
                        self._max_events)

    def on_tick(self, tick: Tick) -> None:
        if len(self._ticks) < self._max_events:
            self._ticks.append(tick)

    def _on_gc(self, phase: str, info: dict) -> None:
        ident = threading.get_ident()
        now = time.time_ns()
        if phase == "start":
            self._gc_started[ident] = now
        elif ident in self._gc_started and len(self._gcs) < self._max_events:
            started = self._gc_started.pop(ident)
            self._gcs.append((ident, started, now, int(info.get("generation", -1))))


def _without_own_frames(ticks: list[Tick]) -> list[Tick]:
    """Cut after the window, not in the sampler thread: our frames go, the caller's stay."""
    cut = StackCutter()
    return [tick._replace(samples=tuple(s._replace(stack=cut(s.stack)) for s in tick.samples))
            for tick in ticks]


def timeline(ticks: Iterable[Tick], gcs: Iterable[tuple[int, int, int, int]], start_ns: int,
             pid: int, max_events: int) -> tuple[TraceEvent, ...]:
    """Pure: ticks and GC spans -> Chrome trace events (complete spans and metadata)."""
    built = _Timeline(start_ns, pid)
    for tick in ticks:
        built.add_tick(tick)
        if len(built.events) >= max_events:
            break
    built.close_all()
    built.add_gc_spans(gcs)
    built.add_track_names()
    return built.bounded(max_events)


class _Timeline:
    """The events so far, and what is open on each thread's tracks: a span per frame of its
    stack (outermost first) and one for the asyncio task running on it."""

    def __init__(self, start_ns: int, pid: int) -> None:
        self.start_ns = start_ns
        self.pid = pid
        self.events = [TraceEvent("process_name", "M", 0, pid, 0, args=(("name", "python"),))]
        self.names: dict[int, str] = {}  # thread ident -> its name, as first seen
        self.open_frames: dict[int, list[tuple[str, float]]] = {}  # (function, start) per frame
        self.open_tasks: dict[int, tuple[str, float]] = {}  # (task name, start)
        self.paths: dict[int, list[str]] = {}  # functions on the stack at the last tick, root first
        self.last_at = 0.0

    def us(self, ns: int) -> float:
        return (ns - self.start_ns) / 1000.0

    def add_tick(self, tick: Tick) -> None:
        at = self.last_at = self.us(tick.time_ns)
        present = set()
        for s in tick.samples:
            present.add(s.ident)
            labels = dict(s.labels)
            self.names.setdefault(s.ident, labels.get("thread.name", str(s.ident)))
            self._move_stack(s.ident, [f.function for f in reversed(s.stack)], at)
            self._move_task(s.ident, labels.get("asyncio.task.name"), at)
        for ident in list(self.open_frames):
            if ident not in present:  # the thread ended, or is one of ours now
                self._close_frames(ident, 0, at)
                self._close_task(ident, at)
                self.paths.pop(ident, None)

    def _move_stack(self, ident: int, path: list[str], at: float) -> None:
        """Close the spans of the frames that left the stack, open one per frame that came."""
        spans = self.open_frames.setdefault(ident, [])
        before = self.paths.get(ident, [])
        common = 0
        while common < min(len(path), len(before)) and path[common] == before[common]:
            common += 1
        self._close_frames(ident, common, at)
        spans.extend((name, at) for name in path[common:])
        self.paths[ident] = path

    def _move_task(self, ident: int, task: str | None, at: float) -> None:
        if self.open_tasks.get(ident, (None,))[0] != task:
            self._close_task(ident, at)
            if task is not None:
                self.open_tasks[ident] = (task, at)

    def _close_frames(self, ident: int, keep: int, at: float) -> None:
        spans = self.open_frames.get(ident, [])
        while len(spans) > keep:
            name, began = spans.pop()
            self.events.append(TraceEvent(name, "X", began, self.pid, ident, at - began, "python"))

    def _close_task(self, ident: int, at: float) -> None:
        if ident in self.open_tasks:
            name, began = self.open_tasks.pop(ident)
            self.events.append(TraceEvent(name, "X", began, self.pid, ident + TASK_TRACK_OFFSET,
                                          at - began, "asyncio"))

    def close_all(self) -> None:
        """The end of the trace ends every span still open, at the last tick."""
        for ident in list(self.open_frames):
            self._close_frames(ident, 0, self.last_at)
            self._close_task(ident, self.last_at)

    def add_gc_spans(self, gcs: Iterable[tuple[int, int, int, int]]) -> None:
        for ident, began, ended, generation in gcs:
            thread = self.names.get(ident, str(ident))
            self.events.append(TraceEvent(f"gc generation {generation}", "X", self.us(began),
                                          self.pid, GC_TRACK, (ended - began) / 1000.0, "gc",
                                          (("thread", thread),)))

    def add_track_names(self) -> None:
        pid = self.pid
        for ident, name in self.names.items():
            self.events.append(TraceEvent("thread_name", "M", 0, pid, ident, args=(("name", name),)))
            self.events.append(TraceEvent("thread_name", "M", 0, pid, ident + TASK_TRACK_OFFSET,
                                          args=(("name", f"{name} asyncio tasks"),)))
        self.events.append(TraceEvent("thread_name", "M", 0, pid, GC_TRACK, args=(("name", "gc"),)))

    def bounded(self, max_events: int) -> tuple[TraceEvent, ...]:
        events = self.events
        if len(events) > max_events:
            events = events[:max_events] + [TraceEvent("trace truncated", "i", self.last_at,
                                                       self.pid, GC_TRACK)]
        return tuple(events)
