"""Profiles and metrics are one transport: the same OTEL_EXPORTER_OTLP_* variable means the same
for both signals (headers, compression, certificate, timeout), and a failing endpoint is retried
and counted the same way for both. Against real listeners on loopback: a gRPC server with both
OTLP services, an HTTP server with both paths, each optionally over TLS."""

from __future__ import annotations

import gzip
import http.server
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent import futures
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration
from google.rpc import error_details_pb2
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc
from opentelemetry.proto.collector.profiles.v1development import (
    profiles_service_pb2,
    profiles_service_pb2_grpc,
)
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricsData

import duragraph_pprof
from duragraph_pprof.exporter.metrics import CountingExporter, open_exporter
from duragraph_pprof.exporter.profiles import open_client
from duragraph_pprof.exporter.queue import ExportQueue
from duragraph_pprof.exporter.settings import load_settings

SIGNALS = ("profiles", "metrics")
PATHS = {"/v1development/profiles": "profiles", "/v1/metrics": "metrics"}
REQUESTS = {
    "profiles": profiles_service_pb2.ExportProfilesServiceRequest,
    "metrics": metrics_service_pb2.ExportMetricsServiceRequest,
}
U = grpc.StatusCode.UNAVAILABLE


@dataclass
class Behaviour:
    """How a listener answers every request of either signal."""

    grpc_status: grpc.StatusCode | None = None
    retry_delay: float | None = None  # RetryInfo (gRPC), in seconds
    http_status: int = 200
    retry_after: str | None = None  # Retry-After (HTTP)
    slow: float = 0.0  # seconds before answering
    release: threading.Event = field(default_factory=threading.Event)


@dataclass
class Seen:
    signal: str
    headers: dict[str, str]  # names in lower case
    body: bytes | None  # decompressed (HTTP only)
    at: float


@dataclass
class Listener:
    endpoint: str  # for OTEL_EXPORTER_OTLP_ENDPOINT
    seen: list[Seen]

    def of(self, signal: str) -> list[Seen]:
        return [s for s in self.seen if s.signal == signal]


# -- the listeners --------------------------------------------------------------------------------


class _Export:
    def __init__(self, signal: str, response, behaviour: Behaviour, seen: list[Seen]) -> None:
        self._signal, self._response = signal, response
        self._behaviour, self._seen = behaviour, seen

    def Export(self, request, context):
        self._seen.append(Seen(self._signal, dict(context.invocation_metadata()), None,
                               time.monotonic()))
        b = self._behaviour
        if b.slow:
            b.release.wait(b.slow)
        if b.grpc_status is not None:
            if b.retry_delay is not None:
                info = error_details_pb2.RetryInfo(
                    retry_delay=Duration(nanos=round(b.retry_delay * 1e9)))
                context.set_trailing_metadata(
                    (("google.rpc.retryinfo-bin", info.SerializeToString()),))
            context.abort(b.grpc_status, "scripted")
        return self._response()


class _Profiles(_Export, profiles_service_pb2_grpc.ProfilesServiceServicer):
    pass


class _Metrics(_Export, metrics_service_pb2_grpc.MetricsServiceServicer):
    pass


@contextmanager
def grpc_listener(behaviour: Behaviour, tls: tuple[bytes, bytes] | None = None,
                  options: tuple = ()) -> Iterator[Listener]:
    """Both OTLP gRPC services on one server on an OS-chosen loopback port."""
    seen: list[Seen] = []
    executor = futures.ThreadPoolExecutor(4)
    server = grpc.server(executor, options=options)
    profiles_service_pb2_grpc.add_ProfilesServiceServicer_to_server(
        _Profiles("profiles", profiles_service_pb2.ExportProfilesServiceResponse, behaviour, seen),
        server)
    metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(
        _Metrics("metrics", metrics_service_pb2.ExportMetricsServiceResponse, behaviour, seen),
        server)
    if tls is None:
        port = server.add_insecure_port("127.0.0.1:0")
    else:
        port = server.add_secure_port("127.0.0.1:0", grpc.ssl_server_credentials([tls]))
    server.start()
    try:
        yield Listener(f"{'https' if tls else 'http'}://127.0.0.1:{port}", seen)
    finally:
        behaviour.release.set()
        server.stop(None).wait()
        executor.shutdown()


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _HttpServer

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        headers = {k.lower(): v for k, v in self.headers.items()}
        self.server.seen.append(Seen(PATHS[self.path], headers, body, time.monotonic()))
        b = self.server.behaviour
        if b.slow:
            b.release.wait(b.slow)
        self.send_response(b.http_status)
        if b.retry_after is not None:
            self.send_header("Retry-After", b.retry_after)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


class _HttpServer(http.server.ThreadingHTTPServer):
    seen: list[Seen]
    behaviour: Behaviour

    def handle_error(self, request, client_address):
        pass  # a refused TLS handshake or a client that gave up: what the tests provoke


@contextmanager
def http_listener(behaviour: Behaviour, tls: tuple[bytes, bytes] | None = None,
                  tmp: Path | None = None) -> Iterator[Listener]:
    """Both OTLP/HTTP paths on one server on an OS-chosen loopback port."""
    server = _HttpServer(("127.0.0.1", 0), _Handler)
    server.seen, server.behaviour = [], behaviour
    if tls is not None:
        assert tmp is not None
        (tmp / "server.key").write_bytes(tls[0])
        (tmp / "server.crt").write_bytes(tls[1])
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(tmp / "server.crt", tmp / "server.key")
        server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        scheme = "https" if tls else "http"
        yield Listener(f"{scheme}://127.0.0.1:{server.server_address[1]}", server.seen)
    finally:
        behaviour.release.set()
        server.shutdown()
        server.server_close()
        thread.join()


def listener(protocol: str, behaviour: Behaviour, **kwargs):
    return grpc_listener(behaviour, **kwargs) if protocol == "grpc" else http_listener(
        behaviour, **kwargs)


@pytest.fixture(scope="module")
def certificate(tmp_path_factory) -> tuple[Path, tuple[bytes, bytes]]:
    """A self-signed certificate for 127.0.0.1: (its path, (key, certificate) PEM bytes)."""
    where = tmp_path_factory.mktemp("tls")
    key, crt = where / "key.pem", where / "crt.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", str(key), "-out", str(crt), "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True, timeout=60)
    return crt, (key.read_bytes(), crt.read_bytes())


# -- both signals through the transports an environment sets up ---------------------------------


def metrics_data() -> MetricsData:
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    provider.get_meter("test").create_counter("test.requests").add(1)
    try:
        data = reader.get_metrics_data()
    finally:
        provider.shutdown()
    assert data is not None
    return data


def export_both(env: dict[str, str]) -> dict[str, dict[str, int]]:
    """One profiles request through the export queue and one metrics export through the counting
    exporter, as the push wires them; the failures each counted, by kind."""
    profiles, metrics = load_settings(env, "profiles"), load_settings(env, "metrics")
    assert profiles is not None and metrics is not None
    queue = ExportQueue(open_client(profiles), profiles.timeout)
    exporter = CountingExporter(open_exporter(metrics), metrics.endpoint)
    try:
        queue.put(REQUESTS["profiles"]().SerializeToString())
        exporter.export(metrics_data())
    finally:
        queue.close(flush_timeout=profiles.timeout + 10)
        exporter.shutdown()
    return {"profiles": dict(queue.stats().failures), "metrics": exporter.failures.counts()}


def environ(protocol: str, endpoint: str, **extra: str) -> dict[str, str]:
    return {"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, "OTEL_EXPORTER_OTLP_PROTOCOL": protocol,
            **extra}


# -- the tests ------------------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_the_profiler_pushes_both_signals_with_the_same_headers_and_compression(protocol):
    with listener(protocol, Behaviour()) as where:
        env = environ(protocol, where.endpoint, OTEL_EXPORTER_OTLP_HEADERS="x-tenant=t%201",
                      OTEL_EXPORTER_OTLP_COMPRESSION="gzip", OTEL_SERVICE_NAME="signals-test")
        profiler = duragraph_pprof.start("serve", environ=env, push_interval=3600)
        try:
            end = time.thread_time() + 0.3
            while time.thread_time() < end:  # samples for the last window
                sum(i * i for i in range(1000))
        finally:
            profiler.stop()  # flushes both signals
    firsts = {s.signal: s for s in reversed(where.seen)}
    assert set(firsts) == set(SIGNALS)
    for seen in firsts.values():
        assert seen.headers["x-tenant"] == "t 1"
        assert seen.headers["user-agent"].startswith("OTel-OTLP-Exporter-Python/")
        if protocol == "http/protobuf":
            assert seen.headers["content-encoding"] == "gzip"
            assert seen.headers["content-type"] == "application/x-protobuf"
            assert REQUESTS[seen.signal].FromString(seen.body).ByteSize() > 0
    assert firsts["profiles"].headers["user-agent"] == firsts["metrics"].headers["user-agent"]


@pytest.mark.parametrize(
    ("variables", "refused"),
    [
        ({"OTEL_EXPORTER_OTLP_COMPRESSION": "gzip"}, SIGNALS),
        ({"OTEL_EXPORTER_OTLP_PROFILES_COMPRESSION": "gzip"}, ("profiles",)),
        ({"OTEL_EXPORTER_OTLP_METRICS_COMPRESSION": "gzip"}, ("metrics",)),
        ({"OTEL_EXPORTER_OTLP_COMPRESSION": "gzip",
          "OTEL_EXPORTER_OTLP_METRICS_COMPRESSION": "none",
          "OTEL_EXPORTER_OTLP_PROFILES_COMPRESSION": "none"}, ()),
    ],
)
def test_a_compression_variable_means_the_same_for_both_signals_over_grpc(variables, refused):
    # a server with gzip disabled answers a gzip-compressed call with UNIMPLEMENTED
    no_gzip = (("grpc.compression_enabled_algorithms_bitset", 1),)
    with grpc_listener(Behaviour(), options=no_gzip) as where:
        failures = export_both(environ("grpc", where.endpoint, **variables))
    assert failures == {s: {"UNIMPLEMENTED": 1} if s in refused else {} for s in SIGNALS}


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_a_certificate_variable_means_the_same_for_both_signals(protocol, certificate, tmp_path):
    crt, pems = certificate
    refused = {"grpc": "UNAVAILABLE", "http/protobuf": "SSLError"}[protocol]
    with listener(protocol, Behaviour(), tls=pems,
                  **({"tmp": tmp_path} if protocol != "grpc" else {})) as where:
        env = environ(protocol, where.endpoint, OTEL_EXPORTER_OTLP_TIMEOUT="0.5")
        assert export_both(env) == {s: {refused: 1} for s in SIGNALS}  # the system roots
        assert where.seen == []
        trusted = export_both({**env, "OTEL_EXPORTER_OTLP_CERTIFICATE": str(crt)})
    assert trusted == {s: {} for s in SIGNALS}
    assert sorted(s.signal for s in where.seen) == sorted(SIGNALS)


@pytest.mark.parametrize(
    ("protocol", "behaviour", "timeout", "kind", "attempts"),
    [
        # retryable, with the server's hint: the SDK's six attempts, for each signal
        ("grpc", Behaviour(grpc_status=U, retry_delay=0.05), "5", "UNAVAILABLE", 6),
        ("http/protobuf", Behaviour(http_status=503, retry_after="0"), "5", "503", 6),
        # permanent: one attempt
        ("grpc", Behaviour(grpc_status=grpc.StatusCode.INVALID_ARGUMENT), "5",
         "INVALID_ARGUMENT", 1),
        ("http/protobuf", Behaviour(http_status=400), "5", "400", 1),
        # slower than the timeout: the timeout ends the export (no backoff fits what is left)
        ("grpc", Behaviour(slow=2.0), "0.3", "DEADLINE_EXCEEDED", 1),
        ("http/protobuf", Behaviour(slow=2.0), "0.3", "ReadTimeout", None),
    ],
    ids=["grpc-unavailable", "http-503", "grpc-invalid", "http-400", "grpc-slow", "http-slow"],
)
def test_a_failing_endpoint_is_retried_and_counted_the_same_for_both_signals(
        protocol, behaviour, timeout, kind, attempts):
    with listener(protocol, behaviour) as where:
        started = time.monotonic()
        failures = export_both(environ(protocol, where.endpoint,
                                       OTEL_EXPORTER_OTLP_TIMEOUT=timeout))
        took = time.monotonic() - started
    assert failures == {s: {kind: 1} for s in SIGNALS}
    tries = {s: len(where.of(s)) for s in SIGNALS}
    assert tries["profiles"] == tries["metrics"]
    if attempts is not None:
        assert tries["profiles"] == attempts
    assert took < 2 * (float(timeout) + 1)  # each signal within its timeout
