"""The registry of profile kinds: the only list of profiles. The HTTP index and
`/debug/pprof/<name>`, the gRPC list and pulls, the page's picker and the OTLP push all read it,
so a kind registered here is on every surface (as Go's `pprof.NewProfile` adds to `Profiles()`).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

from . import contention, goroutine, heap, program, sampled, trace
from .kind import ProfileKind


class Registry:
    def __init__(self, kinds: Iterable[ProfileKind] = ()) -> None:
        self._lock = threading.Lock()
        self._kinds: dict[str, ProfileKind] = {}
        for kind in kinds:
            self.register(kind)

    def register(self, kind: ProfileKind) -> ProfileKind:
        """Add `kind`; a second kind of the same name is refused, as Go's NewProfile panics."""
        with self._lock:
            if kind.name in self._kinds:
                raise ValueError(f"a profile named {kind.name!r} is registered already")
            self._kinds = {**self._kinds, kind.name: kind}  # replaced, never mutated: read lock-free
        return kind

    def unregister(self, name: str) -> None:
        with self._lock:
            self._kinds = {n: k for n, k in self._kinds.items() if n != name}

    def get(self, name: str) -> ProfileKind | None:
        return self._kinds.get(name)

    def entries(self) -> list[ProfileKind]:
        """Every kind, sorted by name (the order of Go's index page)."""
        return sorted(self._kinds.values(), key=lambda kind: kind.name)

    def pushed(self) -> list[ProfileKind]:
        """The kinds the OTLP push sends, in the same order."""
        return [kind for kind in self.entries() if kind.push is not None]


REGISTRY = Registry((
    heap.HEAP, heap.ALLOCS,
    goroutine.GOROUTINES, goroutine.THREADS,
    contention.MUTEXES, contention.BLOCKING,
    sampled.CPU_TIME, sampled.WALL_TIME,
    trace.TRACE,
    program.CMDLINE, program.SYMBOL,
))
