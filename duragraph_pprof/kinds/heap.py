"""`heap` and `allocs`: the heap profile (sampled, or tracemalloc's exact live blocks), in Go's
two default views. Only `heap` is pushed: `allocs` is the same data."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..core.snapshot import Profile
from ..encode import text
from ..errors import RequestError
from .kind import ProfileKind, every_interval, remember_symbols

if TYPE_CHECKING:
    from ..core.profiling_core import ProfilingCore

HEAP_OFF = ("heap profiling is off - set DURAGRAPH_PPROF_HEAP=sampled (or exact, for "
            "tracemalloc) or run under duragraph-pprof dev")


def _profile(core: ProfilingCore, collect_garbage: bool, default: str = "") -> Profile:
    profile = core.heap.profile(collect_garbage)
    if profile is None:
        why = getattr(core.heap, "why_off", "")
        raise RequestError("precondition", f"{HEAP_OFF} ({why})" if why else HEAP_OFF)
    return Profile(profile.sample_types, profile.period_type, profile.period, profile.samples,
                   profile.time_nanos, 0, default, (core.heap.comment,))


def _allocs(core: ProfilingCore, collect_garbage: bool) -> Profile:
    # sampled: cumulative since start, as Go's; exact (tracemalloc) has in-use values only
    return _profile(core, False, "alloc_space" if core.heap.mode == "sampled" else "inuse_space")


def _count(core: ProfilingCore) -> int:
    return core.heap.record_count()


def _text(core: ProfilingCore, profile: Profile, debug: int) -> str:
    remember_symbols(core, profile)
    return text.heap_profile(profile, core.heap.stats(), core.heap.rate)


HEAP = ProfileKind(
    "heap",
    "A sampling of memory allocations of live objects, by allocating stack (one per "
    "DURAGRAPH_PPROF_HEAP_RATE bytes, as Go's MemProfileRate; exact with tracemalloc when "
    "DURAGRAPH_PPROF_HEAP=exact). You can specify the gc GET parameter to run GC before taking "
    "the heap sample.",
    count=_count,
    snapshot=_profile,
    delta=True,
    text=_text,
    gc=True,
    push=every_interval(lambda core: core.heap.profile()),  # None while heap profiling is off
)

ALLOCS = ProfileKind(
    "allocs",
    "A sampling of all past memory allocations since the profiler started, by allocating stack "
    "(default view alloc_space). With DURAGRAPH_PPROF_HEAP=exact (tracemalloc) it shows live "
    "blocks only, as heap. Use seconds=N for what a window added.",
    count=_count,
    snapshot=_allocs,
    delta=True,
    text=_text,
)
