"""The one process-wide owner of the `threading` lock patch.

Every mutex/block recorder joins and leaves here; the first one in patches `threading.Lock`,
`threading.RLock` (and, while one of them wants blocking waits, `threading.Condition.wait`), and
the last one out puts back the originals it found, whatever order the recorders stop in. Locks
made while patched keep their wrapper after that; a wrapper reports to whoever is listening now,
so it never feeds a recorder that has stopped.
"""

from __future__ import annotations

import _thread
import threading
import time
from typing import Protocol


class Listener(Protocol):
    wants_waits: bool  # also time `threading.Condition.wait`

    def on_lock_wait(self, delay_ns: int) -> None: ...

    def on_cond_wait(self, delay_ns: int) -> None: ...


_guard = _thread.allocate_lock()  # a real lock, whatever is patched
_listeners: tuple[Listener, ...] = ()  # replaced, never mutated: the wrappers read it lock-free
_saved_locks: tuple | None = None  # (Lock, RLock) as found before the first patch
_saved_wait = None


def _on_lock_wait(delay_ns: int) -> None:
    for listener in _listeners:
        listener.on_lock_wait(delay_ns)


class _ProfiledLock:
    """A Lock/RLock that times contended acquisitions; everything else goes to the real lock."""

    __slots__ = ("__weakref__", "_real")

    def __init__(self, real) -> None:
        self._real = real

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        if self._real.acquire(False):
            return True
        if not blocking:
            return False
        started = time.monotonic_ns()
        got = self._real.acquire(True, timeout)
        _on_lock_wait(time.monotonic_ns() - started)
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


class _LockType(type):
    """`isinstance(x, threading.Lock)` holds for our wrappers and for real locks alike (on 3.13
    `threading.Lock` is the lock class, and code checks against it)."""

    _real_type: type = type(_thread.allocate_lock())

    def __instancecheck__(cls, obj: object) -> bool:
        return type.__instancecheck__(cls, obj) or isinstance(obj, cls._real_type)


def _lock_class(real_lock):
    class Lock(_ProfiledLock, metaclass=_LockType):
        __slots__ = ()

        def __init__(self) -> None:
            super().__init__(real_lock())

    Lock.__module__, Lock.__qualname__ = "threading", "Lock"
    return Lock


def _rlock_factory(real_rlock):
    def RLock(*args, **kwargs):  # stands in for threading.RLock
        return _ProfiledLock(real_rlock(*args, **kwargs))

    return RLock


def _timed_wait(real_wait):
    def wait(cond, timeout=None):
        started = time.monotonic_ns()
        try:
            return real_wait(cond, timeout)
        finally:
            delay = time.monotonic_ns() - started
            for listener in _listeners:
                if listener.wants_waits:
                    listener.on_cond_wait(delay)

    return wait


def join(listener: Listener) -> None:
    global _listeners
    with _guard:
        if listener not in _listeners:
            _listeners += (listener,)
        _apply()


def leave(listener: Listener) -> None:
    global _listeners
    with _guard:
        _listeners = tuple(x for x in _listeners if x is not listener)
        _apply()


def active() -> int:
    """How many recorders are listening (the patch is on while this is above zero)."""
    return len(_listeners)


def _apply() -> None:
    """Patch or restore so that the patch matches who is listening. Called under `_guard`."""
    global _saved_locks, _saved_wait
    if _listeners and _saved_locks is None:
        _saved_locks = (threading.Lock, threading.RLock)
        threading.Lock = _lock_class(_saved_locks[0])  # type: ignore[misc]
        threading.RLock = _rlock_factory(_saved_locks[1])  # type: ignore[misc]
    elif not _listeners and _saved_locks is not None:
        threading.Lock, threading.RLock = _saved_locks  # type: ignore[misc]
        _saved_locks = None
    want_waits = any(x.wants_waits for x in _listeners)
    if want_waits and _saved_wait is None:
        _saved_wait = threading.Condition.wait
        threading.Condition.wait = _timed_wait(_saved_wait)  # type: ignore[method-assign]
    elif not want_waits and _saved_wait is not None:
        threading.Condition.wait = _saved_wait  # type: ignore[method-assign]
        _saved_wait = None
