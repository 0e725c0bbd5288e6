"""Goroutine-count, runtime and self-cost metrics through a MeterProvider of our own.

The provider is never made the global one: the application keeps its own OpenTelemetry setup.
Every instrument is observable, so nothing is recorded between pushes; the callbacks run on the
SDK's reader thread and only read cheap counters.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol

from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    MetricExporter,
    MetricExportResult,
    MetricReader,
    MetricsData,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import Resource

from ..failures import FailureLog
from .settings import GRPC, Settings
from .transport import ExportWatch, grpc_arguments, http_arguments

SCOPE = "duragraph_pprof"
KIND = "duragraph.goroutine.kind"
SIGNAL = "duragraph.signal"
ERROR_TYPE = "error.type"

Failures = Callable[[], Iterable[tuple[str, str, int]]]  # (signal, error type, count)


class MetricsSource(Protocol):
    """What the callbacks read: the collector's counters (a fake in unit tests)."""

    def goroutine_counts(self) -> tuple[int, int]: ...

    @property
    def sampler(self) -> Any: ...

    @property
    def heap(self) -> Any: ...


def open_exporter(settings: Settings) -> MetricExporter:
    """The SDK's OTLP metric exporter for the protocol, built from the same arguments as the
    profiles exporter (`transport.py`)."""
    if settings.protocol == GRPC:
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter

        return OTLPMetricExporter(**grpc_arguments(settings))
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
        OTLPMetricExporter as HttpMetricExporter,
    )

    return HttpMetricExporter(**http_arguments(settings))


class CountingExporter(MetricExporter):
    """Delegates to the SDK's exporter; counts its failed exports by kind, named as the profiles
    queue names them, and logs the first of each kind."""

    def __init__(self, inner: MetricExporter, endpoint: str) -> None:
        super().__init__(inner._preferred_temporality, inner._preferred_aggregation)
        self._inner = inner
        self._watch = ExportWatch(inner, endpoint)
        self.failures = FailureLog("OTLP export (metrics)")

    def export(self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any):
        # the reader never exports concurrently (it holds its export lock), as ExportWatch needs
        outcome = self._watch.run(
            lambda: self._inner.export(metrics_data, timeout_millis=timeout_millis, **kwargs),
            MetricExportResult.SUCCESS,
        )
        if outcome.ok:
            return MetricExportResult.SUCCESS
        self.failures.record(outcome.error, outcome.detail)
        return MetricExportResult.FAILURE

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return self._inner.force_flush(timeout_millis)

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        self._inner.shutdown(timeout_millis=timeout_millis, **kwargs)


def periodic_reader(exporter: MetricExporter, interval: float, timeout: float) -> MetricReader:
    return PeriodicExportingMetricReader(
        exporter,
        export_interval_millis=interval * 1000,
        export_timeout_millis=timeout * 1000,
    )


def build_provider(
    source: MetricsSource,
    resource: Resource,
    readers: Sequence[MetricReader],
    failures: Failures,
) -> MeterProvider:
    """A MeterProvider with every instrument of `INSTRUMENTS` registered; readers are injected
    (tests pass an InMemoryMetricReader)."""
    provider = MeterProvider(resource=resource, metric_readers=list(readers))
    meter = _GuardedMeter(provider.get_meter(SCOPE))
    observers = _Observers(source, failures)
    for kind, name, unit, description, callback in INSTRUMENTS:
        create = getattr(meter, f"create_observable_{kind}")
        create(name, [callback(observers)], unit, description)
    return provider


class _GuardedMeter:
    """Registers each callback so that one that raises is logged once per instrument and kind,
    and that collection skips it (the SDK would log the same traceback every interval)."""

    def __init__(self, meter: Any) -> None:
        self._meter = meter
        self._failures = FailureLog("OTLP metrics callback")

    def __getattr__(self, name: str) -> Callable[..., Any]:
        create = getattr(self._meter, name)

        def register(instrument: str, callbacks: Sequence[Callable], *args: Any) -> Any:
            return create(instrument, [self._guard(instrument, c) for c in callbacks], *args)

        return register

    def _guard(self, instrument: str, callback: Callable) -> Callable:
        def observe(options: CallbackOptions) -> Iterable[Observation]:
            try:
                return list(callback(options))
            except Exception as exc:  # noqa: BLE001 - a broken reading skips one point
                self._failures.record(f"{instrument}: {type(exc).__name__}", "", exc)
                return []

        return observe


SAMPLER = "duragraph.profiler.sampler"
Callback = Callable[[CallbackOptions], Iterable[Observation]]
# (kind, name, unit, description, the callback of an _Observers); kind names the meter's
# create_observable_<kind>: counter (monotonic sum), up_down_counter (sum) or gauge
INSTRUMENTS: tuple[tuple[str, str, str, str, Callable[[_Observers], Callback]], ...] = (
    ("up_down_counter", "duragraph.goroutine.count", "{goroutine}",
     "Live goroutines: Python threads and asyncio tasks, as the goroutine dump counts them",
     lambda o: o.goroutines),
    ("up_down_counter", "process.thread.count", "{thread}", "Process threads",
     lambda o: o.os_threads),
    ("counter", "cpython.gc.collections", "{collection}", "Collections per generation",
     lambda o: o.gc("collections")),
    ("counter", "cpython.gc.collected_objects", "{object}", "Objects collected",
     lambda o: o.gc("collected")),
    ("counter", "cpython.gc.uncollectable_objects", "{object}", "Uncollectable objects",
     lambda o: o.gc("uncollectable")),
    ("up_down_counter", "duragraph.tracemalloc.memory.used", "By",
     "Memory traced by tracemalloc now", lambda o: o.traced(0)),
    ("gauge", "duragraph.tracemalloc.memory.peak", "By", "Peak memory traced by tracemalloc",
     lambda o: o.traced(1)),
    ("counter", "duragraph.profiler.cpu.time", "s", "CPU time of the sampler",
     lambda o: o.sampler_cpu),
    ("counter", "duragraph.profiler.samples", "{sample}", "Stack samples taken",
     lambda o: o.sampler_field("samples")),
    ("counter", "duragraph.profiler.samples.dropped", "{tick}",
     "Sampling ticks skipped: the sampler fell behind or its CPU budget stretched the interval",
     lambda o: o.sampler_field("dropped")),
    ("gauge", "duragraph.profiler.sample.rate", "Hz",
     "Effective sampling rate: below the configured rate when the CPU budget stretches it",
     lambda o: o.sample_rate),
    ("counter", "duragraph.profiler.export.failures", "{request}",
     "Push requests not delivered, by signal and error type (queue_full = dropped)",
     lambda o: o.export_failures),
)


class _Observers:
    def __init__(self, source: MetricsSource, failures: Failures) -> None:
        self._source = source
        self._failures = failures

    def goroutines(self, _: CallbackOptions) -> Iterable[Observation]:
        threads, tasks = self._source.goroutine_counts()
        return [Observation(threads, {KIND: "thread"}), Observation(tasks, {KIND: "asyncio_task"})]

    def os_threads(self, _: CallbackOptions) -> Iterable[Observation]:
        return [Observation(os_thread_count())]

    def gc(self, key: str) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def observe(_: CallbackOptions) -> Iterable[Observation]:
            return [
                Observation(stats[key], {"cpython.gc.generation": generation})
                for generation, stats in enumerate(gc.get_stats())
            ]

        return observe

    def traced(self, which: int) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def observe(_: CallbackOptions) -> Iterable[Observation]:
            stats = self._source.heap.stats()
            return [] if stats is None else [Observation(stats[which])]

        return observe

    def sampler_cpu(self, _: CallbackOptions) -> Iterable[Observation]:
        return [Observation(self._source.sampler.stats().cpu_ns / 1e9)]

    def sampler_field(self, field: str) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def observe(_: CallbackOptions) -> Iterable[Observation]:
            return [Observation(getattr(self._source.sampler.stats(), field))]

        return observe

    def sample_rate(self, _: CallbackOptions) -> Iterable[Observation]:
        sampler = self._source.sampler  # which one runs: native, or the pure-Python fallback
        return [Observation(sampler.stats().effective_hz, {SAMPLER: sampler.implementation})]

    def export_failures(self, _: CallbackOptions) -> Iterable[Observation]:
        return [
            Observation(count, {SIGNAL: signal, ERROR_TYPE: error})
            for signal, error, count in self._failures()
        ]


def os_thread_count() -> int:
    """Threads of the whole process, native ones included (Linux /proc); else Python's."""
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as status:
            for line in status:
                if line.startswith("Threads:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return threading.active_count()
