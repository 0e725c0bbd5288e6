"""Unit tests of the push side without the Collector: settings from the environment, the SDK's
retries and retry hints as the profiles clients use them (a scripted in-process gRPC servicer and
HTTP server), the bounded queue, the metrics instruments (InMemoryMetricReader) and the pusher's
flush."""

from __future__ import annotations

import http.server
import threading
import time
from concurrent import futures
from contextlib import contextmanager
from email.message import Message
from typing import ClassVar

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration
from google.rpc import error_details_pb2
from opentelemetry.proto.collector.profiles.v1development import (
    profiles_service_pb2,
    profiles_service_pb2_grpc,
)
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.resources import Resource
from support.fakes import FakeCore

from duragraph_pprof.encode.otlp import Scope
from duragraph_pprof.errors import ConfigError
from duragraph_pprof.exporter import metrics as push_metrics
from duragraph_pprof.exporter import start_push
from duragraph_pprof.exporter.profiles import Attempt, GrpcClient, HttpClient
from duragraph_pprof.exporter.pusher import Pusher
from duragraph_pprof.exporter.queue import QUEUE_FULL, ExportQueue
from duragraph_pprof.exporter.resource import build_resource
from duragraph_pprof.exporter.settings import GRPC, HTTP_PROTOBUF, Settings, load_settings

# -- settings ------------------------------------------------------------------------------------

E = "OTEL_EXPORTER_OTLP_ENDPOINT"
P = "OTEL_EXPORTER_OTLP_PROFILES_"


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, None),
        ({"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "http://h:1"}, None),
        ({E: "http://127.0.0.1:4317"}, (GRPC, "127.0.0.1:4317", True)),
        ({E: "https://c.example:4317"}, (GRPC, "c.example:4317", False)),
        ({E: "c.example:4317"}, (GRPC, "c.example:4317", False)),
        (
            {E: "c.example:4317", "OTEL_EXPORTER_OTLP_INSECURE": "true"},
            (GRPC, "c.example:4317", True),
        ),
        ({E: "https://c:1", P + "INSECURE": "true"}, (GRPC, "c:1", False)),
        ({P + "ENDPOINT": "http://127.0.0.1:9"}, (GRPC, "127.0.0.1:9", True)),
        (
            {E: "http://127.0.0.1:4318/", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"},
            (HTTP_PROTOBUF, "http://127.0.0.1:4318/v1development/profiles", True),
        ),
        (
            {
                E: "http://a:1",
                P + "ENDPOINT": "https://b:2/custom",
                P + "PROTOCOL": "http/protobuf",
            },
            (HTTP_PROTOBUF, "https://b:2/custom", False),
        ),
    ],
)
def test_endpoint_protocol_and_security(environ, expected):
    settings = load_settings(environ, "profiles")
    got = settings and (settings.protocol, settings.endpoint, settings.insecure)
    assert got == expected


def test_signal_variables_win_over_generic_ones():
    environ = {
        E: "http://127.0.0.1:4317",
        "OTEL_EXPORTER_OTLP_HEADERS": "a=1",
        P + "HEADERS": "Api-Key=s%20t, x = y",
        "OTEL_EXPORTER_OTLP_TIMEOUT": "3",
        P + "TIMEOUT": "2.5",
        P + "COMPRESSION": "gzip",
        "OTEL_EXPORTER_OTLP_CERTIFICATE": "/ca.pem",
    }
    s = load_settings(environ, "profiles")
    assert s.headers == (("api-key", "s t"), ("x", "y"))
    assert (s.timeout, s.compression, s.certificate) == (2.5, "gzip", "/ca.pem")
    m = load_settings(environ, "metrics")
    assert (m.headers, m.timeout, m.compression) == ((("a", "1"),), 3.0, "none")


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
        (P + "TIMEOUT", "0"),
        (P + "TIMEOUT", "soon"),
        (P + "COMPRESSION", "deflate"),  # gRPC has gzip only
        (P + "HEADERS", "novalue"),
        ("OTEL_EXPORTER_OTLP_INSECURE", "maybe"),
        (E, "nohostport"),
    ],
)
def test_bad_values_are_config_errors_naming_the_variable(variable, value):
    environ = {E: "127.0.0.1:4317", variable: value}
    with pytest.raises(ConfigError) as info:
        load_settings(environ, "profiles")
    assert info.value.variable == variable and info.value.value == value


def test_http_endpoint_must_be_a_url():
    with pytest.raises(ConfigError):
        load_settings(
            {E: "127.0.0.1:4318", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}, "profiles"
        )


def test_resource_reads_the_given_environment():
    resource = build_resource(
        {
            "OTEL_RESOURCE_ATTRIBUTES": "service.name=a,deployment.environment=t%20est",
            "OTEL_SERVICE_NAME": "svc",
        }
    )
    attrs = resource.attributes
    assert attrs["service.name"] == "svc"
    assert attrs["deployment.environment"] == "t est"
    assert attrs["process.runtime.name"] == "cpython"
    assert isinstance(attrs["process.pid"], int) and attrs["process.executable.name"]
    with pytest.raises(ConfigError):
        build_resource({"OTEL_RESOURCE_ATTRIBUTES": "oops"})


def test_an_unreadable_certificate_is_a_config_error_and_leaves_no_thread():
    before = set(threading.enumerate())
    environ = {E: "https://127.0.0.1:4317", "OTEL_EXPORTER_OTLP_CERTIFICATE": "/nonexistent.pem"}
    with pytest.raises(ConfigError) as info:
        start_push(FakeCore(), None, environ)
    assert info.value.value == "/nonexistent.pem"
    assert set(threading.enumerate()) <= before


def test_no_endpoint_means_no_push():
    assert start_push(object(), None, {"OTEL_SERVICE_NAME": "x"}) is None


# -- a scripted client for the queue ------------------------------------------------------------


class ScriptedClient:
    def __init__(self, attempts):
        self.attempts = list(attempts)
        self.calls = []
        self.closed = False

    def send(self, body, timeout):
        self.calls.append((body, timeout, threading.current_thread().name))
        return self.attempts.pop(0) if self.attempts else Attempt(ok=True)

    def close(self):
        self.closed = True


# -- the queue -----------------------------------------------------------------------------------


class BlockingClient(ScriptedClient):
    def __init__(self):
        super().__init__([])
        self.release = threading.Event()

    def send(self, body, timeout):
        self.release.wait(5)
        return super().send(body, timeout)


def test_queue_drops_the_oldest_when_full_and_counts_it():
    client = BlockingClient()
    queue = ExportQueue(client, timeout=5, max_items=3, max_bytes=1 << 20)
    try:
        for i in range(10):
            queue.put(b"%d" % i)
        time.sleep(0.05)
        items, size = queue.pending()
        assert items <= 3 and size <= 3
        client.release.set()
        deadline = time.monotonic() + 5
        while not queue.idle() and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        queue.close(flush_timeout=5)
    stats = queue.stats()
    assert stats.sent + stats.dropped == 10
    assert stats.dropped >= 6 and dict(stats.failures)[QUEUE_FULL] == stats.dropped
    assert [c[0] for c in client.calls][-1] == b"9"  # the newest always survives
    assert {c[2] for c in client.calls} == {"duragraph-pprof-export"}
    assert client.closed


def test_queue_is_bounded_in_bytes_too():
    client = BlockingClient()
    queue = ExportQueue(client, timeout=5, max_items=100, max_bytes=1000)
    try:
        for _ in range(20):
            queue.put(b"x" * 400)
        assert queue.pending()[1] <= 1000
    finally:
        client.release.set()
        queue.close(flush_timeout=5)


# -- the SDK's retries and hints, as the profiles clients use them, against scripted servers ----

U = grpc.StatusCode.UNAVAILABLE


class ScriptedProfilesService(profiles_service_pb2_grpc.ProfilesServiceServicer):
    """Answers each Export from a script of (status, RetryInfo delay in seconds or None), then
    OK; keeps when each request arrived."""

    def __init__(self, script=()):
        self.script = list(script)
        self.arrivals = []

    def Export(self, request, context):
        self.arrivals.append(time.monotonic())
        if self.script:
            code, delay = self.script.pop(0)
            if delay is not None:
                whole = int(delay)
                info = error_details_pb2.RetryInfo(
                    retry_delay=Duration(seconds=whole, nanos=round((delay - whole) * 1e9)))
                context.set_trailing_metadata(
                    (("google.rpc.retryinfo-bin", info.SerializeToString()),))
            context.abort(code, "scripted")
        return profiles_service_pb2.ExportProfilesServiceResponse()

    def gaps(self):
        return [b - a for a, b in zip(self.arrivals, self.arrivals[1:])]


@contextmanager
def profiles_server(service, workers: int):
    """A real gRPC ProfilesService on an OS-chosen loopback port; yields the client for it."""
    executor = futures.ThreadPoolExecutor(workers)
    server = grpc.server(executor)
    profiles_service_pb2_grpc.add_ProfilesServiceServicer_to_server(service, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield GrpcClient(Settings("profiles", GRPC, f"127.0.0.1:{port}", insecure=True))
    finally:
        server.stop(None).wait()
        executor.shutdown()


def test_retry_backs_off_exponentially_and_prefers_the_server_hint():
    service = ScriptedProfilesService([(U, None), (U, 0.25), (U, None)])
    with profiles_server(service, 2) as client:
        try:
            assert client.send(b"", 30).ok
        finally:
            client.close()
    first, hinted, third = service.gaps()
    assert 0.8 <= first <= 1.2 + 0.3  # 2**0 s, +-20 % jitter
    assert 0.25 <= hinted <= 0.25 + 0.3  # the server's hint instead of 2**1 s
    assert 3.2 <= third <= 4.8 + 0.3  # 2**2 s


def test_retry_stops_on_permanent_errors_and_at_the_deadline():
    service = ScriptedProfilesService([(grpc.StatusCode.INVALID_ARGUMENT, None)])
    with profiles_server(service, 2) as client:
        try:
            assert client.send(b"", 30).error == "INVALID_ARGUMENT"
        finally:
            client.close()
    assert len(service.arrivals) == 1
    service = ScriptedProfilesService([(U, 5.0)] * 6)
    with profiles_server(service, 2) as client:
        try:
            started = time.monotonic()
            result = client.send(b"", 3)
            assert time.monotonic() - started < 1
        finally:
            client.close()
    assert (result.ok, len(service.arrivals)) == (False, 1)  # a 5 s hint does not fit a 3 s budget


def test_grpc_client_reads_the_retryinfo_hint():
    service = ScriptedProfilesService([(U, 0.3)])
    with profiles_server(service, 2) as client:
        try:
            started = time.monotonic()
            assert client.send(b"", 5).ok
            assert time.monotonic() - started < 2
        finally:
            client.close()
    (gap,) = service.gaps()
    assert 0.3 <= gap < 0.3 + 0.3  # the hint, not the 0.8-1.2 s backoff


class SlowProfilesService(profiles_service_pb2_grpc.ProfilesServiceServicer):
    def __init__(self) -> None:
        self.release = threading.Event()

    def Export(self, request, context):
        self.release.wait(1.0)  # slower than the client's timeout
        return profiles_service_pb2.ExportProfilesServiceResponse()


def test_a_slow_collector_costs_timeouts_not_application_time():
    service = SlowProfilesService()
    with profiles_server(service, 4) as client:
        queue = ExportQueue(client, timeout=0.3, max_items=4)
        try:
            slowest = 0.0
            for _ in range(40):
                started = time.perf_counter()
                queue.put(b"\x0a\x00" * 100)
                slowest = max(slowest, time.perf_counter() - started)
                time.sleep(0.02)
            assert slowest < 0.05, slowest  # put() never waits for the network
            assert queue.pending()[0] <= 4
        finally:
            service.release.set()
            queue.close(flush_timeout=5)
    failures = dict(queue.stats().failures)
    assert failures.get("DEADLINE_EXCEEDED", 0) >= 1 and failures.get(QUEUE_FULL, 0) >= 1


class _RetryAfterHandler(http.server.BaseHTTPRequestHandler):
    retry_after = "0"
    seen: ClassVar[list[tuple[str, Message, bytes, float]]] = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        # the headers as received: their names are case-insensitive (the SDK sends lower case)
        self.seen.append((self.path, self.headers, body, time.monotonic()))
        if len(self.seen) == 1:
            self.send_response(503)
            self.send_header("Retry-After", self.retry_after)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        payload = profiles_service_pb2.ExportProfilesServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


@pytest.mark.parametrize(
    ("retry_after", "waits"),
    [
        ("0", (0.0, 0.3)),  # seconds
        ("Thu, 01 Jan 1970 00:00:00 GMT", (0.0, 0.3)),  # an HTTP date, here in the past
        ("nonsense", (0.8, 1.2 + 0.3)),  # unreadable: the 2**0 s backoff, +-20 %
    ],
)
def test_http_client_honours_retry_after_and_posts_protobuf(retry_after, waits):
    _RetryAfterHandler.seen = []
    _RetryAfterHandler.retry_after = retry_after
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _RetryAfterHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}/v1development/profiles"
    client = HttpClient(Settings("profiles", HTTP_PROTOBUF, url, True, (("x-key", "k"),)))
    try:
        assert client.send(b"abc", 5).ok
    finally:
        client.close()
        server.shutdown()
        server.server_close()
        thread.join()
    (*_, first), (path, headers, body, second) = _RetryAfterHandler.seen
    assert waits[0] <= second - first <= waits[1]
    assert (path, body) == ("/v1development/profiles", b"abc")
    assert headers["Content-Type"] == "application/x-protobuf" and headers["x-key"] == "k"


# -- metrics -------------------------------------------------------------------------------------


def collect(source, failures=lambda: [("profiles", QUEUE_FULL, 4)]):
    reader = InMemoryMetricReader()
    provider = push_metrics.build_provider(source, Resource.create({}), [reader], failures)
    try:
        data = reader.get_metrics_data()
    finally:
        provider.shutdown()
    return {
        m.name: m for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics
    }


def points(metric):
    return {tuple(sorted(p.attributes.items())): p.value for p in metric.data.data_points}


def test_metrics_names_units_and_attributes():
    found = collect(FakeCore())
    goroutines = found["duragraph.goroutine.count"]
    assert goroutines.unit == "{goroutine}"
    assert points(goroutines) == {
        (("duragraph.goroutine.kind", "thread"),): 5,
        (("duragraph.goroutine.kind", "asyncio_task"),): 2,
    }
    assert found["process.thread.count"].unit == "{thread}"
    assert min(points(found["process.thread.count"]).values()) >= 1
    for name, unit in (
        ("cpython.gc.collections", "{collection}"),
        ("cpython.gc.collected_objects", "{object}"),
        ("cpython.gc.uncollectable_objects", "{object}"),
    ):
        assert found[name].unit == unit and found[name].data.is_monotonic
        assert {k for (k,) in points(found[name])} == {
            ("cpython.gc.generation", 0),
            ("cpython.gc.generation", 1),
            ("cpython.gc.generation", 2),
        }
    assert points(found["duragraph.tracemalloc.memory.used"]) == {(): 1000}
    assert points(found["duragraph.tracemalloc.memory.peak"]) == {(): 5000}
    assert found["duragraph.tracemalloc.memory.used"].unit == "By"
    assert points(found["duragraph.profiler.cpu.time"]) == {(): 2.5}
    assert found["duragraph.profiler.cpu.time"].unit == "s"
    assert points(found["duragraph.profiler.samples"]) == {(): 40}
    assert points(found["duragraph.profiler.samples.dropped"]) == {(): 3}
    assert points(found["duragraph.profiler.sample.rate"]) == {
        (("duragraph.profiler.sampler", "native"),): 42.5
    }
    assert found["duragraph.profiler.sample.rate"].unit == "Hz"
    assert points(found["duragraph.profiler.export.failures"]) == {
        (("duragraph.signal", "profiles"), ("error.type", QUEUE_FULL)): 4
    }


def test_tracemalloc_metrics_are_absent_when_heap_tracing_is_off():
    found = collect(FakeCore(heap_stats=None))
    assert "duragraph.tracemalloc.memory.used" not in found


# -- the pusher ----------------------------------------------------------------------------------


def test_stop_flushes_the_last_window_once_and_is_idempotent():
    core = FakeCore()
    client = ScriptedClient([])
    queue = ExportQueue(client, timeout=5)
    pusher = Pusher(core, 3600, {"service.name": "s"}, Scope("t"), queue, None)
    pusher.start()
    pusher.stop()
    pusher.stop()
    window = core.sampler.windows[0]
    assert window.closed and window.taken == 1
    assert len(client.calls) == 1 and client.closed
    request = profiles_service_pb2.ExportProfilesServiceRequest.FromString(client.calls[0][0])
    (profile_list,) = [sp.profiles for rp in request.resource_profiles for sp in rp.scope_profiles]
    assert len(profile_list) == 2  # the empty wall profile is not sent
