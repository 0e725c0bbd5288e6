"""The resource of everything pushed: OTEL_SERVICE_NAME / OTEL_RESOURCE_ATTRIBUTES read from the
given environment (not only os.environ), plus the process attributes Pyroscope and the
semantic conventions use."""

from __future__ import annotations

import os
import platform
import sys
from collections.abc import Mapping

from opentelemetry.sdk.resources import Resource

from .settings import key_value_pairs

RESOURCE_ATTRIBUTES = "OTEL_RESOURCE_ATTRIBUTES"
SERVICE_NAME = "OTEL_SERVICE_NAME"


def process_attributes() -> dict[str, str | int]:
    return {
        "process.pid": os.getpid(),
        "process.executable.name": os.path.basename(sys.executable) or "python",
        "process.runtime.name": sys.implementation.name,
        "process.runtime.version": platform.python_version(),
        "process.runtime.description": sys.version,
    }


def parse_resource_attributes(text: str) -> dict[str, str]:
    """`k=v,k2=v2` with percent-encoded values, as the SDK reads OTEL_RESOURCE_ATTRIBUTES."""
    return dict(key_value_pairs(RESOURCE_ATTRIBUTES, text))


def build_resource(environ: Mapping[str, str]) -> Resource:
    """Process attributes, overridden by OTEL_RESOURCE_ATTRIBUTES, overridden by OTEL_SERVICE_NAME.

    Resource.create adds the SDK's own attributes and, without a service name, the SDK default
    `unknown_service:<executable>`.
    """
    attrs: dict[str, str | int] = dict(process_attributes())
    attrs.update(parse_resource_attributes(environ.get(RESOURCE_ATTRIBUTES, "")))
    service = environ.get(SERVICE_NAME, "").strip()
    if service:
        attrs["service.name"] = service
    return Resource.create(attrs)
