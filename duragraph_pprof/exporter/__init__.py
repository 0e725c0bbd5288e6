"""OTLP push of profiles and metrics, on whenever an OTLP endpoint is configured.

`start_push(collector, config, environ)` wires the collector core to a profiles queue and a
MeterProvider of our own (never the global one) and returns a `Pusher`, or None when neither
`OTEL_EXPORTER_OTLP_ENDPOINT` nor a signal's own endpoint variable is set.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib import metadata
from typing import Any

from ..config import Config
from ..encode.otlp import Scope
from .metrics import SCOPE, CountingExporter, build_provider, open_exporter, periodic_reader
from .profiles import open_client
from .pusher import Pusher
from .queue import ExportQueue
from .resource import build_resource
from .settings import load_settings

__all__ = ["Pusher", "start_push"]


def start_push(collector: Any, config: Config, environ: Mapping[str, str]) -> Pusher | None:
    """Start pushing; raises ConfigError for a bad OTEL_* value before anything starts."""
    profiles = load_settings(environ, "profiles")
    metrics = load_settings(environ, "metrics")
    if profiles is None and metrics is None:
        return None
    resource = build_resource(environ)
    queue = ExportQueue(open_client(profiles), profiles.timeout) if profiles else None
    pusher_ref: list[Pusher] = []
    provider = None
    if metrics is not None:
        exporter = CountingExporter(open_exporter(metrics))

        def failures():
            found = list(pusher_ref[0].failures()) if pusher_ref else []
            return found + ([("metrics", "export_failed", exporter.failures)]
                            if exporter.failures else [])

        reader = periodic_reader(exporter, config.push_interval, metrics.timeout)
        provider = build_provider(collector, resource, [reader], failures)
    pusher = Pusher(
        collector,
        config.push_interval,
        dict(resource.attributes),  # type: ignore[arg-type]
        Scope(SCOPE, _version()),
        profiles,
        queue,
        provider,
    )
    pusher_ref.append(pusher)
    return pusher.start()


def _version() -> str:
    try:
        return metadata.version("duragraph-pprof")
    except metadata.PackageNotFoundError:
        return ""
