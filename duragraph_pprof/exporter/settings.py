"""Pure: environment -> OTLP transport settings for one signal, the way the OpenTelemetry SDK
reads `OTEL_EXPORTER_OTLP_*` for metrics.

The signal-specific variable (`OTEL_EXPORTER_OTLP_PROFILES_TIMEOUT`) wins over the generic one
(`OTEL_EXPORTER_OTLP_TIMEOUT`). The SDK has no profiles exporter, so the profiles variables mirror
the metrics ones. Unlike the SDK, a bad value is a ConfigError, never a logged fallback.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import unquote, urlparse

from ..errors import ConfigError

GRPC, HTTP_PROTOBUF = "grpc", "http/protobuf"
# the Python SDK's default; the spec's is http/protobuf, but users of Python set grpc ports
DEFAULT_PROTOCOL = GRPC
DEFAULT_TIMEOUT = 10.0  # seconds, as the Python SDK reads OTEL_EXPORTER_OTLP_TIMEOUT
HTTP_PATHS = {"metrics": "v1/metrics", "profiles": "v1development/profiles"}
_COMPRESSIONS = {GRPC: ("none", "gzip"), HTTP_PROTOBUF: ("none", "gzip", "deflate")}


@dataclass(frozen=True, slots=True)
class Settings:
    """Where and how one signal is pushed. `endpoint` is `host:port` for gRPC, a URL for HTTP."""

    signal: str
    protocol: str
    endpoint: str
    insecure: bool
    headers: tuple[tuple[str, str], ...] = ()
    timeout: float = DEFAULT_TIMEOUT
    compression: str = "none"
    certificate: str | None = None
    client_key: str | None = None
    client_certificate: str | None = None


def var(signal: str, name: str) -> str:
    return f"OTEL_EXPORTER_OTLP_{signal.upper()}_{name}"


def enabled(environ: Mapping[str, str], signal: str) -> bool:
    """Push is on when the generic or the signal's endpoint variable is set (and not empty)."""
    return bool(environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or environ.get(var(signal, "ENDPOINT")))


def load_settings(environ: Mapping[str, str], signal: str) -> Settings | None:
    """The settings of `signal` ("metrics" or "profiles"), or None when it has no endpoint."""
    if not enabled(environ, signal):
        return None

    def get(name: str) -> tuple[str, str] | None:
        for key in (var(signal, name), f"OTEL_EXPORTER_OTLP_{name}"):
            value = environ.get(key)
            if value:
                return key, value
        return None

    protocol = _protocol(get("PROTOCOL"))
    specific = environ.get(var(signal, "ENDPOINT"))
    endpoint, insecure = _endpoint(
        signal, protocol, specific, environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", ""), get("INSECURE")
    )
    return Settings(
        signal=signal,
        protocol=protocol,
        endpoint=endpoint,
        insecure=insecure,
        headers=_headers(get("HEADERS")),
        timeout=_timeout(get("TIMEOUT")),
        compression=_compression(get("COMPRESSION"), protocol),
        certificate=_value(get("CERTIFICATE")),
        client_key=_value(get("CLIENT_KEY")),
        client_certificate=_value(get("CLIENT_CERTIFICATE")),
    )


def _value(found: tuple[str, str] | None) -> str | None:
    return found[1] if found else None


def _protocol(found: tuple[str, str] | None) -> str:
    if found is None:
        return DEFAULT_PROTOCOL
    key, value = found
    protocol = value.strip().lower()
    if protocol not in (GRPC, HTTP_PROTOBUF):
        raise ConfigError(key, value, "must be grpc or http/protobuf", f"set {key}=grpc")
    return protocol


def _endpoint(
    signal: str,
    protocol: str,
    specific: str | None,
    generic: str,
    insecure_var: tuple[str, str] | None,
) -> tuple[str, bool]:
    key = var(signal, "ENDPOINT") if specific else "OTEL_EXPORTER_OTLP_ENDPOINT"
    raw = (specific or generic).strip()
    url = urlparse(raw)
    if protocol == HTTP_PROTOBUF:
        if url.scheme not in ("http", "https") or not url.netloc:
            raise ConfigError(key, raw, "must be an http:// or https:// URL", _way_out(key))
        # the signal's own variable is used verbatim; the generic one gets the signal's path
        endpoint = raw if specific else raw.rstrip("/") + "/" + HTTP_PATHS[signal]
        return endpoint, url.scheme == "http"
    has_scheme = url.scheme in ("http", "https") and bool(url.netloc)
    target = url.netloc if has_scheme else raw
    if not target or ":" not in target:
        raise ConfigError(key, raw, "must be http(s)://host:port or host:port", _way_out(key))
    # as the SDK: https is always secure; else the INSECURE variable; else the http scheme
    if has_scheme and url.scheme == "https":
        return target, False
    if insecure_var is not None:
        return target, _bool(insecure_var)
    return target, has_scheme and url.scheme == "http"


def _way_out(key: str) -> str:
    return f"set {key}=http://127.0.0.1:4317 (4318 for http/protobuf) or unset it"


def _bool(found: tuple[str, str]) -> bool:
    key, value = found
    lowered = value.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    raise ConfigError(key, value, "must be true or false", f"set {key}=true or unset it")


def key_value_pairs(variable: str, text: str) -> list[tuple[str, str]]:
    """`k=v,k2=v2` with percent-encoded values, as the SDK reads OTEL_*_HEADERS and
    OTEL_RESOURCE_ATTRIBUTES; a malformed item is a ConfigError naming `variable`."""
    pairs = []
    for item in text.split(","):
        if not item.strip():
            continue
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(variable, text, f"{item.strip()!r} is not key=value",
                              "use k=v,k2=v2")
        pairs.append((key.strip(), unquote(value.strip())))
    return pairs


def _headers(found: tuple[str, str] | None) -> tuple[tuple[str, str], ...]:
    if found is None:
        return ()
    key, value = found
    headers = []
    for name, val in key_value_pairs(key, value):
        name = unquote(name).strip().lower()
        if not name or any(c.isspace() for c in name):
            raise ConfigError(key, value, f"{name!r} is not a header name", "use k=v,k2=v2")
        headers.append((name, val))
    return tuple(headers)


def _timeout(found: tuple[str, str] | None) -> float:
    if found is None:
        return DEFAULT_TIMEOUT
    key, value = found
    try:
        seconds = float(value.strip())
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds) or seconds <= 0:
        raise ConfigError(key, value, "must be a positive number of seconds", f"set {key}=10")
    return seconds


def _compression(found: tuple[str, str] | None, protocol: str) -> str:
    if found is None:
        return "none"
    key, value = found
    lowered = value.strip().lower()
    allowed = _COMPRESSIONS[protocol]
    if lowered not in allowed:
        raise ConfigError(key, value, f"must be one of {', '.join(allowed)}", f"set {key}=gzip")
    return lowered
