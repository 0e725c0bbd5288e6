"""One error root for everything duragraph-pprof raises on purpose."""

from __future__ import annotations


class DuragraphPprofError(Exception):
    """Root of every error this package raises on purpose."""


class ConfigError(DuragraphPprofError):
    """A configuration value is wrong. The message names the variable, the value and the way out."""

    def __init__(self, variable: str, value: str, problem: str, way_out: str) -> None:
        self.variable = variable
        self.value = value
        super().__init__(f"{variable}={value!r}: {problem}; {way_out}")


class BindRefused(ConfigError):
    """The bind guard refused a listen address."""


class RequestError(DuragraphPprofError):
    """A profile request is invalid or cannot be served; transports map `kind` to a status.

    `kind` is one of: not_found, invalid, unsupported, busy, precondition, cancelled, timeout, internal.
    The message is the exact text a client sees (Go's texts where Go has one).
    """

    def __init__(self, kind: str, message: str) -> None:
        self.kind = kind
        self.message = message
        super().__init__(message)
