"""OTLP push of profiles and metrics, on whenever an OTLP endpoint is configured.

`start_push(core, config, environ)` wires the profiling core to a profiles queue and a
MeterProvider of our own (never the global one) and returns a `Pusher`, or None when neither
`OTEL_EXPORTER_OTLP_ENDPOINT` nor a signal's own endpoint variable is set. The SDK is imported
only when pushing is on, so a profiler without push starts fast.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..config import Config
from .settings import load_settings

if TYPE_CHECKING:
    from .pusher import Pusher

__all__ = ["Pusher", "check_push_settings", "start_push"]


def check_push_settings(environ: Mapping[str, str]) -> None:
    """Raise ConfigError for a bad OTEL_* value, before the profiler starts anything."""
    load_settings(environ, "profiles")
    load_settings(environ, "metrics")


def start_push(core: Any, config: Config, environ: Mapping[str, str]) -> Pusher | None:
    """Start pushing; raises ConfigError for a bad OTEL_* value before anything starts."""
    profiles = load_settings(environ, "profiles")
    metrics = load_settings(environ, "metrics")
    if profiles is None and metrics is None:
        return None
    from .wiring import start

    return start(core, config, environ, profiles, metrics)


def __getattr__(name: str) -> Any:
    if name == "Pusher":
        from .pusher import Pusher

        return Pusher
    raise AttributeError(name)
