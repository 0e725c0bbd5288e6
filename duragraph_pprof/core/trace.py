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

from .own import StackCutter
from .sampler import Sampler, Tick
from .snapshot import TraceEvent

GC_TRACK = 0
TASK_TRACK_OFFSET = 1 << 52  # task spans get their own track beside their thread's


class TraceRecorder:
    """Subscribes to the sampler and gc for one trace window."""

    def __init__(self, sampler: Sampler, max_events: int) -> None:
        self._sampler = sampler
        self._max_ticks = max_events
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
                        self._max_ticks)

    def on_tick(self, tick: Tick) -> None:
        if len(self._ticks) < self._max_ticks:
            self._ticks.append(tick)

    def _on_gc(self, phase: str, info: dict) -> None:
        ident = threading.get_ident()
        now = time.time_ns()
        if phase == "start":
            self._gc_started[ident] = now
        elif ident in self._gc_started and len(self._gcs) < self._max_ticks:
            started = self._gc_started.pop(ident)
            self._gcs.append((ident, started, now, int(info.get("generation", -1))))


def _without_own_frames(ticks: list[Tick]) -> list[Tick]:
    """Cut after the window, not in the sampler thread: our frames go, the caller's stay."""
    cut = StackCutter()
    return [tick._replace(samples=tuple(s._replace(stack=cut(s.stack)) for s in tick.samples))
            for tick in ticks]


def timeline(ticks, gcs, start_ns: int, pid: int, max_events: int) -> tuple[TraceEvent, ...]:
    """Pure: ticks and GC spans -> Chrome trace events (complete spans and metadata)."""
    events: list[TraceEvent] = [TraceEvent("process_name", "M", 0, pid, 0, args=(("name", "python"),))]
    names: dict[int, str] = {}
    open_frames: dict[int, list[tuple[str, float]]] = {}
    open_tasks: dict[int, tuple[str, float]] = {}
    previous = {}

    def us(ns: int) -> float:
        return (ns - start_ns) / 1000.0

    def close_frames(ident: int, keep: int, at: float) -> None:
        spans = open_frames.get(ident, [])
        while len(spans) > keep:
            name, began = spans.pop()
            events.append(TraceEvent(name, "X", began, pid, ident, at - began, "python"))

    def close_task(ident: int, at: float) -> None:
        if ident in open_tasks:
            name, began = open_tasks.pop(ident)
            events.append(TraceEvent(name, "X", began, pid, ident + TASK_TRACK_OFFSET, at - began,
                                     "asyncio"))

    last_at = 0.0
    for tick in ticks:
        at = last_at = us(tick.time_ns)
        present = set()
        for s in tick.samples:
            present.add(s.ident)
            labels = dict(s.labels)
            names.setdefault(s.ident, labels.get("thread.name", str(s.ident)))
            path = [f.function for f in reversed(s.stack)]
            spans = open_frames.setdefault(s.ident, [])
            common = 0
            before = previous.get(s.ident, [])
            while common < min(len(path), len(before)) and path[common] == before[common]:
                common += 1
            close_frames(s.ident, common, at)
            spans.extend((name, at) for name in path[common:])
            previous[s.ident] = path
            task = labels.get("asyncio.task.name")
            if open_tasks.get(s.ident, (None,))[0] != task:
                close_task(s.ident, at)
                if task is not None:
                    open_tasks[s.ident] = (task, at)
        for ident in list(open_frames):
            if ident not in present:
                close_frames(ident, 0, at)
                close_task(ident, at)
                previous.pop(ident, None)
        if len(events) >= max_events:
            break
    for ident in list(open_frames):
        close_frames(ident, 0, last_at)
        close_task(ident, last_at)
    for ident, began, ended, generation in gcs:
        events.append(TraceEvent(f"gc generation {generation}", "X", us(began), pid, GC_TRACK,
                                 (ended - began) / 1000.0, "gc", (("thread", names.get(ident, str(ident))),)))
    for ident, name in names.items():
        events.append(TraceEvent("thread_name", "M", 0, pid, ident, args=(("name", name),)))
        events.append(TraceEvent("thread_name", "M", 0, pid, ident + TASK_TRACK_OFFSET,
                                 args=(("name", f"{name} asyncio tasks"),)))
    events.append(TraceEvent("thread_name", "M", 0, pid, GC_TRACK, args=(("name", "gc"),)))
    if len(events) > max_events:
        events = events[:max_events] + [TraceEvent("trace truncated", "i", last_at, pid, GC_TRACK)]
    return tuple(events)
