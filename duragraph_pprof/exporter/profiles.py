"""Thin OTLP profiles transports: one attempt per call, gRPC `ProfilesService/Export` or
http/protobuf `POST .../v1development/profiles`. Retries live in `retry.py`, queueing in `queue.py`.

Both send already-serialized requests, so the queue can bound itself in bytes.
"""

from __future__ import annotations

import gzip
import math
import time
import zlib
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Protocol

import grpc
import requests
from google.rpc import error_details_pb2, status_pb2
from opentelemetry.proto.collector.profiles.v1development.profiles_service_pb2 import (
    ExportProfilesServiceResponse,
)

from ..errors import ConfigError
from .settings import GRPC, Settings, var

EXPORT_METHOD = "/opentelemetry.proto.collector.profiles.v1development.ProfilesService/Export"
RETRYABLE_GRPC = frozenset(
    {
        grpc.StatusCode.CANCELLED,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.ABORTED,
        grpc.StatusCode.OUT_OF_RANGE,
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DATA_LOSS,
    }
)
RETRYABLE_HTTP = frozenset({429, 502, 503, 504})
# gRPC's reconnect backoff grows to 120 s by default: a collector back after a long outage
# would wait that long for its first push
_CHANNEL_OPTIONS = (("grpc.max_reconnect_backoff_ms", 5000),)
_DETAIL = 300  # characters of a server's error text kept for the log


@dataclass(frozen=True, slots=True)
class Attempt:
    ok: bool
    retryable: bool = False
    retry_after: float | None = None  # the server's hint, seconds
    error: str = ""  # short error.type for the self-metrics: a status name or an exception class
    detail: str = ""  # what the server or the transport said, for the log


class Client(Protocol):
    def send(self, body: bytes, timeout: float) -> Attempt: ...

    def close(self) -> None: ...


def open_client(settings: Settings) -> Client:
    return GrpcClient(settings) if settings.protocol == GRPC else HttpClient(settings)


class GrpcClient:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._metadata = settings.headers
        compression = grpc.Compression.Gzip if settings.compression == "gzip" else None
        if settings.insecure:
            self._channel = grpc.insecure_channel(
                settings.endpoint, _CHANNEL_OPTIONS, compression=compression
            )
        else:
            creds = grpc.ssl_channel_credentials(
                read_pem(settings, settings.certificate),
                read_pem(settings, settings.client_key),
                read_pem(settings, settings.client_certificate),
            )
            self._channel = grpc.secure_channel(
                settings.endpoint, creds, _CHANNEL_OPTIONS, compression=compression
            )
        # bytes in (no request serializer): the queue already holds the serialized request
        self._export = self._channel.unary_unary(
            EXPORT_METHOD, response_deserializer=ExportProfilesServiceResponse.FromString
        )

    def send(self, body: bytes, timeout: float) -> Attempt:
        try:
            response = self._export(body, timeout=timeout, metadata=self._metadata)
        except grpc.RpcError as err:
            code = err.code()  # type: ignore[attr-defined]
            return Attempt(
                ok=False,
                retryable=code in RETRYABLE_GRPC,
                retry_after=_grpc_retry_after(err),
                error=code.name,
                detail=f"{self._settings.endpoint}: {err.details()}"[:_DETAIL],  # type: ignore[attr-defined]
            )
        return _partial(response)

    def close(self) -> None:
        self._channel.close()


class HttpClient:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._session = requests.Session()
        self._session.headers.update(dict(settings.headers))
        self._session.headers["Content-Type"] = "application/x-protobuf"
        if settings.compression != "none":
            self._session.headers["Content-Encoding"] = settings.compression
        if settings.certificate:
            self._session.verify = settings.certificate
        if settings.client_certificate and settings.client_key:
            self._session.cert = (settings.client_certificate, settings.client_key)

    def send(self, body: bytes, timeout: float) -> Attempt:
        if self._settings.compression == "gzip":
            body = gzip.compress(body, mtime=0)
        elif self._settings.compression == "deflate":
            body = zlib.compress(body)
        try:
            response = self._session.post(self._settings.endpoint, data=body, timeout=timeout)
        except requests.RequestException as exc:
            # connection refused or reset: worth another try, as the SDK does
            return Attempt(ok=False, retryable=True, error=type(exc).__name__,
                           detail=str(exc)[:_DETAIL])
        with response:
            if 200 <= response.status_code < 300:
                if response.content:
                    return _partial(ExportProfilesServiceResponse.FromString(response.content))
                return Attempt(ok=True)
            return Attempt(
                ok=False,
                retryable=response.status_code in RETRYABLE_HTTP,
                retry_after=_http_retry_after(response.headers.get("Retry-After")),
                error=str(response.status_code),
                detail=f"{self._settings.endpoint}: {response.text[:_DETAIL]}",
            )

    def close(self) -> None:
        self._session.close()


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


def _partial(response: ExportProfilesServiceResponse) -> Attempt:
    """Delivered; a partial rejection is the server's note, for the log."""
    partial = response.partial_success
    if partial.rejected_profiles or partial.error_message:
        return Attempt(ok=True, detail=f"{partial.rejected_profiles} profiles rejected: "
                                       f"{partial.error_message[:_DETAIL]}")
    return Attempt(ok=True)


def _grpc_retry_after(err: grpc.RpcError) -> float | None:
    trailers = dict(err.trailing_metadata() or ())  # type: ignore[attr-defined]
    info = trailers.get("google.rpc.retryinfo-bin")
    if isinstance(info, bytes):
        return _delay(error_details_pb2.RetryInfo.FromString(info))
    details = trailers.get("grpc-status-details-bin")
    if isinstance(details, bytes):
        for detail in status_pb2.Status.FromString(details).details:
            retry = error_details_pb2.RetryInfo()
            if detail.Unpack(retry):
                return _delay(retry)
    return None


def _delay(info: error_details_pb2.RetryInfo) -> float:
    return max(0.0, info.retry_delay.seconds + info.retry_delay.nanos / 1e9)


def _http_retry_after(value: str | None) -> float | None:
    """`Retry-After` is delay-seconds or an HTTP date (RFC 9110 10.2.3)."""
    if not value:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None
    return max(0.0, seconds) if math.isfinite(seconds) else None
