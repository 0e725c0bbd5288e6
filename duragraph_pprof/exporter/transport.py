"""One transport set-up for both OTLP signals, on the OpenTelemetry SDK's own exporter machinery.

Metrics are sent by the SDK's `OTLPMetricExporter` (gRPC or http/protobuf), profiles by the same
machinery (`profiles.py`: the gRPC base class `OTLPExporterMixin`, the HTTP client
`_OTLPHTTPClient`). Both get their arguments from the functions here, so TLS, compression,
headers, timeouts, retries and backoff (the SDK's: six attempts, 2**n s with +-20 % jitter, the
server's RetryInfo or Retry-After instead, no wait that would end past the timeout) and the names
of failures are one behaviour, and a fix made here or in the SDK reaches both signals.

What is ours, and why:
- The environment is read once, by `settings.py`, from the mapping the profiler was given: the
  contract makes a bad value a configuration error where the SDK logs and falls back,
  `start(environ=...)` need not be `os.environ`, and the SDK reads no `..._PROFILES_*` variable.
  The resolved values are passed to the SDK explicitly, the same way for both signals.
- Certificate and key files are read here, before anything starts: the SDK logs an unreadable
  file and carries on with the system roots (gRPC), or fails at every request (HTTP).
- A certificate file is handed to requests so that it wins over `REQUESTS_CA_BUNDLE` and
  `CURL_CA_BUNDLE`, which would otherwise replace it (psf/requests#3829), for both signals.
- Failure kinds: the SDK's exporters return only SUCCESS or FAILURE. `ExportWatch` reads the
  reason where the SDK hands it to its own exporter self-metrics (the `_metrics.export_operation`
  hook), passes everything on to them, and names it as `failed` does for every path.

These are internal SDK interfaces, which is why `pyproject.toml` pins the exporter packages to
one release.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import grpc
import requests
from opentelemetry.exporter.otlp.common import http as sdk_http
from opentelemetry.semconv._incubating.attributes.rpc_attributes import RPC_RESPONSE_STATUS_CODE
from opentelemetry.semconv.attributes.http_attributes import HTTP_RESPONSE_STATUS_CODE

from ..errors import ConfigError
from .settings import Settings, var

# gRPC's reconnect backoff grows to 120 s by default: a collector back after a long outage would
# wait that long for its first push
CHANNEL_OPTIONS = (("grpc.max_reconnect_backoff_ms", 5000),)
UNEXPLAINED = "export_failed"  # the SDK gave up without a reason (shut down while retrying)
_DETAIL = 300  # characters of a server's error text kept for the log


@dataclass(frozen=True, slots=True)
class Attempt:
    """The outcome of one export, the SDK's retries included."""

    ok: bool
    error: str = ""  # short error.type for the self-metrics: a status name or an exception class
    detail: str = ""  # what the server or the transport said, for the log


def read_pem(settings: Settings, path: str | None) -> bytes | None:
    """A certificate or key file's bytes; an unreadable file is a configuration error."""
    if not path:
        return None
    try:
        with open(path, "rb") as file:
            return file.read()
    except OSError as exc:
        variable = f"{var(settings.signal, 'CERTIFICATE')} (or its CLIENT_* siblings)"
        raise ConfigError(variable, path, exc.strerror or "unreadable", "fix the path") from None


def _pems(settings: Settings) -> tuple[bytes | None, bytes | None, bytes | None]:
    """(CA, client key, client certificate), read now so that a bad path fails the start."""
    return (
        read_pem(settings, settings.certificate),
        read_pem(settings, settings.client_key),
        read_pem(settings, settings.client_certificate),
    )


def grpc_arguments(settings: Settings) -> dict[str, Any]:
    """Keyword arguments of the SDK's gRPC exporters (`OTLPExporterMixin`), for either signal."""
    ca, key, chain = _pems(settings)
    credentials = None  # without files of ours the SDK picks: its credential provider or the roots
    if not settings.insecure and (ca or key or chain):
        credentials = grpc.ssl_channel_credentials(ca, key, chain)
    gzip = settings.compression == "gzip"
    return {
        "endpoint": settings.endpoint,
        "insecure": settings.insecure,
        "credentials": credentials,
        "headers": settings.headers,
        "timeout": settings.timeout,
        "compression": grpc.Compression.Gzip if gzip else grpc.Compression.NoCompression,
        "channel_options": CHANNEL_OPTIONS,
    }


class CaFileSession(requests.Session):
    """A session whose own CA file wins: requests otherwise lets `REQUESTS_CA_BUNDLE` or
    `CURL_CA_BUNDLE` replace it when the call names none (the SDK's calls name none)."""

    def merge_environment_settings(  # type: ignore[no-untyped-def]
        self, url, proxies, stream, verify, cert
    ):
        if verify is None:
            verify = self.verify
        return super().merge_environment_settings(url, proxies, stream, verify, cert)


def http_arguments(settings: Settings) -> dict[str, Any]:
    """Keyword arguments of the SDK's http/protobuf exporters, for either signal. Without a
    certificate of ours, no session: the SDK's credential-provider session or its own."""
    _pems(settings)  # the SDK reads the files at each request; a bad path should fail the start
    return {
        "endpoint": settings.endpoint,
        "certificate_file": settings.certificate,
        "client_key_file": settings.client_key,
        "client_certificate_file": settings.client_certificate,
        "headers": dict(settings.headers),
        "timeout": settings.timeout,
        "compression": sdk_http.Compression.from_str(settings.compression),
        "session": CaFileSession() if settings.certificate else None,
    }


def failed(endpoint: str, status: int | str | None, error: BaseException | None,
           reason: str = "") -> Attempt:
    """A failed export, named the same for both signals and protocols: the gRPC status name or
    the HTTP status code the server answered with, else the exception's class."""
    if status is not None:
        kind = str(status)
    elif error is not None:
        kind = type(error).__name__
    else:
        kind = UNEXPLAINED
    if isinstance(error, grpc.RpcError):
        said = error.details()  # type: ignore[attr-defined]
    else:
        said = str(error) if error is not None else reason
    return Attempt(ok=False, error=kind, detail=f"{endpoint}: {said}"[:_DETAIL] if said else "")


class ExportWatch:
    """Stands in for an SDK exporter's `_metrics` (its self-metrics hook, which the SDK gives the
    reason of a failed export) to read that reason, passing everything on to the SDK's own."""

    def __init__(self, exporter: Any, endpoint: str, inner: Any = None) -> None:
        self._inner = exporter._metrics if inner is None else inner
        self._endpoint = endpoint
        self._failure: Attempt | None = None
        exporter._metrics = self

    @contextmanager
    def export_operation(self, num_items: int) -> Iterator[Any]:
        with self._inner.export_operation(num_items) as result:
            yield result
            attrs = dict(result.error_attrs or {})
            status = attrs.get(RPC_RESPONSE_STATUS_CODE, attrs.get(HTTP_RESPONSE_STATUS_CODE))
            if result.error is not None or status is not None:
                self._failure = failed(self._endpoint, status, result.error)

    def run(self, export: Callable[[], Any], success: Any) -> Attempt:
        """Run one export (not concurrently with another through this watch) and name its
        outcome."""
        self._failure = None
        if export() == success:
            return Attempt(ok=True)
        return self._failure or failed(self._endpoint, None, None)
