"""Hostile input on every HTTP path and parameter and every gRPC method: only documented
statuses, no traceback or unescaped input in any body, the listener answers the next request and
the application never notices. Ends with a bounded hypothesis fuzz run of both surfaces."""

from __future__ import annotations

import socket
import struct
import time
from concurrent.futures import ThreadPoolExecutor
from functools import partial

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.fakes import Aborted, FakeContext
from support.heartbeat import Heartbeat
from support.listener import serving

import duragraph_pprof
from duragraph_pprof import render as render_module
from duragraph_pprof._gen.duragraph.pprof.v1 import profiler_pb2 as pb
from duragraph_pprof._gen.duragraph.pprof.v1 import profiler_pb2_grpc as pb_grpc
from duragraph_pprof.server.grpc import ProfilerServicer
from duragraph_pprof.server.http import MAX_BODY, READ_TIMEOUT

P = b"/debug/pprof/"
# Every status the HTTP listener may answer, and why (README "Deliberate differences", Security).
DOCUMENTED = {
    200: "a profile, the index, cmdline, symbol",
    301: "/debug/pprof redirects to /debug/pprof/",
    400: "a bad parameter, too many parameters, a request line that does not parse, HTTP/0.9",
    401: "a token is set and the request lacks it",
    404: "an unknown profile or path",
    405: "a method other than GET, HEAD, POST",
    413: "a POST body over 1 MiB or a bad Content-Length",
    414: "a request line over 64 KiB",
    429: "too many concurrent long profile requests",
    431: "over 100 header lines or a header line over 64 KiB",
    503: "every HTTP worker thread is busy",
    505: "an HTTP version other than 1.x",
    500: "heap tracing is off (heap, allocs) - any other 500 is an internal error and fails",
}
HEAP_OFF = (b"heap profiling is off - set DURAGRAPH_PPROF_HEAP=sampled (or exact, for "
            b"tracemalloc) or run under "
            b"duragraph-pprof dev\n")
NAMES = [b"allocs", b"block", b"cmdline", b"goroutine", b"heap", b"mutex", b"profile", b"symbol",
         b"threadcreate", b"trace", b"wall"]
TIMED = {b"profile", b"wall", b"trace"}
HEAVY = {b"heap", b"allocs", b"", b"%68eap"}
SCRIPT = b"<script>alert(1)</script>"
HOSTILE_NAMES = [b"", b"nope", SCRIPT, b"%3Cscript%3Ealert(1)%3C%2Fscript%3E", b"..", b"../../x",
                 b"heap/", b"%68eap", b"\xff\xfe", b"%ff%fe", b"%", b"%zz", b"%00", b"heap%00",
                 b"%C0%AF", b"%ED%A0%80", b"h\x00eap", b"HEAP", b"x" * 4000]
VALUES = [b"", b"abc", b"-1", b"0", b"%ff%fe", b"\xff\xfe", b"%", b"%zz", b"%00", b"%C0%AF",
          b"%ED%A0%80", b"9" * 5000, b"-" + b"9" * 30, b"1e309", b"nan", b"inf", SCRIPT,
          b"%3Cscript%3E", b"%EF%BC%91", b"+", b"%20", b"0x10", b"1_0", b"\t", b"a=b=c", b"&&&",
          b"x" * 30000]
METHODS = [b"PUT", b"DELETE", b"OPTIONS", b"TRACE", b"CONNECT", b"PROPFIND", b"get", b"G\x00T",
           b"X" * 1000, b"do_GET", b"__init__", b"_serve", b"GET\x7f", b"\xc4\xd6", SCRIPT]


# -- the wire ------------------------------------------------------------------------------------
# heap traced, shallow: tracemalloc slows every allocation of this process, clients included
listening = partial(serving, heap=True, heap_depth=2, max_seconds=1, max_long_requests=16)


def exchange(address, request: bytes, timeout: float = 20) -> bytes:
    """Send raw bytes, read the whole answer (the listener closes after each response)."""
    with socket.create_connection(address, timeout=timeout) as client:
        try:
            client.sendall(request)
        except (BrokenPipeError, ConnectionResetError):
            pass  # it may answer and close before taking everything (414, 431, 413)
        chunks = []
        try:
            while chunk := client.recv(65536):
                chunks.append(chunk)
        except ConnectionResetError:
            pass
        return b"".join(chunks)


def parse(answer: bytes) -> tuple[int, dict[bytes, bytes], bytes]:
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    version, status = lines[0].split(b" ", 2)[:2]
    assert version in (b"HTTP/1.0", b"HTTP/1.1"), lines[0]
    headers = {}
    for line in lines[1:]:
        key, _, value = line.partition(b":")
        headers[key.strip().lower()] = value.strip()
    return int(status), headers, body


def problems_of(request: bytes, answer: bytes, head: bool = False) -> list[str]:
    label = repr(request[:120])
    if not answer:
        return [f"{label}: no answer at all"]
    try:
        status, headers, body = parse(answer)
    except (ValueError, AssertionError):
        return [f"{label}: not an HTTP response: {answer[:120]!r}"]
    found = []
    if status not in DOCUMENTED or (status == 500 and body not in (HEAP_OFF, b"")):
        found.append(f"{label}: undocumented status {status}: {body[:200]!r}")
    if not head and headers.get(b"content-length", b"-1") != str(len(body)).encode():
        found.append(f"{label}: Content-Length {headers.get(b'content-length')} != {len(body)}")
    if b"Traceback" in body or b'File "' in body:
        found.append(f"{label}: a traceback in the body")
    content_type = headers.get(b"content-type", b"")
    if b"html" in content_type and b"<script" in body.lower():
        found.append(f"{label}: reflected markup in an HTML body")
    plain = (content_type == b"text/plain; charset=utf-8"
             and headers.get(b"x-content-type-options") == b"nosniff")
    if status >= 400 and status != 503 and not plain:
        found.append(f"{label}: error not plain text with nosniff: {headers}")
    return found


def get(target: bytes, method: bytes = b"GET", extra: bytes = b"") -> bytes:
    return method + b" " + target + b" HTTP/1.1\r\nHost: pprof\r\n" + extra + b"\r\n"


def corpus() -> list[bytes]:
    requests = []
    for name in NAMES + HOSTILE_NAMES:
        path = P + name
        # a timed endpoint gets a bad seconds too, so each request is answered at once
        fast = b"seconds=x&" if name in TIMED else b""
        # a heap snapshot costs ~40 ms here: those paths get every third value
        for value in VALUES[::3] if name in HEAVY else VALUES:
            requests.append(get(path + b"?seconds=" + value))
            requests.append(get(path + b"?" + fast + b"debug=" + value))
            requests.append(get(path + b"?" + fast + b"gc=" + value))
            requests.append(get(path + b"?" + fast + value))
        requests += [
            get(path + b"?seconds=abc&seconds=1&debug=1&debug=x"),  # repeated: the first wins
            get(path + b"?" + fast + b"&".join([b"debug=1"] * 63)),  # at the cap
            get(path + b"?" + b"&".join([b"gc=1"] * 65)),  # past the cap: 400
            get(path + b"?" + fast + b"&".join(b"k%d=%s" % (i, b"v" * 900) for i in range(60))),
            get(path + b"?" + fast + b";".join([b"debug=1"] * 200)),
            get(path + b"?" + fast, b"HEAD"),
        ]
    for target in (P, P + b"heap", P + b"symbol", P + b"cmdline", b"/debug/pprof", P + SCRIPT):
        requests += [get(target, method) for method in METHODS]
    cmdline = P + b"cmdline"
    requests += [
        # request lines
        b"GET " + P + b"x" * 70000 + b" HTTP/1.1\r\n\r\n",  # 70 KB: 414
        b"GET " + cmdline + b"\r\n\r\n",  # HTTP/0.9: 400
        b"GET " + cmdline + b" HTTP/9.9\r\n\r\n",
        b"GET " + cmdline + b" HTTP/1.1x\r\n\r\n",
        b"GET " + cmdline + b" http/1.1\r\n\r\n",
        b"GET " + cmdline + b" HTTP/1.1 extra\r\n\r\n",
        b"GET\t" + cmdline + b"\tHTTP/1.1\r\n\r\n",
        b"GET " + cmdline + b"\x00 HTTP/1.1\r\n\r\n",
        b"GET " + P + SCRIPT + b" HTTP/1.1 " + SCRIPT + b"\r\n\r\n",
        b"GET http://other.example" + cmdline + b" HTTP/1.1\r\n\r\n",
        b"GET //debug/pprof/cmdline HTTP/1.1\r\n\r\n",
        b"GET * HTTP/1.1\r\n\r\n",
        b"GARBAGE\r\n\r\n",
        b"\xff\xfe\xfd\r\n\r\n",
        # header floods and odd headers
        get(cmdline, extra=b"X: y\r\n" * 99),  # 100 with Host: accepted
        get(cmdline, extra=b"X: y\r\n" * 100),  # 101: 431
        get(cmdline, extra=b"X: y\r\n" * 5000),
        get(cmdline, extra=b"X: " + b"y" * 70000 + b"\r\n"),
        get(cmdline, extra=b"Cookie: " + b"c" * 60000 + b"\r\n"),
        get(cmdline, extra=b"X: \xff\xfe" + SCRIPT + b"\r\nno colon here\r\n"),
        get(cmdline, extra=b" folded: line\r\n\tcontinued\r\n"),
        get(cmdline, extra=b"Authorization: Bearer " + b"t" * 10000 + b"\r\n"),
        get(cmdline, extra=b"Expect: 100-continue\r\n"),
        # bodies on GET (ignored: each connection carries one request)
        get(cmdline, extra=b"Content-Length: 10\r\n") + b"0123456789",
        get(cmdline, extra=b"Content-Length: 99999999999\r\n"),
        get(cmdline, extra=b"Content-Length: abc\r\nTransfer-Encoding: chunked\r\n") + b"0\r\n\r\n",
        get(cmdline, extra=b"Content-Length: 44\r\n") + get(P + b"nope")[:44],
        # POST bodies: over the cap, bad lengths, chunked, exactly at the cap
        get(P + b"symbol", b"POST", b"Content-Length: %d\r\n" % (MAX_BODY + 1)),
        get(P + b"symbol", b"POST", b"Content-Length: 99999999999999999999\r\n"),
        get(P + b"symbol", b"POST", b"Content-Length: " + b"9" * 5000 + b"\r\n"),
        get(P + b"symbol", b"POST", b"Content-Length: -5\r\n"),
        get(P + b"symbol", b"POST", b"Content-Length: 1e3\r\n"),
        get(P + b"symbol", b"POST", b"Content-Length: \xb2\r\n"),  # "²".isdigit() is true
        get(P + b"symbol", b"POST", b"Content-Length: 3\r\nContent-Length: 3\r\n") + b"0x1",
        get(P + b"symbol", b"POST", b"Transfer-Encoding: chunked\r\n") + b"3\r\n0x1\r\n0\r\n\r\n",
        get(P + b"symbol", b"POST", b"Content-Length: %d\r\n" % MAX_BODY) + b"+" * MAX_BODY,
        get(P + b"symbol", b"POST", b"Content-Length: 8\r\n") + b"\xff\xfe" + SCRIPT[:6],
        get(P + b"heap?debug=1", b"POST", b"Content-Length: 4\r\n") + b"gc=1",
    ]
    return requests


def test_hostile_corpus_gets_documented_answers_and_the_listener_keeps_serving():
    requests = corpus()
    assert len(requests) > 1500
    with Heartbeat(0.005) as app, listening() as profiler, ThreadPoolExecutor(8) as pool:
        address = profiler.http_address[:2]

        def one(request: bytes) -> list[str]:
            head = request.startswith(b"HEAD ")
            found = problems_of(request, exchange(address, request), head)
            return found or problems_of(b"next", exchange(address, get(P + b"cmdline")))

        problems = [p for found in pool.map(one, requests) for p in found]
        status, _, body = parse(exchange(address, get(P)))
        assert status == 200 and b"<html>" in body
    assert not problems, "\n".join(problems[:40])
    assert app.max_gap < 1.0, f"the application stalled {app.max_gap:.2f} s"


def test_the_seconds_cap_bounds_a_timed_endpoints_default():
    with listening(max_seconds=1) as profiler:
        began = time.monotonic()
        status, headers, _ = parse(exchange(profiler.http_address[:2], get(P + b"profile")))
        took = time.monotonic() - began
    assert (status, headers[b"content-disposition"]) == (200, b'attachment; filename="profile"')
    assert took < 5, f"profile without seconds ran {took:.1f} s past DURAGRAPH_PPROF_MAX_SECONDS=1"


# -- slow and vanishing clients -------------------------------------------------------------------
def trickle(address, data: bytes, family=socket.AF_INET) -> float:
    """Send one byte a second; return how long until the listener cut us off (bounded)."""
    began = time.monotonic()
    with socket.create_connection(address, timeout=5) as client:
        for byte in data[:25]:
            try:
                client.sendall(bytes([byte]))
                client.settimeout(1.0)
                if client.recv(65536) == b"":
                    return time.monotonic() - began
            except TimeoutError:
                continue
            except OSError:
                return time.monotonic() - began
    return float("inf")


def test_slow_clients_are_cut_off_by_the_read_deadline_and_others_are_served_meanwhile():
    slow_line = b"GET /debug/pprof/cmdline HTTP/1.1\r\nHost: pprof\r\nX-Padding: " + b"p" * 40
    slow_body = get(P + b"symbol", b"POST", b"Content-Length: 100\r\n") + b"0x1+" * 25
    with (listening(http_threads=2) as full, listening() as roomy,
          ThreadPoolExecutor(4) as pool):
        cuts = [pool.submit(trickle, full.http_address[:2], slow_line) for _ in range(2)]
        cuts += [pool.submit(trickle, roomy.http_address[:2], slow_line),
                 pool.submit(trickle, roomy.http_address[:2], slow_body[:30] + slow_body[-30:])]
        time.sleep(1.5)
        served, busy = [], []
        while not all(c.done() for c in cuts) and len(served) < 200:
            began = time.monotonic()
            status = parse(exchange(roomy.http_address[:2], get(P + b"cmdline")))[0]
            served.append((status, time.monotonic() - began))
            began = time.monotonic()
            status = parse(exchange(full.http_address[:2], get(P + b"cmdline")))[0]
            busy.append((status, time.monotonic() - began))
            time.sleep(0.1)
        times = [c.result() for c in cuts]
        assert parse(exchange(full.http_address[:2], get(P + b"cmdline")))[0] == 200
    for took in times:
        assert READ_TIMEOUT - 0.5 < took < READ_TIMEOUT + 2.5, times
    assert len(served) > 20 and all(s == 200 and t < 1 for s, t in served), served
    # as many slow clients as `full` has threads pin none of them: the front holds them
    assert len(busy) > 20 and all(s == 200 and t < 1 for s, t in busy), busy


def test_clients_that_vanish_mid_profile_or_mid_response_free_everything():
    with Heartbeat(0.005) as app, listening(max_long_requests=1, max_seconds=60) as profiler:
        address = profiler.http_address[:2]

        def long_slot_is_free() -> bool:
            deadline = time.monotonic() + 3
            while time.monotonic() < deadline:
                if parse(exchange(address, get(P + b"wall?seconds=1")))[0] == 200:
                    return True
                time.sleep(0.1)
            return False

        for target, reset in ((P + b"profile?seconds=30", True), (P + b"trace?seconds=30", False)):
            client = socket.create_connection(address)
            if reset:  # an abortive close: RST instead of FIN
                client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            client.sendall(get(target))
            time.sleep(0.3)
            client.close()
            assert long_slot_is_free(), target
        for _ in range(3):  # gone after the first bytes of a large answer
            client = socket.create_connection(address)
            client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            client.sendall(get(P + b"goroutine?debug=2"))
            client.recv(100)
            client.close()
        assert parse(exchange(address, get(P + b"cmdline")))[0] == 200
    assert app.max_gap < 1.0


# -- bounded fuzzing ------------------------------------------------------------------------------
@pytest.fixture
def short_waits(monkeypatch):
    """Timed requests wait 20 ms at most: the fuzz is about parsing, not about waiting."""
    wait = render_module._wait
    monkeypatch.setattr(render_module, "_wait", lambda cancel, seconds: wait(cancel, 0.02))


TOKENS = [b"seconds", b"debug", b"gc", b"=", b"&", b";", b"%", b"%ff", b"%00", b"1", b"-1", b"0",
          b"+", b"?", b"/", b"#", SCRIPT, b"\xff", b" ", b"\t"]
raw_bytes = st.binary(max_size=40)
piece = st.one_of(st.sampled_from(TOKENS), raw_bytes,
                  st.text(max_size=12).map(lambda t: t.encode("utf-8")))
target = st.tuples(
    st.sampled_from([P, b"/debug/pprof", b"/", b"", b"*", b"/debug/pprof/../"]),
    st.one_of(st.sampled_from(NAMES), raw_bytes),
    st.lists(piece, max_size=12).map(b"".join),
).map(lambda t: t[0] + t[1] + (b"?" + t[2] if t[2] else b""))
request_line = st.one_of(
    st.tuples(
        st.one_of(st.sampled_from([b"GET", b"HEAD", b"POST", b"PUT", b"OPTIONS"]), raw_bytes),
        target,
        st.sampled_from([b"HTTP/1.1", b"HTTP/1.0", b"", b"HTTP/2", b"HTTP/1.1 x", b"HTTP/0.9"]),
        st.lists(st.tuples(st.sampled_from([b"X", b"Host", b"Authorization", b"Cookie"]),
                           raw_bytes), max_size=4),
    ).map(lambda t: t[0] + b" " + t[1] + b" " + t[2] + b"\r\n"
          + b"".join(k + b": " + v.replace(b"\n", b"") + b"\r\n" for k, v in t[3])),
    raw_bytes.map(lambda b: b + b"\r\n"),
)


def test_fuzz_raw_requests_against_a_real_listener(short_waits):
    with listening(heap=False) as profiler:  # untraced: hypothesis allocates a lot
        address = profiler.http_address[:2]
        sent = []

        @settings(max_examples=200, deadline=None, database=None,
                  suppress_health_check=[HealthCheck.too_slow])
        @given(request_line)
        def one(line: bytes) -> None:
            request = line + b"\r\n"
            sent.append(request)
            first = request.split(b"\n", 1)[0]
            if b"content-length" in request.lower() or b"transfer-encoding" in request.lower():
                return  # a body would be awaited until the read deadline; the corpus has those
            answer = exchange(address, request)
            if not first.decode("latin-1").split() and not answer:
                return  # a blank request line: closed without a word (RFC 9112 allows ignoring it)
            head = first.startswith(b"HEAD ")
            assert not problems_of(request, answer, head)

        one()
        assert len(sent) >= 150, len(sent)
        assert parse(exchange(address, get(P + b"cmdline")))[0] == 200


GRPC_CODES = {grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT,
              grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.FAILED_PRECONDITION,
              grpc.StatusCode.UNIMPLEMENTED}
INT64 = st.integers(-(2**63), 2**63 - 1)


def test_fuzz_grpc_requests_against_the_servicer(short_waits):
    profiler = duragraph_pprof.start("serve", environ={}, heap=False, max_seconds=5,
                                     max_long_requests=16)
    servicer = ProfilerServicer(profiler.core, max_watches=4)
    names = st.one_of(st.sampled_from([n.decode() for n in NAMES]), st.text(max_size=30))
    profile_request = st.builds(
        lambda name, seconds, debug, gc: pb.GetProfileRequest(
            name=name, gc=gc, **({} if seconds is None else {"seconds": seconds}),
            **({} if debug is None else {"debug": debug})),
        names, st.one_of(st.none(), INT64, st.integers(-3, 7)),
        st.one_of(st.none(), st.integers(-(2**31), 2**31 - 1)), st.booleans())

    calls = []

    def call(method, request) -> None:
        calls.append(method.__name__)
        context = FakeContext()
        try:
            answer = method(request, context)
            if hasattr(answer, "__next__"):
                messages = list(answer)
                assert messages
        except Aborted as aborted:
            assert aborted.code in GRPC_CODES, (request, aborted.code, aborted.details)
            assert "Traceback" not in aborted.details
        finally:
            context.end()

    @settings(max_examples=200, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow])
    @given(profile_request, INT64, st.integers(-(10**9), 10**9), st.integers(-(2**31), 2**31 - 1))
    def one(request, interval_seconds, nanos, kind) -> None:
        call(servicer.GetProfile, request)
        watch = pb.WatchGoroutinesRequest(max_updates=1)
        # a Duration's documented range; past it protobuf refuses to build the message
        watch.interval.seconds = max(min(interval_seconds, 315576000000), -315576000000)
        watch.interval.nanos = nanos if (watch.interval.seconds >= 0) == (nanos >= 0) else 0
        call(servicer.WatchGoroutines, watch)
        call(servicer.GetGoroutines, pb.GetGoroutinesRequest(kind=kind))
        call(servicer.ListProfiles, pb.ListProfilesRequest())

    try:
        one()
    finally:
        profiler.stop()
    assert calls.count("GetProfile") >= 150, len(calls)


def test_garbage_on_the_grpc_port_leaves_it_serving():
    with listening(http_addr=None, grpc_addr="127.0.0.1:0") as profiler:
        address = ("127.0.0.1", profiler.grpc_address[1])
        preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
        junk = [b"", b"\x00" * 100, b"GET / HTTP/1.1\r\n\r\n", preface + b"\xff" * 1000,
                preface + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00" + b"\x00\xff\xff\xff" * 50,
                b"\x16\x03\x01\x02\x00" + b"\x01" * 512]
        for payload in junk:
            with socket.create_connection(address, timeout=5) as client:
                client.sendall(payload)
                client.settimeout(2)
                try:
                    client.recv(65536)
                except (TimeoutError, ConnectionResetError):
                    pass
        channel = grpc.insecure_channel(f"127.0.0.1:{address[1]}")
        try:
            stub = pb_grpc.ProfilerServiceStub(channel)
            assert stub.ListProfiles(pb.ListProfilesRequest(), timeout=10).profiles
            huge = pb.GetProfileRequest(name="x" * (70 * 1024))
            with pytest.raises(grpc.RpcError) as refused:
                list(stub.GetProfile(huge, timeout=10))
            assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert stub.ListProfiles(pb.ListProfilesRequest(), timeout=10).profiles
        finally:
            channel.close()
