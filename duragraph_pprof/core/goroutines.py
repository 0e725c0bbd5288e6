"""Goroutines in Python terms: every thread and every live asyncio task, with stacks and a
Go-style status. The dump, the gRPC stream and the goroutine-count metric all count this set.
"""

from __future__ import annotations

import asyncio
import itertools
import linecache
import threading
import time
import weakref
from types import FrameType

from .frames import MAX_DEPTH, frame_of, stack_of
from .snapshot import ASYNCIO_TASK, THREAD, Goroutine, GoroutineSet, Stack
from .threads import all_tasks, current_frames, current_tasks, task_name, thread_table

# leaf functions whose wait has a Go name; looked up by `module.qualname`
_WAIT_REASONS = {
    "threading.Condition.wait": "sync.Cond.Wait",
    "threading.Event.wait": "sync.Cond.Wait",
    "threading.Semaphore.acquire": "semacquire",
    "threading.Barrier.wait": "sync.WaitGroup.Wait",
    "threading.Thread._wait_for_tstate_lock": "semacquire",
    "threading.Thread.join": "semacquire",
    "queue.Queue.get": "chan receive",
    "queue.Queue.put": "chan send",
    "selectors.EpollSelector.select": "IO wait",
    "selectors.PollSelector.select": "IO wait",
    "selectors.SelectSelector.select": "IO wait",
    "selectors.DevpollSelector.select": "IO wait",
    "selectors.KqueueSelector.select": "IO wait",
    "socket.socket.accept": "IO wait",
    "socketserver.BaseServer.serve_forever": "IO wait",
}
_LINE_HINTS = (("sleep(", "sleep"), (".acquire(", "semacquire"), (".wait(", "sync.Cond.Wait"),
               ("select(", "IO wait"), (".recv", "IO wait"), (".accept(", "IO wait"),
               (".get(", "chan receive"), (".read(", "IO wait"))


class GoroutineIds:
    """Small stable ids, Go style: the main thread is 1, then first come, first numbered."""

    def __init__(self) -> None:
        self._next = itertools.count(2)
        self._threads: dict[int, int] = {}
        main = threading.main_thread().ident
        if main is not None:
            self._threads[main] = 1
        self._tasks: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    def thread(self, ident: int) -> int:
        with self._lock:
            gid = self._threads.get(ident)
            if gid is None:
                gid = self._threads[ident] = next(self._next)
            return gid

    def task(self, task: asyncio.Task) -> int:
        with self._lock:
            try:
                gid = self._tasks.get(task)
                if gid is None:
                    gid = self._tasks[task] = next(self._next)
                return gid
            except TypeError:  # not weak-referenceable
                return 0

    def forget_threads(self, alive: set[int]) -> None:
        with self._lock:
            for ident in self._threads.keys() - alive:
                if self._threads[ident] != 1:
                    del self._threads[ident]


def counts() -> tuple[int, int]:
    """(threads, asyncio tasks): cheap, and the same set the dump shows."""
    return len(current_frames()), len(all_tasks())


def capture(ids: GoroutineIds) -> GoroutineSet:
    """Every goroutine now; the calling thread comes first with status `running`, as in Go."""
    me = threading.get_ident()
    frames = current_frames()
    table = thread_table()
    running_tasks = {id(task) for task in current_tasks().values()}
    ids.forget_threads(set(frames))
    out = []
    for ident, frame in sorted(frames.items(), key=lambda kv: (kv[0] != me, ids.thread(kv[0]))):
        thread = table.get(ident)
        name = thread.name if thread is not None else f"Thread-{ident}"
        status = "running" if ident == me else _thread_status(frame)
        out.append(Goroutine(ids.thread(ident), THREAD, name, status, stack_of(frame), ident))
    for task in sorted(all_tasks(), key=ids.task):
        out.append(_task_goroutine(task, ids, id(task) in running_tasks))
    return GoroutineSet(tuple(out), time.time_ns())


def _thread_status(frame: FrameType) -> str:
    leaf = frame_of(frame)
    reason = _WAIT_REASONS.get(leaf.function)
    if reason:
        return reason
    text = linecache.getline(leaf.filename, leaf.line) if leaf.filename else ""
    for hint, reason in _LINE_HINTS:
        if hint in text:
            return reason
    return "runnable"


def _task_goroutine(task: asyncio.Task, ids: GoroutineIds, running: bool) -> Goroutine:
    waiter = getattr(task, "_fut_waiter", None)
    if running:
        status = "running"
    else:
        status = "select" if waiter is not None else "runnable"
    loop = _loop_of(task)
    thread_ident = getattr(loop, "_thread_id", None)
    return Goroutine(
        ids.task(task), ASYNCIO_TASK, task_name(task), status, coroutine_stack(task.get_coro()),
        thread_ident, _describe(waiter),
        f"goroutine {ids.thread(thread_ident)}" if thread_ident is not None else "",
    )


def _loop_of(task: asyncio.Task):
    try:
        return task.get_loop()
    except Exception:  # noqa: BLE001 - the profiler must never raise into the application
        return None


def coroutine_stack(coro) -> Stack:
    """The frames of a suspended coroutine chain, leaf first."""
    chain: list[FrameType] = []
    while coro is not None and len(chain) < MAX_DEPTH:
        frame = _first(coro, "cr_frame", "gi_frame", "ag_frame")
        if frame is None:
            break
        chain.append(frame)
        coro = _first(coro, "cr_await", "gi_yieldfrom", "ag_await")
    return tuple(frame_of(f) for f in reversed(chain))


def _first(obj, *names):
    for name in names:
        value = getattr(obj, name, None)
        if value is not None:
            return value
    return None


def _describe(waiter) -> str:
    if waiter is None:
        return ""
    if isinstance(waiter, asyncio.Task):
        return f"Task {task_name(waiter)}"
    return type(waiter).__name__
