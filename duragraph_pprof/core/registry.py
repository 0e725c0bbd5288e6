"""The registry of named profiles: one list drives the HTTP index and dispatch, the gRPC list and
the OTLP push. Descriptions say what each profile measures in Python terms.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ProfileEntry:
    name: str
    description: str
    count: Callable[[], int]
    delta: bool = False  # accepts ?seconds=N as a delta between two snapshots


DESCRIPTIONS = {
    "allocs": "A sampling of all past memory allocations since the profiler started, by "
    "allocating stack (default view alloc_space). With DURAGRAPH_PPROF_HEAP=exact (tracemalloc) "
    "it shows live blocks only, as heap. Use seconds=N for what a window added.",
    "block": "Stack traces that led to blocking on synchronization primitives (locks, "
    "Condition/Event/Queue waits). Off unless DURAGRAPH_PPROF_BLOCK_FRACTION is set.",
    "cmdline": "The command line of the current program.",
    "goroutine": "Stack traces of all current goroutines (Python threads and asyncio tasks). "
    "Use debug=2 as a query parameter to export in the same format as an unrecovered panic.",
    "heap": "A sampling of memory allocations of live objects, by allocating stack (one per "
    "DURAGRAPH_PPROF_HEAP_RATE bytes, as Go's MemProfileRate; exact with tracemalloc when "
    "DURAGRAPH_PPROF_HEAP=exact). You can specify the gc GET parameter to run GC before taking "
    "the heap sample.",
    "mutex": "Stack traces of waiters on contended locks (threading.Lock/RLock). Off unless "
    "DURAGRAPH_PPROF_MUTEX_FRACTION is set.",
    "profile": "CPU profile (per-thread CPU time). You can specify the duration in the seconds "
    "GET parameter. After you get the profile file, use the go tool pprof command to "
    "investigate the profile.",
    "symbol": "Maps the addresses of the legacy text profiles (debug=1) to function names. GET "
    "with a query of +-separated addresses, or POST them in the body.",
    "threadcreate": "Stack traces of the live threads (Python threads are created from the "
    "stack shown).",
    "trace": "A trace of execution of the current program: sampled stacks of every thread, GC "
    "pauses and asyncio task steps, as Chrome Trace Event JSON (open it in ui.perfetto.dev). "
    "You can specify the duration in the seconds GET parameter.",
    "wall": "Wall-clock profile: where every thread spends time, running or waiting. You can "
    "specify the duration in the seconds GET parameter.",
}


class Registry:
    def __init__(self, counts: dict[str, Callable[[], int]], delta: set[str]) -> None:
        zero = lambda: 0  # Go shows 0 for the endpoints that are not profiles
        self._entries = {
            name: ProfileEntry(name, DESCRIPTIONS[name], counts.get(name, zero), name in delta)
            for name in sorted(DESCRIPTIONS)
        }

    def entries(self) -> list[ProfileEntry]:
        return list(self._entries.values())

    def get(self, name: str) -> ProfileEntry | None:
        return self._entries.get(name)
