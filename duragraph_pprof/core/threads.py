"""Facts about live threads and asyncio tasks, read without stopping anyone.

Per-thread CPU clocks are derived from the kernel thread id (as pthread_getcpuclockid does), so a
thread that has just exited gives an error we catch rather than a dangling pthread handle.
"""

from __future__ import annotations

import _thread
import asyncio
import asyncio.tasks as _tasks
import gc
import sys
import threading
import time
from collections.abc import Iterable
from types import FrameType

# CPython 3.11 makes frame objects inside sys._current_frames() while it holds the thread list's
# lock, and an allocation there may collect garbage: a finalizer that lets the GIL go then leaves
# the lock held, and the next thread to start (it takes the lock with the GIL) hangs the process
# (python/cpython#106883; 3.10 makes no frame objects there, 3.12 collects between bytecodes).
_COLLECTS_IN_CURRENT_FRAMES = sys.version_info[:2] == (3, 11)
_no_collection = _thread.allocate_lock()  # a real lock, whatever `threading` is patched to


def current_frames() -> dict[int, FrameType]:
    """sys._current_frames(), without the garbage collection that can deadlock it on 3.11."""
    if not _COLLECTS_IN_CURRENT_FRAMES:
        return sys._current_frames()
    with _no_collection:  # the profiler's callers one at a time: each puts back what it found
        enabled = gc.isenabled()
        gc.disable()
        try:
            return sys._current_frames()
        finally:
            if enabled:
                gc.enable()


def cpu_clock(native_id: int | None) -> int | None:
    """The clock id of a thread's CPU clock (for time.clock_gettime_ns), or None if unknown."""
    if not native_id:
        return None
    return ((~native_id) << 3) | 6  # CPUCLOCK_PERTHREAD | CPUCLOCK_SCHED, as the kernel encodes it


def thread_cpu_ns(native_id: int | None) -> int | None:
    """CPU time of a thread of this process, or None if unknown or gone."""
    clock = cpu_clock(native_id)
    if clock is None:
        return None
    try:
        return time.clock_gettime_ns(clock)
    except (OSError, OverflowError):
        return None


def thread_table() -> dict[int, threading.Thread]:
    """ident -> Thread for threads the threading module knows (a copy, safe to iterate)."""
    active = getattr(threading, "_active", None)
    if isinstance(active, dict):
        for _ in range(3):
            try:
                return dict(active)
            except RuntimeError:  # changed size during the copy
                continue
    return {t.ident: t for t in threading.enumerate() if t.ident is not None}


def _copy(items: Iterable) -> list:
    for _ in range(100):
        try:
            return list(items)
        except RuntimeError:  # a set changed size while another thread ran
            continue
    return []


def all_tasks() -> list[asyncio.Task]:
    """Every live asyncio task on every event loop of every thread."""
    found: list = []
    for name in ("_all_tasks", "_scheduled_tasks", "_eager_tasks"):
        pool = getattr(_tasks, name, None)
        if pool is not None:
            found.extend(_copy(pool))
    seen: set[int] = set()
    out = []
    for task in found:
        if id(task) not in seen and not task.done():
            seen.add(id(task))
            out.append(task)
    return out


def current_tasks() -> dict[int, asyncio.Task]:
    """thread ident -> the task running on that thread's event loop right now."""
    current = getattr(_tasks, "_current_tasks", None)
    if not current or not isinstance(current, dict):  # no event loop is running a task
        return {}
    out = {}
    for loop, task in _copy(current.items()):
        ident = getattr(loop, "_thread_id", None)
        if ident is not None and task is not None:
            out[ident] = task
    return out


def task_name(task: asyncio.Task) -> str:
    try:
        return task.get_name()
    except Exception:  # noqa: BLE001 - a foreign Task-like object
        return repr(task)
