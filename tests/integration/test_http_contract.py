"""The HTTP contract, pinned like Go's pprof_test.go TestHandlers: one real listener on
127.0.0.1:0 and one table of paths, methods, statuses, headers and exact error texts.
"""

from __future__ import annotations

import gzip
import html
import json
import re
import socket
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from functools import partial

from support.listener import fetch, serving
from support.profiles import contend
from support.profiles import parse_pprof as parse

from duragraph_pprof._gen.perftools.profiles import profile_pb2
from duragraph_pprof.kinds import REGISTRY

BINARY = "application/octet-stream"
TEXT = "text/plain; charset=utf-8"
HTML = "text/html; charset=utf-8"
MAX_SECONDS = 60
BAD_SECONDS = 'invalid value for "seconds" - must be a positive integer\n'
PAST_CAP = (f'invalid value for "seconds" - must be at most {MAX_SECONDS} '
            "(raise DURAGRAPH_PPROF_MAX_SECONDS to allow more)\n")
UNKNOWN = "Unknown profile\n"
INCOMPATIBLE = "seconds and debug params are incompatible\n"
DELTA_NAMES = ("allocs", "block", "goroutine", "heap", "mutex", "threadcreate")


listening = partial(serving, heap=True, max_seconds=MAX_SECONDS)


def is_pprof(body: bytes) -> bool:
    profile = profile_pb2.Profile()
    profile.ParseFromString(gzip.decompress(body))
    return len(profile.sample_type) > 0 and profile.string_table[0] == ""


def is_chrome_trace(body: bytes) -> bool:
    return isinstance(json.loads(body)["traceEvents"], list)


def starts(prefix: bytes):
    return lambda body: body.startswith(prefix)


# (method, path, status, content type, attachment name or None, body: exact str | check | None)
P = "/debug/pprof/"
CASES = [
    # routing
    ("GET", "/debug/pprof", 301, None, None, None),
    ("GET", P, 200, HTML, None, starts(b"<html>")),
    ("HEAD", P, 200, HTML, None, b""),
    ("GET", P + "nope", 404, TEXT, None, UNKNOWN),
    ("GET", P + "<script>scripty<script>", 404, TEXT, None, UNKNOWN),
    ("GET", P + "%3Cscript%3Ealert(1)%3C/script%3E", 404, TEXT, None, UNKNOWN),
    ("GET", P + "%68eap", 200, BINARY, "heap", is_pprof),  # Go routes the unescaped path
    ("GET", P + "heap/extra", 404, TEXT, None, UNKNOWN),
    ("GET", P + "Heap", 404, TEXT, None, UNKNOWN),
    ("GET", "/debug/pprofx", 404, TEXT, None, "404 page not found\n"),
    ("PUT", P + "heap", 405, TEXT, None, "Method Not Allowed\n"),
    ("DELETE", P + "heap", 405, TEXT, None, "Method Not Allowed\n"),
    ("PATCH", P + "profile?seconds=1", 405, TEXT, None, "Method Not Allowed\n"),
    ("DELETE", P, 405, TEXT, None, "Method Not Allowed\n"),
    # named profiles, binary and text
    ("GET", P + "heap", 200, BINARY, "heap", is_pprof),
    ("HEAD", P + "heap", 200, BINARY, "heap", b""),
    ("POST", P + "heap", 200, BINARY, "heap", is_pprof),
    ("GET", P + "heap?gc=1", 200, BINARY, "heap", is_pprof),
    ("GET", P + "allocs", 200, BINARY, "allocs", is_pprof),
    ("GET", P + "goroutine", 200, BINARY, "goroutine", is_pprof),
    ("GET", P + "threadcreate", 200, BINARY, "threadcreate", is_pprof),
    ("GET", P + "mutex", 200, BINARY, "mutex", is_pprof),
    ("GET", P + "block", 200, BINARY, "block", is_pprof),
    ("GET", P + "heap?debug=1", 200, TEXT, None, starts(b"heap profile: ")),
    ("GET", P + "allocs?debug=1", 200, TEXT, None, starts(b"heap profile: ")),
    ("GET", P + "goroutine?debug=1", 200, TEXT, None, starts(b"goroutine profile: total ")),
    ("GET", P + "goroutine?debug=2", 200, TEXT, None, starts(b"goroutine ")),
    ("GET", P + "threadcreate?debug=1", 200, TEXT, None, starts(b"threadcreate profile: total ")),
    ("GET", P + "mutex?debug=1", 200, TEXT, None, starts(b"--- mutex:\n")),
    ("GET", P + "block?debug=1", 200, TEXT, None, starts(b"--- contention:\n")),
    # Go: a debug value that does not parse is 0
    ("GET", P + "heap?debug=abc", 200, BINARY, "heap", is_pprof),
    ("GET", P + "goroutine?debug=", 200, BINARY, "goroutine", is_pprof),
    ("GET", P + "goroutine?debug=2.5", 200, BINARY, "goroutine", is_pprof),
    # Go: an empty seconds is absent
    ("GET", P + "goroutine?seconds=", 200, BINARY, "goroutine", is_pprof),
    # delta profiles
    *[("GET", P + f"{name}?seconds=1", 200, BINARY, f"{name}-delta", is_pprof)
      for name in DELTA_NAMES],
    ("GET", P + "heap?seconds=1&debug=1", 400, TEXT, None, INCOMPATIBLE),
    ("GET", P + "goroutine?seconds=1&debug=2", 400, TEXT, None, INCOMPATIBLE),
    ("GET", P + "heap?seconds=abc&debug=1", 400, TEXT, None, BAD_SECONDS),  # Go's check order
    ("GET", P + "nope?seconds=abc", 404, TEXT, None, UNKNOWN),
    # timed endpoints
    ("GET", P + "profile?seconds=1", 200, BINARY, "profile", is_pprof),
    ("GET", P + "wall?seconds=1", 200, BINARY, "wall", is_pprof),
    ("GET", P + "trace?seconds=1", 200, BINARY, "trace", is_chrome_trace),
    ("GET", P + "trace?seconds=0.5", 200, BINARY, "trace", is_chrome_trace),
    ("HEAD", P + "profile?seconds=1", 200, BINARY, "profile", b""),
    # bad seconds, on every endpoint that takes it
    *[("GET", P + f"{name}?seconds={value}", 400, TEXT, None, BAD_SECONDS)
      for name in ("profile", "wall", "heap", "goroutine", "mutex")
      for value in ("abc", "-1", "0", "1e9", "1.5", "0x10", "%20", "nan")],
    *[("GET", P + f"{name}?seconds={value}", 400, TEXT, None, BAD_SECONDS)
      for name in ("trace",) for value in ("abc", "-1", "0", "nan", "inf", "-0.5")],
    *[("GET", P + f"{name}?seconds={value}", 400, TEXT, None, PAST_CAP)
      for name in ("profile", "wall", "trace", "heap", "allocs", "block")
      for value in (MAX_SECONDS + 1, 10**12)],
    ("GET", P + "trace?seconds=1e9", 400, TEXT, None, PAST_CAP),
    ("HEAD", P + "profile?seconds=abc", 400, TEXT, None, b""),
    # cmdline and symbol
    ("GET", P + "cmdline", 200, TEXT, None, "\x00".join(sys.argv)),
    ("GET", P + "symbol", 200, TEXT, None, "num_symbols: 1\n"),
    ("POST", P + "symbol", 200, TEXT, None, "num_symbols: 1\n"),
    ("GET", P + "symbol?0x1+garbage+0", 200, TEXT, None, "num_symbols: 1\n"),
]


def check(profiler, case) -> list[str]:
    method, path, status, content_type, filename, expected = case
    started = time.monotonic()
    try:
        got_status, headers, body = fetch(profiler, path, method=method)
    except OSError as exc:  # which row, and after how long
        return [f"{method} {path}: {exc!r} after {time.monotonic() - started:.1f} s"]
    problems = []

    def expect(what, got, want):
        if got != want:
            problems.append(f"{method} {path}: {what} {got!r}, want {want!r}")

    expect("status", got_status, status)
    expect("nosniff", headers.get("x-content-type-options"), "nosniff" if status != 301 else None)
    if content_type is not None:
        expect("Content-Type", headers.get("content-type"), content_type)
    disposition = f'attachment; filename="{filename}"' if filename else None
    expect("Content-Disposition", headers.get("content-disposition"), disposition)
    if status == 301:
        expect("Location", headers.get("location"), P)
    if status >= 400 and status != 405 and path != "/debug/pprofx":
        expect("X-Go-Pprof", headers.get("x-go-pprof"), "1")
    if status == 405:
        expect("Allow", headers.get("allow"), "GET, HEAD, POST")
    if isinstance(expected, str):
        expect("body", body.decode("utf-8", "replace"), expected)
    elif isinstance(expected, bytes):
        expect("body", body, expected)
    elif expected is not None and not expected(body):
        problems.append(f"{method} {path}: body fails {expected.__name__}: {body[:120]!r}")
    if b"Traceback" in body:
        problems.append(f"{method} {path}: a traceback in the body")
    return problems


def test_http_contract():
    # every long case runs at once, so the table takes about as long as its longest row
    with (listening(max_long_requests=len(CASES), http_threads=len(CASES)) as profiler,
          ThreadPoolExecutor(len(CASES)) as pool):
        problems = [p for found in pool.map(lambda c: check(profiler, c), CASES) for p in found]
        assert fetch(profiler, P + "cmdline")[0] == 200  # and the listener is still there
    assert not problems, "\n".join(problems)


# -- symbol ----------------------------------------------------------------------------------
def test_symbol_answers_get_and_post_like_go():
    with listening() as profiler:
        _, _, dump = fetch(profiler, P + "goroutine?debug=1")
        named = dict(re.findall(rb"^#\t(0x[0-9a-f]+)\t(\S+)\+0x0\t", dump, re.MULTILINE))
        pcs = re.findall(rb"0x[0-9a-f]+", re.search(rb"^\d+ @(.*)$", dump, re.MULTILINE).group(1))
        assert pcs and named
        known = [int(pc, 16) for pc in pcs[:3]]
        names = [named[b"%#x" % (pc - 1)].decode() for pc in known]  # Go lists pc-1 by name
        query = "+".join([f"{known[0]:#x}", "0x1", "junk", str(known[1]), f"{known[2]:#X}",
                          f"{known[0]:#x}"])
        want = "num_symbols: 1\n" + "".join(
            f"{pc:#x} {name}\n" for pc, name in zip(known + known[:1], names + names[:1]))
        status, headers, body = fetch(profiler, P + "symbol?" + query)
        assert (status, headers["content-type"], body.decode()) == (200, TEXT, want)
        status, headers, body = fetch(profiler, P + "symbol", method="POST", body=query.encode())
        assert (status, headers["content-type"], body.decode()) == (200, TEXT, want)


# -- index and registry -------------------------------------------------------------------------
def test_index_lists_every_profile_with_its_count_and_description():
    with listening(mutex_fraction=1) as profiler:
        contend(3)
        _, _, page = fetch(profiler, P)
        _, _, dump = fetch(profiler, P + "goroutine?debug=2")
        _, _, mutex = fetch(profiler, P + "mutex")
        entries = REGISTRY.entries()
    text = page.decode()
    rows = re.findall(r"<tr><td>(\d+)</td><td><a href='([^']+)\?debug=1'>([^<]+)</a></td></tr>",
                      text)
    assert [name for _, _, name in rows] == sorted(e.name for e in entries)
    assert [href for _, href, _ in rows] == [name for _, _, name in rows]
    counts = {name: int(count) for count, _, name in rows}
    for name in ("cmdline", "profile", "symbol", "trace", "wall"):
        assert counts[name] == 0, name
    assert counts["goroutine"] == len(re.findall(r"^goroutine", dump.decode(), re.MULTILINE))
    assert counts["mutex"] == len(parse(mutex).sample) >= 1
    assert counts["heap"] == counts["allocs"] > 0
    assert "<p>Stack sampler: native, 100 Hz nominal</p>" in text
    assert "<p>Heap profile: exact (tracemalloc)</p>" in text  # listening() asks for exact
    for entry in entries:
        assert (f"<li><div class=profile-name>{entry.name}: </div> "
                f"{html.escape(entry.description).replace('&#x27;', '&#39;')}</li>") in text


def test_every_registry_entry_has_a_description_and_a_renderer():
    entries = REGISTRY.entries()
    for entry in entries:
        assert entry.description.strip(), entry.name
        assert entry.delta == (entry.name in DELTA_NAMES), entry.name
        # exactly one way to be served: a snapshot, a recording, a fixed answer or a lookup
        ways = (entry.snapshot, entry.timed, entry.write, entry.lookup)
        assert sum(way is not None for way in ways) == 1, entry.name
        assert not entry.delta or entry.snapshot is not None, entry.name
    with listening() as profiler:
        for entry in entries:  # a bad seconds answers a timed one at once
            query = "?seconds=abc" if entry.timed else ""
            assert fetch(profiler, P + entry.name + query)[0] != 404, entry.name


def test_heap_off_is_a_clear_error():
    with listening(heap=False) as profiler:
        status, headers, body = fetch(profiler, P + "heap")
    assert (status, headers["x-go-pprof"]) == (500, "1")
    assert body == (b"heap profiling is off - set DURAGRAPH_PPROF_HEAP=sampled (or exact, for "
            b"tracemalloc) or run under "
                    b"duragraph-pprof dev\n")


def test_long_requests_past_the_cap_get_a_clear_error():
    with listening(max_long_requests=1) as profiler, ThreadPoolExecutor(2) as pool:
        first = pool.submit(fetch, profiler, P + "profile?seconds=1")
        time.sleep(0.3)
        status, headers, body = fetch(profiler, P + "wall?seconds=1")
        assert first.result()[0] == 200
    assert (status, headers["x-go-pprof"], headers["retry-after"]) == (429, "1", "1")
    assert body == (b"too many concurrent long profile requests (limit 1) - retry later or raise "
                    b"DURAGRAPH_PPROF_MAX_LONG_REQUESTS\n")


# -- a client that hangs up ----------------------------------------------------------------------
def test_client_that_disconnects_mid_profile_frees_its_slot():
    ticks = []
    stop = threading.Event()

    def application():
        while not stop.wait(0.01):
            ticks.append(1)

    app = threading.Thread(target=application)
    app.start()
    try:
        with listening(max_long_requests=1) as profiler:
            host, port = profiler.http_address[:2]
            with socket.create_connection((host, port)) as client:
                client.sendall(f"GET {P}profile?seconds=30 HTTP/1.1\r\nHost: x\r\n\r\n".encode())
                time.sleep(0.3)
            began = time.monotonic()
            assert fetch(profiler, P + "cmdline", timeout=2)[0] == 200
            assert time.monotonic() - began < 0.5  # answered at once
            deadline = time.monotonic() + 3
            while (status := fetch(profiler, P + "wall?seconds=1")[0]) == 429:
                assert time.monotonic() < deadline, "the long-request slot was never freed"
                time.sleep(0.1)
            assert status == 200
            assert time.monotonic() - began < 3  # the 30 s profile did not hold the slot
        before = len(ticks)
        time.sleep(0.1)
        assert len(ticks) > before  # and the application kept running throughout
    finally:
        stop.set()
        app.join()


# -- helpers -------------------------------------------------------------------------------------
def test_malformed_requests_get_plain_text_errors_and_the_listener_keeps_serving():
    many = b"&".join(b"a%d=1" % i for i in range(500))
    cases = [
        (b"GARBAGE\r\n\r\n", 400, b"Bad request syntax ('GARBAGE')\n"),
        (b"GET /debug/pprof/ HTTP/9.9\r\n\r\n", 505, b"Invalid HTTP version (9.9)\n"),
        (b"GET /debug/pprof/" + b"x" * 70000 + b" HTTP/1.1\r\n\r\n", 414, None),
        (b"GET /debug/pprof/cmdline HTTP/1.1\r\n" + b"X: y\r\n" * 200 + b"\r\n", 431, None),
        (b"POST /debug/pprof/symbol HTTP/1.1\r\nContent-Length: -5\r\n\r\n", 413,
         b"request body over 1048576 bytes or bad Content-Length\n"),
        (b"GET /debug/pprof/heap?" + many + b" HTTP/1.0\r\n\r\n", 400,
         b"too many query parameters (limit 64)\n"),
    ]
    with listening() as profiler:
        for request, status, text in cases:
            with socket.create_connection(profiler.http_address[:2], timeout=10) as client:
                client.sendall(request)
                answer = b"".join(iter(lambda: client.recv(65536), b""))
            head, _, body = answer.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.0 %d " % status), answer[:200]
            assert b"Content-Type: text/plain; charset=utf-8" in head
            assert text is None or body == text, body
            assert b"Traceback" not in body and b"<html" not in body.lower()
        assert fetch(profiler, P + "cmdline")[0] == 200


def test_block_profile_shows_the_application_not_the_profilers_own_waits():
    with listening(block_fraction=1) as profiler:
        done = threading.Event()
        waiter = threading.Thread(target=done.wait, args=(0.3,), name="app-waiter")
        waiter.start()
        waiter.join()
        time.sleep(0.5)  # the listener's own threads wait meanwhile too
        block = parse(fetch(profiler, P + "block")[2])
    names = {block.string_table[f.name] for f in block.function}
    assert "threading.Event.wait" in names
    assert not any(name.startswith("duragraph_pprof.") for name in names), names
