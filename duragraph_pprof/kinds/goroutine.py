"""`goroutine` (every thread and live asyncio task) and `threadcreate` (the threads), counted by
stack. `goroutine?debug=2` is Go's panic-style dump."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..core.snapshot import ASYNCIO_TASK, THREAD, Profile, Sample, ValueType
from ..encode import text
from .kind import ProfileKind, count_text

if TYPE_CHECKING:
    from ..core.profiling_core import ProfilingCore

GOROUTINE = ValueType("goroutine", "count")
THREADCREATE = ValueType("threadcreate", "count")


def _counted(core: ProfilingCore, kinds: tuple[str, ...], value_type: ValueType) -> Profile:
    snapshot = core.goroutines()
    counts: dict[tuple, int] = {}
    for g in snapshot.goroutines:
        if g.kind in kinds:
            key = (g.stack, (("goroutine.kind", g.kind),))
            counts[key] = counts.get(key, 0) + 1
    samples = tuple(Sample(stack, (n,), labels) for (stack, labels), n in counts.items())
    return Profile((value_type,), value_type, 1, samples, snapshot.time_nanos)


def _goroutine_text(core: ProfilingCore, profile: Profile, debug: int) -> str:
    if debug >= 2:
        return text.goroutine_dump(core.goroutines())
    return count_text("goroutine", core, profile)


def _total(core: ProfilingCore) -> int:
    threads, tasks = core.goroutine_counts()
    return threads + tasks


GOROUTINES = ProfileKind(
    "goroutine",
    "Stack traces of all current goroutines (Python threads and asyncio tasks). Use debug=2 as "
    "a query parameter to export in the same format as an unrecovered panic.",
    count=_total,
    snapshot=lambda core, gc: _counted(core, (THREAD, ASYNCIO_TASK), GOROUTINE),
    delta=True,
    text=_goroutine_text,
)

THREADS = ProfileKind(
    "threadcreate",
    "Stack traces of the live threads (Python threads are created from the stack shown).",
    count=lambda core: core.goroutine_counts()[0],
    snapshot=lambda core, gc: _counted(core, (THREAD,), THREADCREATE),
    delta=True,
)
