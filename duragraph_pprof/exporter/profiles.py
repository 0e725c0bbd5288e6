"""OTLP profiles over gRPC `ProfilesService/Export` or http/protobuf
`POST .../v1development/profiles`, on the OpenTelemetry SDK's own exporter machinery, set up from
the same arguments as the metrics exporter (`transport.py`). One `send` is one export, the SDK's
retries included; queueing lives in `queue.py`. Requests arrive serialized, so the queue can bound
itself in bytes.

The SDK has no profiles signal, so these are thin adapters:
- gRPC: `GrpcClient` is an `OTLPExporterMixin`, the base class of the SDK's gRPC exporters, given a
  stub whose Export takes the serialized request. Channel, TLS credentials, compression,
  metadata, the retryable status codes (`OTEL_PYTHON_EXPORTER_OTLP_GRPC_RETRYABLE_ERROR_CODES`
  too), the retry loop and the reconnect after UNAVAILABLE are the mixin's.
- http/protobuf: `HttpClient` drives the SDK's `_OTLPHTTPClient` (retries, Retry-After,
  compression, the immediate retry of a dropped connection, the 64 MiB request guard) over the
  SDK's requests transport, built by the SDK's own helpers from the `..._PROFILES_*` variables as
  its metrics exporter builds them from the `..._METRICS_*` ones.

Not shared, and why:
- The request is our encoding (`encode/otlp.py`): the SDK has no profiles data model or encoder.
- The SDK's exporter self-metrics (`OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED`) have no profiles
  instruments in the semantic conventions, so none are recorded for profiles;
  `duragraph.profiler.export.failures` counts both signals the same way.
- The bounded queue and its thread: the metrics reader exports on its own thread, while profiles
  are encoded on the push thread, which must never wait for the network.
- A partial success in the response is not logged: the SDK's loops discard the response, for
  metrics as well.
"""

from __future__ import annotations

import enum
from functools import partial
from typing import Protocol

import grpc
from opentelemetry.exporter.otlp.common import http as sdk_http
from opentelemetry.exporter.otlp.common._exporter_metrics import NoOpExporterMetrics
from opentelemetry.exporter.otlp.proto.grpc.exporter import OTLPExporterMixin
from opentelemetry.exporter.otlp.proto.http._common import (
    _DEFAULT_MAX_REQUEST_SIZE,
    RequestPayloadTooLargeError,
    _build_transport,
    _is_request_too_large,
    _load_session_from_envvar,
    _resolve_headers,
)
from opentelemetry.metrics import NoOpMeterProvider
from opentelemetry.proto.collector.profiles.v1development.profiles_service_pb2 import (
    ExportProfilesServiceResponse,
)

from .settings import GRPC, Settings, var
from .transport import Attempt, ExportWatch, failed, grpc_arguments, http_arguments

__all__ = ["Attempt", "Client", "GrpcClient", "HttpClient", "open_client"]

SIGNAL = "profiles"
EXPORT_METHOD = "/opentelemetry.proto.collector.profiles.v1development.ProfilesService/Export"
# the SDK's per-signal credential-provider variable, named as its METRICS one is
HTTP_CREDENTIAL_PROVIDER = "OTEL_PYTHON_EXPORTER_OTLP_HTTP_PROFILES_CREDENTIAL_PROVIDER"


class Client(Protocol):
    def send(self, body: bytes, timeout: float) -> Attempt: ...

    def close(self) -> None: ...


def open_client(settings: Settings) -> Client:
    return GrpcClient(settings) if settings.protocol == GRPC else HttpClient(settings)


class _Result(enum.Enum):
    SUCCESS = "success"
    FAILURE = "failure"


class _ProfilesStub:
    """What the mixin calls Export on: the service method, taking bytes (no serializer)."""

    def __init__(self, channel: grpc.Channel) -> None:
        self.Export = channel.unary_unary(
            EXPORT_METHOD, response_deserializer=ExportProfilesServiceResponse.FromString
        )


class GrpcClient(OTLPExporterMixin):  # type: ignore[type-arg]
    def __init__(self, settings: Settings) -> None:
        super().__init__(
            stub=_ProfilesStub,  # type: ignore[arg-type]
            result=_Result,  # type: ignore[arg-type]
            **grpc_arguments(settings),
            signal=SIGNAL,  # type: ignore[arg-type]
            meter_provider=NoOpMeterProvider(),
        )
        self._watch = ExportWatch(self, settings.endpoint, NoOpExporterMetrics())

    def send(self, body: bytes, timeout: float) -> Attempt:
        """Export one serialized request, retrying within `timeout` seconds. One caller at a time
        (the queue's sender thread): the mixin reads its timeout at the start of each export."""
        self._timeout = timeout
        return self._watch.run(partial(self._export, body), _Result.SUCCESS)

    def close(self) -> None:
        """Stops a retry wait and cancels a call in flight."""
        self.shutdown()

    def _translate_data(self, data: bytes) -> bytes:  # type: ignore[override]
        return data

    def _count_data(self, data: bytes) -> int:  # type: ignore[override]
        return 1

    @property
    def _exporting(self) -> str:
        return SIGNAL


class HttpClient:
    def __init__(self, settings: Settings) -> None:
        args = http_arguments(settings)
        self._endpoint = settings.endpoint
        # as the SDK's metrics exporter picks it: ours, else the credential provider's, else its own
        session = args["session"] or _load_session_from_envvar(
            HTTP_CREDENTIAL_PROVIDER  # type: ignore[arg-type]
        )
        transport = _build_transport(
            args["certificate_file"],
            args["client_key_file"],
            args["client_certificate_file"],
            var(SIGNAL, "CERTIFICATE"),
            var(SIGNAL, "CLIENT_KEY"),
            var(SIGNAL, "CLIENT_CERTIFICATE"),
            session=session,
        )
        self._client = sdk_http._OTLPHTTPClient(
            transport=transport,
            endpoint=settings.endpoint,
            kind=SIGNAL,  # type: ignore[arg-type]
            timeout=args["timeout"],
            compression=args["compression"],
            headers=_resolve_headers(args["headers"], var(SIGNAL, "HEADERS")),
        )

    def send(self, body: bytes, timeout: float) -> Attempt:
        """Export one serialized request, retrying within `timeout` seconds. One caller at a time
        (the queue's sender thread): the client reads its timeout at the start of each export."""
        if _is_request_too_large(body, _DEFAULT_MAX_REQUEST_SIZE):
            too_large = RequestPayloadTooLargeError(f"{len(body)} bytes, more than the SDK's limit")
            return failed(self._endpoint, None, too_large)
        self._client._timeout = timeout
        result = self._client.export(body)
        if result.success:
            return Attempt(ok=True)
        return failed(self._endpoint, result.status_code, result.error, result.reason or "")

    def close(self) -> None:
        """Stops a retry wait and closes the session."""
        self._client.shutdown()
