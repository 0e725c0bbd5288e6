"""Configuration: argument > environment > default, resolved once into a frozen Config.

A bad value is a ConfigError that quotes the variable and the value; nothing is silently replaced.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from .errors import ConfigError
from .guard import ALLOW_PUBLIC_VAR

DEV, SERVE = "dev", "serve"
DEV_HTTP_ADDR = "127.0.0.1:6060"
DEV_GRPC_ADDR = "127.0.0.1:6061"


@dataclass(frozen=True, slots=True)
class Config:
    mode: str = SERVE
    http_addr: str | None = None
    grpc_addr: str | None = None
    allow_public: bool = False
    token: str | None = None
    heap: str = "sampled"  # sampled (native, Go's way), exact (tracemalloc), off
    heap_depth: int = 16
    heap_rate: int = 524288  # Go's MemProfileRate: one sampled allocation per this many bytes
    sample_hz: int = 100
    cpu_budget: float = 0.01
    max_seconds: int = 300
    max_long_requests: int = 8
    http_threads: int = 16
    mutex_fraction: int = 0
    block_fraction: int = 0
    trace_max_events: int = 1_000_000
    push_interval: float = 60.0
    sampler: str = "auto"  # auto (native where it loads), native, python
    futex_slots: int | None = None  # the process's private futex hash: None leaves the kernel's


# variable -> (field, parser); the README's configuration table lists the same names
def _bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("true", "1", "yes", "on"):
        return True
    if lowered in ("false", "0", "no", "off", ""):
        return False
    raise ValueError("must be true or false")


def _addr(text: str) -> str | None:
    text = text.strip()
    if text.lower() in ("", "off", "none"):
        return None
    return text


def _int_in(lo: int, hi: int):
    def parse(text: str) -> int:
        value = int(text.strip(), 10)
        if not lo <= value <= hi:
            raise ValueError(f"must be an integer from {lo} to {hi}")
        return value

    return parse


def _float_in(lo: float, hi: float):
    def parse(text: str) -> float:
        value = float(text.strip())
        if not math.isfinite(value) or not lo <= value <= hi:
            raise ValueError(f"must be a number from {lo:g} to {hi:g}")
        return value

    return parse


def _one_of(*choices: str):
    def parse(text: str) -> str:
        value = text.strip().lower()
        if value not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}")
        return value

    return parse


def _heap_mode(text: str) -> str:
    """sampled, exact or off; true and false keep their old meaning (exact and off)."""
    value = text.strip().lower()
    if value in ("sampled", "exact", "off"):
        return value
    try:
        return "exact" if _bool(value) else "off"
    except ValueError:
        raise ValueError("must be sampled, exact or off") from None


def _futex_slots(text: str) -> int | None:
    """A power of two from 16 to 65536, or off (the kernel's own size)."""
    value = text.strip().lower()
    if value in ("", "off", "none"):
        return None
    n = int(value, 10) if value.isdigit() else 0
    if not 16 <= n <= 65536 or n & (n - 1):
        raise ValueError("must be a power of two from 16 to 65536, or off")
    return n


def _text(text: str) -> str | None:
    return text or None


ENV: dict[str, tuple[str, Any, str]] = {
    "DURAGRAPH_PPROF_ADDR": ("http_addr", _addr, "host:port of the HTTP pprof listener"),
    "DURAGRAPH_PPROF_GRPC_ADDR": ("grpc_addr", _addr, "host:port of the gRPC listener"),
    ALLOW_PUBLIC_VAR: ("allow_public", _bool, "true allows a non-loopback bind"),
    "DURAGRAPH_PPROF_TOKEN": ("token", _text, "bearer token required on every request"),
    "DURAGRAPH_PPROF_HEAP": ("heap", _heap_mode, "heap profile: sampled, exact or off"),
    "DURAGRAPH_PPROF_HEAP_DEPTH": ("heap_depth", _int_in(1, 256), "heap stack depth"),
    "DURAGRAPH_PPROF_HEAP_RATE": ("heap_rate", _int_in(1, 1 << 30), "bytes per heap sample"),
    "DURAGRAPH_PPROF_SAMPLE_HZ": ("sample_hz", _int_in(1, 1000), "stack sampling rate"),
    "DURAGRAPH_PPROF_CPU_BUDGET": ("cpu_budget", _float_in(0.001, 1.0), "sampler CPU share cap"),
    "DURAGRAPH_PPROF_MAX_SECONDS": ("max_seconds", _int_in(1, 86400), "cap on seconds="),
    "DURAGRAPH_PPROF_MAX_LONG_REQUESTS": ("max_long_requests", _int_in(1, 1024), "long requests"),
    "DURAGRAPH_PPROF_HTTP_THREADS": ("http_threads", _int_in(1, 1024), "HTTP worker threads"),
    "DURAGRAPH_PPROF_MUTEX_FRACTION": ("mutex_fraction", _int_in(0, 1 << 30), "1/N contention"),
    "DURAGRAPH_PPROF_BLOCK_FRACTION": ("block_fraction", _int_in(0, 1 << 30), "1/N blocking"),
    "DURAGRAPH_PPROF_TRACE_MAX_EVENTS": ("trace_max_events", _int_in(1, 10**8), "trace cap"),
    "DURAGRAPH_PPROF_PUSH_INTERVAL": ("push_interval", _float_in(0.1, 86400), "OTLP push period"),
    "DURAGRAPH_PPROF_SAMPLER": ("sampler", _one_of("auto", "native", "python"), "stack sampler"),
    "DURAGRAPH_PPROF_FUTEX_SLOTS": ("futex_slots", _futex_slots, "process futex hash slots"),
}
_VAR_OF = {name: var for var, (name, _, _) in ENV.items()}
_PARSER = {name: parse for name, parse, _ in ENV.values()}
_OPTIONAL = {f.name for f in fields(Config) if f.default is None}


def load_config(environ: Mapping[str, str], mode: str = SERVE, **overrides: Any) -> Config:
    """Resolve the configuration once: overrides > environment > the mode's defaults."""
    if mode not in (DEV, SERVE):
        raise ConfigError("mode", str(mode), "must be dev or serve", "use dev or serve")
    base = Config(mode=mode)
    if mode == DEV:
        # tracemalloc makes every allocation dearer, the sampler's too: dev allows it 5%
        base = replace(base, http_addr=DEV_HTTP_ADDR, grpc_addr=DEV_GRPC_ADDR, cpu_budget=0.05)
    values: dict[str, Any] = {}
    for var, (name, parse, _) in ENV.items():
        if var in environ:
            try:
                values[name] = parse(environ[var])
            except ValueError as exc:
                raise ConfigError(var, environ[var], _reason(exc), f"fix or unset {var}") from None
    for name, value in overrides.items():
        # an argument goes through the same parser as its variable: start(allow_public="false")
        # must not bind 0.0.0.0, and sample_hz=0 is as wrong here as in the environment
        if name not in _PARSER:
            raise ConfigError(name, str(value), "unknown setting", f"use one of {sorted(_PARSER)}")
        try:
            values[name] = None if value is None and name in _OPTIONAL else _PARSER[name](str(value))
        except ValueError as exc:
            raise ConfigError(name, str(value), _reason(exc), f"fix the {name} argument") from None
    return replace(base, **values)


def variable_of(field_name: str) -> str:
    """The environment variable that sets a Config field (for error messages)."""
    return _VAR_OF.get(field_name, field_name)


def _reason(exc: ValueError) -> str:
    text = str(exc)
    return text if text.startswith("must") else "not a valid value"
