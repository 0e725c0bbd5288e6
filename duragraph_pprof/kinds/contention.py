"""`mutex` and `block`: sampled lock contention and blocking waits (off unless their fraction is
set), in Go's contention format."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..core.locks import BLOCK, MUTEX
from ..core.snapshot import Profile
from ..encode import text
from .kind import ProfileKind, remember_symbols

if TYPE_CHECKING:
    from ..core.profiling_core import ProfilingCore


def _kind(which: str, description: str) -> ProfileKind:
    def write_text(core: ProfilingCore, profile: Profile, debug: int) -> str:
        remember_symbols(core, profile)
        return text.contention_profile(which, profile)

    return ProfileKind(
        which,
        description,
        count=lambda core: core.contention.count(which),
        snapshot=lambda core, gc: core.contention.profile(which),
        delta=True,
        text=write_text,
    )


MUTEXES = _kind(
    MUTEX,
    "Stack traces of waiters on contended locks (threading.Lock/RLock). Off unless "
    "DURAGRAPH_PPROF_MUTEX_FRACTION is set.",
)
BLOCKING = _kind(
    BLOCK,
    "Stack traces that led to blocking on synchronization primitives (locks, "
    "Condition/Event/Queue waits). Off unless DURAGRAPH_PPROF_BLOCK_FRACTION is set.",
)
