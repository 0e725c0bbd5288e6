"""One profile request -> the exact bytes to serve. HTTP and gRPC both call `render`, so they
serve identical bytes by construction; transports only map `RequestError.kind` to a status.

This module holds Go's parameter rules (net/http/pprof's texts included, with the deliberate
differences listed in the README: `seconds` is validated strictly on every endpoint and capped)
and the admission control of long requests; what each profile is and how it is written is its
kind's (`kinds/`), looked up in the registry.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from .errors import RequestError
from .kinds import BINARY, REGISTRY, TEXT, ProfileKind, Rendered, Timed

if TYPE_CHECKING:
    from .core.profiling_core import ProfilingCore

__all__ = ["BAD_SECONDS", "BINARY", "TEXT", "Cancel", "ProfileRequest", "Rendered", "render"]

BAD_SECONDS = 'invalid value for "seconds" - must be a positive integer'


@dataclass(frozen=True, slots=True)
class ProfileRequest:
    name: str
    seconds: str | None = None
    debug: str | None = None
    gc: str | None = None


class Cancel(Protocol):
    """Set once nobody waits for the answer any more: for HTTP the client hung up or the
    listener is stopping (`server._conn.ClientGone`), for gRPC the call ended (a
    `threading.Event`). `wait` returns True as soon as it is set."""

    def is_set(self) -> bool: ...

    def wait(self, timeout: float) -> bool: ...


def render(core: ProfilingCore, request: ProfileRequest, cancel: Cancel | None = None) -> Rendered:
    kind = REGISTRY.get(request.name)
    if kind is None:
        raise RequestError("not_found", "Unknown profile")
    cancel = threading.Event() if cancel is None else cancel
    if kind.timed is not None:
        parse = float if kind.timed.fractional else _decimal  # as Go: trace takes 0.5, CPU not
        seconds = _seconds(core, request.seconds, kind.timed.default_seconds, parse)
        return _record(core, kind.timed, seconds, cancel)
    if kind.write is not None:
        return kind.write(core)
    if kind.snapshot is None:  # e.g. symbol, which the HTTP listener answers (kind.lookup)
        raise RequestError("not_found", "Unknown profile")
    debug = _int_or_zero(request.debug)
    if request.seconds:  # Go: any non-empty value selects a delta profile
        seconds = _seconds(core, request.seconds, None, _decimal)
        if not kind.delta:
            raise RequestError("invalid", '"seconds" parameter is not supported for this profile type')
        if debug != 0:
            raise RequestError("invalid", "seconds and debug params are incompatible")
        return _delta(core, kind, seconds, cancel)
    return kind.write_to(core, kind.snapshot(core, _int_or_zero(request.gc) > 0), debug)


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


def _wait(cancel: Cancel, seconds: float) -> None:
    if cancel.wait(seconds):
        raise RequestError("cancelled", "context canceled")


# -- recording over seconds=N ----------------------------------------------------------------
def _record(core: ProfilingCore, timed: Timed, seconds: float, cancel: Cancel) -> Rendered:
    with _long_request(core):
        recording = timed.start(core)
        try:
            _wait(cancel, seconds)
        finally:
            recording.stop()
    return recording.write(seconds)  # encoded after the slot is free


def _delta(core: ProfilingCore, kind: ProfileKind, seconds: float, cancel: Cancel) -> Rendered:
    assert kind.snapshot is not None
    with _long_request(core):
        before = kind.snapshot(core, False)
        _wait(cancel, seconds)
        after = kind.snapshot(core, False)
    return kind.write_delta(after, before)
