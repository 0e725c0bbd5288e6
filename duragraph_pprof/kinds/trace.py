"""`trace`: sampled stacks of every thread, exact GC pauses and asyncio task steps over
`seconds=N` (fractions allowed, as Go's; 1 s by default), as Chrome Trace Event JSON."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..core.snapshot import TraceEvent
from ..encode import chrome
from .kind import BINARY, ProfileKind, Rendered, Timed, program_name

if TYPE_CHECKING:
    from ..core.profiling_core import ProfilingCore


class _Recording:
    def __init__(self, core: ProfilingCore) -> None:
        self._recorder = core.trace_recorder()
        self._recorder.start()
        self._events: tuple[TraceEvent, ...] = ()

    def stop(self) -> None:
        self._events = self._recorder.finish()

    def write(self, seconds: float) -> Rendered:
        metadata = {"program": program_name(), "seconds": f"{seconds:g}",
                    "note": "stacks sampled by duragraph-pprof; gc spans exact"}
        return Rendered(BINARY, "trace", chrome.encode(self._events, metadata))


TRACE = ProfileKind(
    "trace",
    "A trace of execution of the current program: sampled stacks of every thread, GC pauses "
    "and asyncio task steps, as Chrome Trace Event JSON (open it in ui.perfetto.dev). You can "
    "specify the duration in the seconds GET parameter.",
    timed=Timed(_Recording, default_seconds=1.0, fractional=True, pprof=False),
)
