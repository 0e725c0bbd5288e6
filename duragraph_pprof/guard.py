"""The bind-guard policy: one pure function that every listener calls before it binds.

pprof endpoints leak heap contents and accept long requests, so a listener binds to loopback only
unless DURAGRAPH_PPROF_ALLOW_PUBLIC=true. The decision is made on the address the socket would
really bind (numeric IPv4 forms such as `127.1` are read the way the OS reads them) and the
listener then binds that canonical address, never re-resolving the user's text.
"""

from __future__ import annotations

import hmac
import ipaddress
import re
import socket
from dataclasses import dataclass

from .errors import BindRefused

ALLOW_PUBLIC_VAR = "DURAGRAPH_PPROF_ALLOW_PUBLIC"
MAX_ADDRESS_LENGTH = 512
_NUMERIC_V4 = re.compile(r"^(0[xX][0-9a-fA-F]+|[0-9]+)(\.(0[xX][0-9a-fA-F]+|[0-9]+)){0,3}$")
_LOCALHOST = {"localhost", "localhost."}


@dataclass(frozen=True, slots=True)
class BindTarget:
    """Where a listener binds: an IP `host` and `port`, or a Unix socket `path`."""

    host: str = ""
    port: int = 0
    path: str = ""
    public: bool = False  # True when the bypass let a non-loopback address through

    @property
    def family(self) -> int:
        if self.path:
            return socket.AF_UNIX
        return socket.AF_INET6 if ":" in self.host else socket.AF_INET


def check_bind(address: str, *, variable: str, allow_public: bool) -> BindTarget:
    """Decide whether `address` (from `variable`) may be bound; raise BindRefused if not."""

    def refuse(problem: str, way_out: str = "") -> BindRefused:
        return BindRefused(variable, address[:80], problem, way_out or _bypass_hint())

    if len(address) > MAX_ADDRESS_LENGTH or not address.isascii() or not address.isprintable():
        raise refuse("not a host:port address (too long or not printable ASCII)", _fix_hint())
    if address.startswith("unix:"):
        path = address[len("unix:"):]
        if not path.startswith("/"):
            raise refuse("a Unix socket needs an absolute path", "write unix:/abs/path.sock")
        return BindTarget(path=path)
    host, port = _split(address, refuse)
    ip = _ip_of(host, refuse)
    if ip is None:
        raise refuse(f"host {host!r} is not a loopback address or localhost")
    if ip.is_loopback:
        return BindTarget(host=str(ip), port=port)
    if not allow_public:
        raise refuse(f"{ip} is not a loopback address")
    return BindTarget(host=str(ip), port=port, public=True)


def _split(address: str, refuse) -> tuple[str, int]:
    if address.startswith("["):
        host, sep, rest = address[1:].partition("]")
        if not sep or not rest.startswith(":"):
            raise refuse("not a [ipv6]:port address", _fix_hint())
        port_text = rest[1:]
    else:
        host, sep, port_text = address.rpartition(":")
        if not sep:
            raise refuse("no port: the form is host:port", _fix_hint())
        if ":" in host:
            raise refuse("an IPv6 address needs brackets: [::1]:6060", _fix_hint())
    if not host:
        raise refuse("an empty host listens on every interface")
    if not port_text.isdigit() or len(port_text) > 5 or int(port_text) > 65535:
        raise refuse(f"port {port_text!r} is not a number from 0 to 65535", _fix_hint())
    return host, int(port_text)


def _ip_of(host: str, refuse) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The IP the OS would bind for `host`, or None for a host name other than localhost."""
    if host.lower() in _LOCALHOST:
        return ipaddress.IPv4Address("127.0.0.1")
    if _NUMERIC_V4.match(host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            raise refuse(f"{host!r} is not a valid IPv4 address", _fix_hint()) from None
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def bearer_token_ok(authorization: str, token: str) -> bool:
    """The access policy for every listener: `Authorization: Bearer <token>` (the scheme is
    case-insensitive, RFC 7235), compared in constant time."""
    scheme, _, offered = authorization.partition(" ")
    if scheme.lower() != "bearer":
        offered = ""
    return hmac.compare_digest(offered.strip().encode(), token.encode())


def _bypass_hint() -> str:
    return (
        "use 127.0.0.1:PORT, or set "
        f"{ALLOW_PUBLIC_VAR}=true to bind beyond loopback (pprof leaks heap contents)"
    )


def _fix_hint() -> str:
    return "use host:port, for example 127.0.0.1:6060"
