"""Requests under /debug/pprof/ui -> replies. The page and its script and styles are public
(they hold no data, and a browser cannot send a header when it opens a page); everything under
`api/` needs the token when one is set, and reads profiles only through `render`, so the page
gets the bytes `go tool pprof` gets, with the same limits and errors.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING
from urllib.parse import parse_qs

from ..errors import RequestError
from ..kinds import REGISTRY
from ..render import Cancel, ProfileRequest, render
from . import decode, source
from .store import Stored, store_for

if TYPE_CHECKING:
    from ..core.profiling_core import ProfilingCore

UI_PATH = "/debug/pprof/ui"
# only the page's own files: no inline script or style, no other origin, no frames, and no
# string may ever become markup (Trusted Types with no policy refuses innerHTML and friends)
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
       "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'; "
       "require-trusted-types-for 'script'; trusted-types 'none'")
HEADERS = (("Content-Security-Policy", CSP), ("X-Frame-Options", "DENY"),
           ("Referrer-Policy", "no-referrer"), ("Cache-Control", "no-store"))
_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
          ".css": "text/css; charset=utf-8"}
JSON = "application/json"


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    content_type: str
    body: bytes
    headers: tuple[tuple[str, str], ...] = HEADERS


def route(core: ProfilingCore, path: str, query: str, authorized: bool,
          cancel: Cancel | None = None) -> Reply:
    """`path` is the whole unescaped path, starting with UI_PATH."""
    rest = path[len(UI_PATH):]
    if rest == "":
        return Reply(301, "text/plain; charset=utf-8", b"", HEADERS + (("Location", "ui/"),))
    if not rest.startswith("/api/"):
        return _static(rest.lstrip("/") or "index.html")
    if not authorized:
        raise RequestError("unauthenticated", "missing or wrong token - send "
                           "Authorization: Bearer $DURAGRAPH_PPROF_TOKEN")
    api = _API.get(rest[len("/api/"):])
    if api is None:
        raise RequestError("not_found", "Unknown profile")
    return api(core, _first(query), cancel)


def _static(name: str) -> Reply:
    files = _static_files()
    if name not in files:
        raise RequestError("not_found", "404 page not found")
    return Reply(200, _TYPES[name[name.rindex("."):]], files[name])


_cache: dict[str, bytes] = {}


def _static_files() -> dict[str, bytes]:
    if not _cache:
        folder = resources.files(__package__) / "static"
        for item in folder.iterdir():
            suffix = item.name[item.name.rfind("."):]
            if suffix in _TYPES:
                _cache[item.name] = item.read_bytes()
    return _cache


def _first(query: str) -> dict[str, str]:
    try:
        form = parse_qs(query, keep_blank_values=True, max_num_fields=16)
    except ValueError:
        raise RequestError("invalid", "too many query parameters") from None
    return {key: values[0] for key, values in form.items()}


def _json(value: object) -> Reply:
    return Reply(200, JSON, json.dumps(value, separators=(",", ":")).encode())


def _profiles(core: ProfilingCore, form: dict[str, str], cancel) -> Reply:
    # what the picker offers: every registered profile that is pprof (not cmdline, trace, ...)
    kinds = [k for k in REGISTRY.entries() if k.pprof]
    return _json({
        "profiles": [{"name": k.name, "description": k.description, "timed": k.timed is not None,
                      "delta": k.delta, "gc": k.gc} for k in kinds],
        "max_seconds": core.config.max_seconds,
    })


def _profile(core: ProfilingCore, form: dict[str, str], cancel) -> Reply:
    name = form.get("name", "")
    kind = REGISTRY.get(name)
    if kind is None or not kind.pprof:
        raise RequestError("not_found", "Unknown profile")
    request = ProfileRequest(name, form.get("seconds") or None, None, form.get("gc") or None)
    body = render(core, request, cancel).body
    key = store_for(core).add(Stored(name, body, decode.files(decode.parse(body))))
    # the page decodes the bytes itself: no per-sample Python work here (under tracemalloc
    # every allocation of it would be traced too)
    return Reply(200, "application/octet-stream", body, HEADERS + (("X-Profile-Id", key),))


def _raw(core: ProfilingCore, form: dict[str, str], cancel) -> Reply:
    stored = _stored(core, form)
    disposition = f'attachment; filename="{stored.name}.pb.gz"'
    return Reply(200, "application/octet-stream", stored.body,
                 HEADERS + (("Content-Disposition", disposition),))


def _source(core: ProfilingCore, form: dict[str, str], cancel) -> Reply:
    stored = _stored(core, form)
    filename = form.get("file", "")
    if filename not in stored.files:
        raise RequestError("not_found", "that file is not in this profile")
    return _json({"file": filename, "lines": source.read_lines(filename)})


def _stored(core: ProfilingCore, form: dict[str, str]) -> Stored:
    stored = store_for(core).get(form.get("id", ""))
    if stored is None:
        raise RequestError("not_found", "no such profile here any more - load it again")
    return stored


_API = {"profiles": _profiles, "profile": _profile, "raw": _raw, "source": _source}
