"""duragraph-pprof: Go's pprof endpoints, OTLP profile push and gRPC profile pulls for Python."""

from .errors import BindRefused, ConfigError, DuragraphPprofError, RequestError
from .profiler import Profiler, start

__all__ = ["BindRefused", "ConfigError", "DuragraphPprofError", "Profiler", "RequestError", "start"]
