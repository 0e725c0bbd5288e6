"""One profile request -> the exact bytes to serve. HTTP and gRPC both call `render`, so they
serve identical bytes by construction; transports only map `RequestError.kind` to a status.

Parameters follow Go's net/http/pprof (texts included), with the deliberate differences listed
in the README: `seconds` is validated strictly on every endpoint and capped.
"""

from __future__ import annotations

import math
import os
import re
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .core.locks import BLOCK, MUTEX
from .core.own import without_own_frames
from .core.snapshot import Profile, Sample, ValueType, subtract
from .encode import chrome, pprof, text
from .errors import RequestError

if TYPE_CHECKING:
    from .core.profiling_core import ProfilingCore

BINARY = "application/octet-stream"
TEXT = "text/plain; charset=utf-8"
BAD_SECONDS = 'invalid value for "seconds" - must be a positive integer'
# the "+"-separated words that could be numbers; int(word, 0) decides
_NUMBERS = re.compile(rb"(?<![^+])[0-9][0-9a-zA-Z_]{0,40}(?![^+])")


@dataclass(frozen=True, slots=True)
class ProfileRequest:
    name: str
    seconds: str | None = None
    debug: str | None = None
    gc: str | None = None


@dataclass(frozen=True, slots=True)
class Rendered:
    content_type: str
    filename: str | None  # Content-Disposition attachment name, None for inline text
    body: bytes


def render(core: ProfilingCore, request: ProfileRequest,
           cancel: threading.Event | None = None) -> Rendered:
    cancel = cancel or threading.Event()
    entry = core.registry.get(request.name)
    if entry is None or request.name == "symbol":
        raise RequestError("not_found", "Unknown profile")
    if request.name in _TIMED:
        default, parse, serve = _TIMED[request.name]
        return serve(core, _seconds(core, request.seconds, default, parse), cancel)
    if request.name == "cmdline":
        return Rendered(TEXT, None, "\x00".join(sys.argv).encode())
    debug = _int_or_zero(request.debug)
    if request.seconds:  # Go: any non-empty value selects a delta profile
        seconds = _seconds(core, request.seconds, None, _decimal)
        if not entry.delta:
            raise RequestError("invalid", '"seconds" parameter is not supported for this profile type')
        if debug != 0:
            raise RequestError("invalid", "seconds and debug params are incompatible")
        return _delta(core, request.name, seconds, cancel)
    snapshot = _SNAPSHOTS[request.name](core, _int_or_zero(request.gc) > 0)
    if debug <= 0:
        return Rendered(BINARY, request.name, pprof.encode(snapshot, _program()))
    return Rendered(TEXT, None, _text(core, request.name, snapshot, debug).encode())


def symbol(core: ProfilingCore, query: bytes) -> bytes:
    """Go's /symbol: `num_symbols: 1`, then `0x<addr> <function>` for each known address."""
    lines = ["num_symbols: 1\n"]
    for piece in _NUMBERS.findall(query):  # one C scan: 1 MiB of junk stays cheap
        try:
            addr = int(piece.decode("ascii"), 0)
        except (ValueError, UnicodeDecodeError):
            continue
        name = text.lookup(core.symbols, addr) if 0 < addr < 1 << 64 else None
        if name is not None:
            lines.append(f"{addr:#x} {name}\n")
    return "".join(lines).encode()


# -- parameters --------------------------------------------------------------------------------
def _int_or_zero(value: str | None) -> int:
    """Go's strconv.Atoi with errors ignored: what does not parse is 0."""
    try:
        return int(value, 10) if value else 0
    except ValueError:
        return 0


def _decimal(value: str) -> int:
    """Base-10 only, as Go's strconv.ParseInt(v, 10, 64): no 0x10, no 1e3."""
    return int(value, 10)


def _seconds(core: ProfilingCore, value: str | None, default: float | None,
             parse: Callable[[str], float]) -> float:
    if not value:
        if default is None:
            raise RequestError("invalid", BAD_SECONDS)
        return min(default, core.config.max_seconds)  # the cap bounds the default too
    try:
        if not value.isascii() or value.strip() != value or "_" in value:
            raise ValueError(value)  # Go's parsers: no "１", " 1" or "1_0"
        seconds = parse(value)
    except ValueError:
        raise RequestError("invalid", BAD_SECONDS) from None
    if not math.isfinite(seconds) or seconds <= 0:
        raise RequestError("invalid", BAD_SECONDS)
    limit = core.config.max_seconds
    if seconds > limit:
        raise RequestError(
            "invalid",
            f'invalid value for "seconds" - must be at most {limit} '
            "(raise DURAGRAPH_PPROF_MAX_SECONDS to allow more)",
        )
    return seconds


@contextmanager
def _long_request(core: ProfilingCore) -> Iterator[None]:
    if not core.long_requests.acquire(blocking=False):
        raise RequestError(
            "busy",
            f"too many concurrent long profile requests (limit {core.config.max_long_requests})"
            " - retry later or raise DURAGRAPH_PPROF_MAX_LONG_REQUESTS",
        )
    try:
        yield
    finally:
        core.long_requests.release()


def _wait(cancel: threading.Event, seconds: float) -> None:
    if cancel.wait(seconds):
        raise RequestError("cancelled", "context canceled")


# -- timed endpoints: CPU, wall, trace -----------------------------------------------------------
def _sampled(index: int, filename: str) -> Callable[[ProfilingCore, float, threading.Event], Rendered]:
    def serve(core: ProfilingCore, seconds: float, cancel: threading.Event) -> Rendered:
        with _long_request(core):
            window = core.sampler.open_window()
            try:
                _wait(cancel, seconds)
            finally:
                profiles = window.close()
        return Rendered(BINARY, filename,
                        pprof.encode(without_own_frames(profiles[index]), _program()))

    return serve


def _trace(core: ProfilingCore, seconds: float, cancel: threading.Event) -> Rendered:
    with _long_request(core):
        recorder = core.trace_recorder()
        recorder.start()
        try:
            _wait(cancel, seconds)
        finally:
            events = recorder.finish()
    metadata = {"program": _program(), "seconds": f"{seconds:g}",
                "note": "stacks sampled by duragraph-pprof; gc spans exact"}
    return Rendered(BINARY, "trace", chrome.encode(events, metadata))


# name -> (default seconds, parser, server); like Go, trace takes fractional seconds
_TIMED = {
    "profile": (30, _decimal, _sampled(0, "profile")),
    "wall": (30, _decimal, _sampled(1, "wall")),
    "trace": (1.0, float, _trace),
}


# -- snapshot profiles ---------------------------------------------------------------------------
GOROUTINE = ValueType("goroutine", "count")
THREADCREATE = ValueType("threadcreate", "count")
HEAP_OFF = ("heap profiling is off - set DURAGRAPH_PPROF_HEAP=sampled (or exact, for "
            "tracemalloc) or run under duragraph-pprof dev")


def _heap(core: ProfilingCore, collect_garbage: bool, default: str = "") -> Profile:
    profile = core.heap.profile(collect_garbage)
    if profile is None:
        why = getattr(core.heap, "why_off", "")
        raise RequestError("precondition", f"{HEAP_OFF} ({why})" if why else HEAP_OFF)
    return Profile(profile.sample_types, profile.period_type, profile.period, profile.samples,
                   profile.time_nanos, 0, default, (core.heap.comment,))


def _goroutine_profile(core: ProfilingCore, kinds: tuple[str, ...], kind: ValueType) -> Profile:
    snapshot = core.goroutines()
    counts: dict[tuple, int] = {}
    for g in snapshot.goroutines:
        if g.kind in kinds:
            key = (g.stack, (("goroutine.kind", g.kind),))
            counts[key] = counts.get(key, 0) + 1
    samples = tuple(Sample(stack, (n,), labels) for (stack, labels), n in counts.items())
    return Profile((kind,), kind, 1, samples, snapshot.time_nanos)


_SNAPSHOTS: dict[str, Callable[[ProfilingCore, bool], Profile]] = {
    "heap": lambda c, gc: _heap(c, gc),
    # sampled: cumulative since start, as Go's; exact (tracemalloc) has in-use values only
    "allocs": lambda c, gc: _heap(c, False, "alloc_space" if c.heap.mode == "sampled"
                                  else "inuse_space"),
    "goroutine": lambda c, gc: _goroutine_profile(c, ("thread", "asyncio_task"), GOROUTINE),
    "threadcreate": lambda c, gc: _goroutine_profile(c, ("thread",), THREADCREATE),
    "mutex": lambda c, gc: c.contention.profile(MUTEX),
    "block": lambda c, gc: c.contention.profile(BLOCK),
}


def _delta(core: ProfilingCore, name: str, seconds: float, cancel: threading.Event) -> Rendered:
    with _long_request(core):
        before = _SNAPSHOTS[name](core, False)
        _wait(cancel, seconds)
        after = _SNAPSHOTS[name](core, False)
    return Rendered(BINARY, f"{name}-delta", pprof.encode(subtract(after, before), _program()))


def _text(core: ProfilingCore, name: str, snapshot: Profile, debug: int) -> str:
    if name == "goroutine" and debug >= 2:
        return text.goroutine_dump(core.goroutines())
    core.remember_symbols(text.symbols(snapshot))
    if name in ("heap", "allocs"):
        return text.heap_profile(snapshot, core.heap.stats(), core.heap.rate)
    if name in (MUTEX, BLOCK):
        return text.contention_profile(name, snapshot)
    stacks = [s.stack for s in snapshot.samples for _ in range(s.values[0])]
    return text.count_profile(name, stacks)


def _program() -> str:
    return os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "python"

