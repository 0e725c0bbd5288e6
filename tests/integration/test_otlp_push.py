"""The OTLP push against the real OpenTelemetry Collector: profiles over gRPC and http/protobuf,
metrics, the goroutine count, a collector that is down at start, goes away and comes back, and
the final flush on stop()."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.collector import Collector, attributes_dict, running_collector
from support.heartbeat import Heartbeat

from duragraph_pprof.config import load_config
from duragraph_pprof.core.profiling_core import ProfilingCore
from duragraph_pprof.exporter import Pusher, start_push
from duragraph_pprof.exporter.queue import QUEUE_FULL

pytestmark = pytest.mark.collector

SERVICE = "otlp-push-test"


@pytest.fixture
def otelcol(tmp_path: Path) -> Iterator[Collector]:
    with running_collector(tmp_path / "otelcol") as handle:
        yield handle


def environ(otelcol: Collector, protocol: str = "grpc", **extra: str) -> dict[str, str]:
    endpoint = f"http://{otelcol.grpc_endpoint}" if protocol == "grpc" else otelcol.http_endpoint
    return {
        "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
        "OTEL_EXPORTER_OTLP_PROTOCOL": protocol,
        "OTEL_SERVICE_NAME": SERVICE,
        **extra,
    }


class Running:
    """A profiling core and its pusher, stopped in the right order whatever happens."""

    def __init__(self, env: dict[str, str], interval: float, heap: bool | str = False) -> None:
        self.config = load_config({}, push_interval=interval, heap=heap)
        self.core = ProfilingCore(self.config)
        self.core.start()
        try:
            pusher = start_push(self.core, self.config, env)
        except BaseException:
            self.core.stop()
            raise
        assert pusher is not None
        self.pusher: Pusher = pusher

    def stop(self) -> None:
        try:
            self.pusher.stop()
        finally:
            self.core.stop()

    def __enter__(self) -> Running:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def burn_cpu(seconds: float) -> None:
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        sum(i * i for i in range(2000))


# -- decoding what the collector wrote -----------------------------------------------------------


def decoded_profiles(otelcol: Collector) -> list[dict]:
    """Every profile as {resource, sample_type, period_type, period, start, end, samples}, where
    samples are (function names leaf first, value, attributes)."""
    out = []
    for data in otelcol.profiles():
        d = data.dictionary
        st = d.string_table
        for rp in data.resource_profiles:
            resource = attributes_dict(rp.resource.attributes, st)
            for sp in rp.scope_profiles:
                for p in sp.profiles:
                    samples = []
                    for s in p.samples:
                        names = tuple(
                            st[
                                d.function_table[
                                    d.location_table[i].lines[0].function_index
                                ].name_strindex
                            ]
                            for i in d.stack_table[s.stack_index].location_indices
                        )
                        attrs = {}
                        for index in s.attribute_indices:
                            kv = d.attribute_table[index]
                            kind = kv.value.WhichOneof("value")
                            value = getattr(kv.value, kind)
                            attrs[st[kv.key_strindex]] = (
                                st[value] if kind == "string_value_strindex" else value
                            )
                        samples.append((names, s.values[0], attrs))
                    out.append(
                        {
                            "resource": resource,
                            "mapping0": len(d.mapping_table) > 0,
                            "sample_type": (
                                st[p.sample_type.type_strindex],
                                st[p.sample_type.unit_strindex],
                            ),
                            "period_type": (
                                st[p.period_type.type_strindex],
                                st[p.period_type.unit_strindex],
                            ),
                            "period": p.period,
                            "end": p.time_unix_nano + p.duration_nano,
                            "samples": samples,
                        }
                    )
    return out


def of_type(profiles: list[dict], kind: str, unit: str) -> list[dict]:
    return [p for p in profiles if p["sample_type"] == (kind, unit)]


def metric_points(otelcol: Collector, name: str) -> list[tuple[dict, float, int]]:
    """(attributes, value, time) of every data point of `name`, oldest first."""
    out = []
    for data in otelcol.metrics():
        for rm in data.resource_metrics:
            for sm in rm.scope_metrics:
                for m in sm.metrics:
                    if m.name != name:
                        continue
                    kind = m.WhichOneof("data")
                    for point in getattr(m, kind).data_points:
                        value = point.as_int if point.HasField("as_int") else point.as_double
                        out.append((attributes_dict(point.attributes), value, point.time_unix_nano))
    return sorted(out, key=lambda item: item[2])


def all_metrics(otelcol: Collector) -> dict[str, tuple[str, str, dict]]:
    """name -> (unit, data kind, resource attributes)."""
    found = {}
    for data in otelcol.metrics():
        for rm in data.resource_metrics:
            for sm in rm.scope_metrics:
                for m in sm.metrics:
                    found[m.name] = (
                        m.unit,
                        m.WhichOneof("data"),
                        attributes_dict(rm.resource.attributes),
                    )
    return found


# -- 1. profiles over both protocols ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("protocol", "compression"),
    [("grpc", "none"), ("http/protobuf", "none"), ("grpc", "gzip"), ("http/protobuf", "gzip")],
)
def test_profiles_arrive_and_the_cpu_burner_carries_the_cpu(otelcol, protocol, compression):
    env = environ(otelcol, protocol, OTEL_EXPORTER_OTLP_COMPRESSION=compression)
    with Running(env, interval=3600, heap=True) as run:
        worker = threading.Thread(target=burn_cpu, args=(1.5,), name="burner")
        worker.start()
        worker.join()
        run.pusher.stop()  # one request: the window of the burn, flushed
        stats = run.pusher.queue.stats()
    assert (stats.sent, stats.failures) == (1, ())
    profiles = otelcol.wait_for(lambda: decoded_profiles(otelcol), timeout=10)
    kinds = {p["sample_type"] for p in profiles}
    assert {
        ("samples", "count"),
        ("cpu", "nanoseconds"),
        ("wall", "nanoseconds"),
        ("inuse_objects", "count"),
        ("inuse_space", "bytes"),
    } <= kinds
    for p in profiles:  # what Pyroscope needs, after the collector's decode and re-encode
        assert p["resource"]["service.name"] == SERVICE
        assert p["resource"]["process.executable.name"] and p["resource"]["process.pid"] > 0
        assert p["mapping0"] and p["period"] > 0 and p["period_type"][0]
    (cpu,) = of_type(profiles, "cpu", "nanoseconds")
    assert cpu["period_type"] == ("cpu", "nanoseconds")
    total = sum(value for _, value, _ in cpu["samples"])
    burner = sum(value for names, value, _ in cpu["samples"] if any("burn_cpu" in n for n in names))
    assert burner / total > 0.7, (burner, total)
    assert burner > 1.0e9  # 1.5 s of CPU burnt, sampled at 100 Hz
    attrs = [a for names, _, a in cpu["samples"] if any("burn_cpu" in n for n in names)]
    assert all(a["thread.name"] == "burner" and isinstance(a["thread.id"], int) for a in attrs)


def test_the_sampled_heap_pushes_gos_four_values(otelcol):
    retained = []
    with Running(environ(otelcol), interval=3600, heap="sampled") as run:
        retained.extend(bytearray(4096) for _ in range(4000))  # 16 MiB kept
        run.pusher.stop()
    profiles = otelcol.wait_for(lambda: decoded_profiles(otelcol), timeout=10)
    heap = [p for p in profiles if p["period_type"] == ("space", "bytes")]
    assert {p["sample_type"] for p in heap} == {
        ("alloc_objects", "count"), ("alloc_space", "bytes"),
        ("inuse_objects", "count"), ("inuse_space", "bytes")}
    assert all(p["period"] == 524288 for p in heap)
    (inuse,) = of_type(profiles, "inuse_space", "bytes")
    here = sum(v for names, v, _ in inuse["samples"]
               if any("test_the_sampled_heap_pushes" in n for n in names))
    assert here >= 8 * 2**20, here  # an estimate of 16 MiB, from about 32 samples
    del retained


# -- 2. metrics and the goroutine count -------------------------------------------------------------


def test_metrics_arrive_and_the_goroutine_count_matches_the_dump(otelcol):
    release = threading.Event()
    threads = [threading.Thread(target=release.wait, name=f"parked-{i}") for i in range(4)]
    loop = asyncio.new_event_loop()
    loop_thread = threading.Thread(target=loop.run_forever, name="loop")
    for t in threads + [loop_thread]:
        t.start()

    async def park():
        await asyncio.sleep(3600)

    tasks = [asyncio.run_coroutine_threadsafe(_spawn(park), loop).result() for _ in range(3)]
    try:
        with Running(environ(otelcol), interval=0.5, heap=True) as run:
            time.sleep(1.0)  # let every push thread start: the set is steady from here
            dump = run.core.goroutines()
            expected = {"thread": dump.threads, "asyncio_task": dump.tasks}
            started = time.time_ns()
            points = otelcol.wait_for(
                lambda: [
                    p for p in metric_points(otelcol, "duragraph.goroutine.count") if p[2] > started
                ],
                timeout=10,
            )
            assert (expected["thread"], expected["asyncio_task"]) == run.core.goroutine_counts()
    finally:
        for task in tasks:
            loop.call_soon_threadsafe(task.cancel)
        loop.call_soon_threadsafe(loop.stop)
        release.set()
        for t in threads + [loop_thread]:
            t.join()
        loop.close()
    latest = {}
    for attrs, value, _ in points:
        latest[attrs["duragraph.goroutine.kind"]] = value
    assert latest == expected
    assert expected["asyncio_task"] >= 3 and expected["thread"] >= 6

    found = all_metrics(otelcol)
    assert found["duragraph.goroutine.count"][:2] == ("{goroutine}", "sum")
    assert found["process.thread.count"][:2] == ("{thread}", "sum")
    assert found["cpython.gc.collections"][:2] == ("{collection}", "sum")
    assert found["cpython.gc.collected_objects"][:2] == ("{object}", "sum")
    assert found["cpython.gc.uncollectable_objects"][:2] == ("{object}", "sum")
    assert found["duragraph.tracemalloc.memory.used"][:2] == ("By", "sum")
    assert found["duragraph.tracemalloc.memory.peak"][:2] == ("By", "gauge")
    assert found["duragraph.profiler.cpu.time"][:2] == ("s", "sum")
    assert found["duragraph.profiler.samples"][:2] == ("{sample}", "sum")
    assert found["duragraph.profiler.samples.dropped"][:2] == ("{tick}", "sum")
    assert found["duragraph.goroutine.count"][2]["service.name"] == SERVICE
    gens = {
        a["cpython.gc.generation"] for a, _, _ in metric_points(otelcol, "cpython.gc.collections")
    }
    assert gens == {0, 1, 2}


async def _spawn(coro_fn):
    return asyncio.get_running_loop().create_task(coro_fn())


# -- 3. a collector that is down, goes away and comes back ---------------------------------------


def test_collector_down_at_start_then_back_then_gone_then_back(otelcol):
    otelcol.stop()  # down at start; its ports stay reserved for start()
    app = Heartbeat().start()
    env = environ(otelcol, OTEL_EXPORTER_OTLP_TIMEOUT="1")
    try:
        with Running(env, interval=0.2) as run:
            queue = run.pusher.queue
            largest = 0
            deadline = time.monotonic() + 30
            # push into a dead collector until the bounded queue overflows (about 2 s unloaded)
            while queue.stats().dropped == 0 and time.monotonic() < deadline:
                largest = max(largest, queue.pending()[0])
                time.sleep(0.05)
            down = queue.stats()
            assert down.sent == 0 and down.dropped > 0
            assert largest <= 8  # bounded: the queue holds at most 8 requests
            assert dict(down.failures).get("UNAVAILABLE", 0) >= 1

            otelcol.start()
            otelcol.wait_for(
                lambda: decoded_profiles(otelcol),
                timeout=20,
                description="pushes resume after the collector starts",
            )
            failures = otelcol.wait_for(
                lambda: [
                    p
                    for p in metric_points(otelcol, "duragraph.profiler.export.failures")
                    if p[0] == {"duragraph.signal": "profiles", "error.type": QUEUE_FULL}
                ],
                timeout=10,
                description="drops counted in the self-metrics",
            )
            assert failures[-1][1] >= down.dropped

            otelcol.stop()  # gone mid-run
            time.sleep(1.5)
            before = queue.stats().sent
            otelcol.start()
            otelcol.wait_for(
                lambda: queue.stats().sent > before,
                timeout=20,
                description="pushes resume after a mid-run outage",
            )
            assert queue.pending()[0] <= 8
    finally:
        app.stop()
    assert app.beats > 1000
    assert app.max_gap < 0.5, app.max_gap  # the application never waited on the push


# -- 4. stop() flushes the last window ----------------------------------------------------------------


def burn_until(stop: threading.Event) -> None:
    while not stop.is_set():
        burn_cpu(0.01)


def test_stop_flushes_the_last_window(otelcol):
    stop_burning = threading.Event()
    worker = threading.Thread(target=burn_until, args=(stop_burning,), name="last-burner")
    try:
        with Running(environ(otelcol, "http/protobuf"), interval=0.5) as run:
            worker.start()
            time.sleep(1.2)  # a couple of periodic pushes, then stop mid-window
            stopping_at = time.time_ns()
            run.pusher.stop()
            sent = run.pusher.queue.stats().sent
    finally:
        stop_burning.set()
        worker.join()
    profiles = of_type(
        otelcol.wait_for(
            lambda: len(otelcol.profiles()) >= sent and decoded_profiles(otelcol), timeout=10
        ),
        "cpu",
        "nanoseconds",
    )
    last = max(profiles, key=lambda p: p["end"])
    assert last["end"] >= stopping_at  # the window closed by stop() itself
    assert any("burn_until" in n for names, _, _ in last["samples"] for n in names)
