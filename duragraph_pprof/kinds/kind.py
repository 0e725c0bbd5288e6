"""A profile kind: everything any surface needs to know of one profile, as Go's `pprof.Profile`
carries its name, its count and how it writes itself. `render` applies Go's parameter rules and
the admission control around it; the listeners, the page and the OTLP push only look kinds up.

A kind is one of:
- a snapshot (`snapshot`): taken at once, written as pprof (`debug=0`) or Go's legacy text
  (`debug=1/2`, `text`), and with `delta` a difference of two snapshots `seconds=N` apart;
- timed (`timed`): recorded over `seconds=N` (a default when absent);
- a fixed answer (`write`), such as the command line;
- a lookup (`lookup`) that the HTTP listener answers from the query or a POST body (`symbol`).
Any kind may also be pushed over OTLP every interval (`push`).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from ..core.snapshot import Profile, subtract
from ..encode import pprof, text

if TYPE_CHECKING:
    from ..core.profiling_core import ProfilingCore

BINARY = "application/octet-stream"
TEXT = "text/plain; charset=utf-8"


@dataclass(frozen=True, slots=True)
class Rendered:
    content_type: str
    filename: str | None  # Content-Disposition attachment name, None for inline text
    body: bytes


class Recording(Protocol):
    """A timed profile while it records. `stop()` ends the recording, cheaply, and runs even when
    the wait was cancelled; `write()` encodes what was recorded, once the caller has let go of
    its long-request slot."""

    def stop(self) -> None: ...

    def write(self, seconds: float) -> Rendered: ...


@dataclass(frozen=True, slots=True)
class Timed:
    """How a timed kind records: `start` begins a recording that `render` stops after the wait."""

    start: Callable[[ProfilingCore], Recording]
    default_seconds: float = 30  # without ?seconds=, as Go's CPU profile
    fractional: bool = False  # accepts seconds=0.5 (Go's trace does; its CPU profile does not)
    pprof: bool = True  # what it writes is a pprof profile (the page can draw it)


class Feed(Protocol):
    """What the OTLP push reads a kind from, opened once when the push starts: `take()` at each
    interval, `close()` at the last one."""

    def take(self) -> Any: ...

    def close(self) -> Any: ...


@dataclass(frozen=True, slots=True)
class Push:
    """How the OTLP push sends a kind: `pick` makes its profile (None: nothing this interval)
    from what the kind's feed gave. Kinds whose `feed` is the same function share one feed, so
    CPU and wall come from one window of the shared sampler."""

    feed: Callable[[ProfilingCore], Feed]
    pick: Callable[[Any], Profile | None]


class _Taking:
    """A feed that takes a fresh profile at every interval (a snapshot kind's push)."""

    def __init__(self, core: ProfilingCore, take: Callable[[ProfilingCore], Profile | None]):
        self._core = core
        self._take = take

    def take(self) -> Profile | None:
        return self._take(self._core)

    close = take


def every_interval(take: Callable[[ProfilingCore], Profile | None]) -> Push:
    """Push what `take(core)` returns at each interval (None sends nothing)."""
    return Push(lambda core: _Taking(core, take), _as_is)


def _as_is(profile: Profile | None) -> Profile | None:
    return profile


def _no_count(core: ProfilingCore) -> int:
    return 0  # Go shows 0 for the endpoints that are not profiles


TextWriter = Callable[["ProfilingCore", Profile, int], str]


@dataclass(frozen=True, slots=True)
class ProfileKind:
    name: str
    description: str  # what it measures, in Python terms (the index page, the gRPC list)
    count: Callable[[ProfilingCore], int] = _no_count
    # a snapshot now: (core, run a garbage collection first, for ?gc=1) -> profile
    snapshot: Callable[[ProfilingCore, bool], Profile] | None = None
    delta: bool = False  # a snapshot kind that accepts ?seconds=N for a delta of two snapshots
    text: TextWriter | None = None  # debug>=1; None: Go's count format under this kind's name
    gc: bool = False  # ?gc=1 means something to it (the page offers it)
    timed: Timed | None = None
    write: Callable[[ProfilingCore], Rendered] | None = None  # an answer that takes no parameter
    # an answer to a query of its own, from the URL or a POST body: only HTTP serves it (symbol)
    lookup: Callable[[ProfilingCore, bytes], Rendered] | None = None
    push: Push | None = None

    @property
    def pprof(self) -> bool:
        """Whether what it serves is a pprof profile."""
        return self.snapshot is not None or (self.timed is not None and self.timed.pprof)

    def write_to(self, core: ProfilingCore, profile: Profile, debug: int) -> Rendered:
        """Go's Profile.WriteTo: debug 0 is the gzipped protobuf, 1 and up the legacy text."""
        if debug <= 0:
            return Rendered(BINARY, self.name, pprof.encode(profile, program_name()))
        if self.text is None:
            return Rendered(TEXT, None, count_text(self.name, core, profile).encode())
        return Rendered(TEXT, None, self.text(core, profile, debug).encode())

    def write_delta(self, after: Profile, before: Profile) -> Rendered:
        return Rendered(BINARY, f"{self.name}-delta",
                        pprof.encode(subtract(after, before), program_name()))


def remember_symbols(core: ProfilingCore, profile: Profile) -> None:
    """Every legacy text profile names frames by address: /symbol answers for them after."""
    core.remember_symbols(text.symbols(profile))


def count_text(name: str, core: ProfilingCore, profile: Profile) -> str:
    """Go's count profile text (`NAME profile: total N`), each sample counted values[0] times."""
    remember_symbols(core, profile)
    stacks = [s.stack for s in profile.samples for _ in range(s.values[0])]
    return text.count_profile(name, stacks)


def program_name() -> str:
    return os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "python"
