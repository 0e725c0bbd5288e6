"""Wires a running push: the profiles queue, the MeterProvider and the push thread."""

from __future__ import annotations

from collections.abc import Mapping
from importlib import metadata
from typing import Any

from opentelemetry.sdk.resources import Resource

from ..config import Config
from ..encode.otlp import Scope
from .metrics import SCOPE, CountingExporter, build_provider, open_exporter, periodic_reader
from .profiles import open_client
from .pusher import Pusher
from .queue import ExportQueue
from .resource import build_resource
from .settings import Settings


def start(core: Any, config: Config, environ: Mapping[str, str],
          profiles: Settings | None, metrics: Settings | None) -> Pusher:
    resource = build_resource(environ)
    queue = ExportQueue(open_client(profiles), profiles.timeout) if profiles else None
    try:
        return _start(core, config, resource, profiles, metrics, queue)
    except BaseException:
        if queue is not None:
            queue.close(flush_timeout=0)  # its thread must not outlive a failed start
        raise


def _start(
    core: Any,
    config: Config,
    resource: Resource,
    profiles: Settings | None,
    metrics: Settings | None,
    queue: ExportQueue | None,
) -> Pusher:
    provider = None
    if metrics is not None:
        exporter = CountingExporter(open_exporter(metrics), metrics.endpoint)

        def failures():
            found = [("profiles", error, n) for error, n in queue.stats().failures] if queue else []
            counts = sorted(exporter.failures.counts().items())
            return found + [("metrics", error, n) for error, n in counts]

        reader = periodic_reader(exporter, config.push_interval, metrics.timeout)
        provider = build_provider(core, resource, [reader], failures)
    pusher = Pusher(
        core,
        config.push_interval,
        dict(resource.attributes),  # type: ignore[arg-type]
        Scope(SCOPE, _version()),
        queue,
        provider,
        flush_timeout=max(s.timeout for s in (profiles, metrics) if s is not None),
    )
    return pusher.start()


def _version() -> str:
    try:
        return metadata.version("duragraph-pprof")
    except metadata.PackageNotFoundError:
        return ""
