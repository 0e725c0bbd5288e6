"""The gRPC surface: the servicer in-process, one real server on 127.0.0.1:0, and grpcurl.

grpcurl (a client no one here wrote) is installed from the Go module proxy by
scripts/install-go-tools.sh; a missing `go` or grpcurl fails these tests, it never skips them.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import subprocess
import threading
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from support.fakes import Aborted, FakeContext
from support.profiles import parse_pprof

import duragraph_pprof
from duragraph_pprof._gen.duragraph.pprof.v1 import profiler_pb2 as pb
from duragraph_pprof._gen.duragraph.pprof.v1 import profiler_pb2_grpc as pb_grpc
from duragraph_pprof.config import load_config
from duragraph_pprof.core.profiling_core import ProfilingCore
from duragraph_pprof.errors import BindRefused
from duragraph_pprof.guard import check_bind
from duragraph_pprof.kinds import REGISTRY
from duragraph_pprof.render import ProfileRequest, Rendered, render
from duragraph_pprof.server import grpc as grpc_server
from duragraph_pprof.server.grpc import CHUNK_SIZE, ProfilerServicer, chunks, start_grpc_server

ROOT = Path(__file__).resolve().parents[2]
GRPC_VAR = "DURAGRAPH_PPROF_GRPC_ADDR"
Code = grpc.StatusCode


# -- fixtures -----------------------------------------------------------------------------------
@contextmanager
def running_core(**overrides):
    settings = {"heap": True, "max_long_requests": 2, "max_seconds": 60, **overrides}
    core = ProfilingCore(load_config({}, **settings))
    core.start()
    try:
        yield core
    finally:
        core.stop()


@contextmanager
def serving(core):
    """A real listener on an OS-chosen loopback port, and a channel to it."""
    target = check_bind("127.0.0.1:0", variable=GRPC_VAR, allow_public=False)
    listener = start_grpc_server(core, target, core.config)
    channel = grpc.insecure_channel(f"127.0.0.1:{listener.address[1]}")
    try:
        yield listener, pb_grpc.ProfilerServiceStub(channel)
    finally:
        channel.close()
        listener.stop()


@pytest.fixture
def core():
    with running_core() as c:
        yield c


@pytest.fixture
def server(core):
    with serving(core) as (listener, stub):
        yield listener, stub


@pytest.fixture
def both():
    """The whole profiler as users start it: real HTTP and gRPC listeners on one core."""
    profiler = duragraph_pprof.start(
        "serve", environ={}, http_addr="127.0.0.1:0", grpc_addr="127.0.0.1:0", heap=True
    )
    channel = grpc.insecure_channel(f"127.0.0.1:{profiler.grpc_address[1]}")
    try:
        yield profiler, pb_grpc.ProfilerServiceStub(channel)
    finally:
        channel.close()
        profiler.stop()


def http_get(profiler, path: str):
    with urllib.request.urlopen(profiler.http.url + path, timeout=60) as response:
        return response.headers, response.read()


@pytest.fixture(scope="module")
def grpcurl() -> str:
    if shutil.which("go") is None:
        pytest.fail("the Go toolchain is required (grpcurl and go tool pprof)")
    out = subprocess.run(
        [str(ROOT / "scripts/install-go-tools.sh")],
        check=False,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr
    path = out.stdout.strip().splitlines()[-1]
    assert os.access(path, os.X_OK), path
    return path


def pull(stub, **fields) -> tuple[list[pb.GetProfileResponse], bytes]:
    messages = list(stub.GetProfile(pb.GetProfileRequest(**fields), timeout=60))
    return messages, b"".join(m.data for m in messages)


def status_of(call) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as info:
        call()
    return info.value.code(), info.value.details()


# -- in-process servicer ------------------------------------------------------------------------
def test_list_profiles_is_the_registry(core):
    response = ProfilerServicer(core, 1).ListProfiles(pb.ListProfilesRequest(), FakeContext())
    entries = REGISTRY.entries()
    assert [p.name for p in response.profiles] == [e.name for e in entries]
    for info, entry in zip(response.profiles, entries):
        assert info.description == entry.description and info.description
        assert info.delta == entry.delta


def test_chunks_are_bounded_and_carry_headers_first():
    body = os.urandom(2 * CHUNK_SIZE + 12345)
    messages = list(chunks(Rendered("application/octet-stream", "heap", body)))
    assert [len(m.data) for m in messages] == [CHUNK_SIZE, CHUNK_SIZE, 12345]
    assert (messages[0].content_type, messages[0].filename) == ("application/octet-stream", "heap")
    assert all(not m.content_type and not m.filename for m in messages[1:])
    assert b"".join(m.data for m in messages) == body
    (empty,) = chunks(Rendered("text/plain; charset=utf-8", None, b""))
    assert (empty.data, empty.content_type, empty.filename) == (
        b"",
        "text/plain; charset=utf-8",
        "",
    )


@pytest.mark.parametrize(
    "fields, code",
    [
        ({"name": "no-such-profile"}, Code.NOT_FOUND),
        ({"name": ""}, Code.INVALID_ARGUMENT),
        ({"name": "profile", "seconds": -1}, Code.INVALID_ARGUMENT),
        ({"name": "profile", "seconds": 0}, Code.INVALID_ARGUMENT),
        ({"name": "profile", "seconds": 10**12}, Code.INVALID_ARGUMENT),
    ],
)
def test_bad_profile_requests(core, fields, code):
    servicer = ProfilerServicer(core, 1)
    with pytest.raises(Aborted) as info:
        list(servicer.GetProfile(pb.GetProfileRequest(**fields), FakeContext()))
    assert info.value.code == code and info.value.details


def test_heap_off_is_failed_precondition():
    with running_core(heap=False) as core, pytest.raises(Aborted) as info:
        list(
            ProfilerServicer(core, 1).GetProfile(
                pb.GetProfileRequest(name="heap"), FakeContext()
            )
        )
    assert info.value.code == Code.FAILED_PRECONDITION


def test_cancel_stops_a_cpu_pull_at_once(core):
    context = FakeContext()
    pulling = ProfilerServicer(core, 1).GetProfile(
        pb.GetProfileRequest(name="profile", seconds=30), context
    )
    threading.Timer(0.2, context.end).start()
    started = time.monotonic()
    assert list(pulling) == []
    assert time.monotonic() - started < 2


@pytest.mark.parametrize("interval", [0.0, 0.001, -1.0, 10 * 86400.0])
def test_absurd_watch_interval(core, interval):
    request = pb.WatchGoroutinesRequest()
    request.interval.FromNanoseconds(int(interval * 1e9))
    with pytest.raises(Aborted) as info:
        next(ProfilerServicer(core, 1).WatchGoroutines(request, FakeContext()))
    assert info.value.code == Code.INVALID_ARGUMENT


def test_watch_counts_match_the_goroutine_dump(core):
    request = pb.WatchGoroutinesRequest(max_updates=1)
    (update,) = ProfilerServicer(core, 1).WatchGoroutines(request, FakeContext())
    dump = render(core, ProfileRequest(name="goroutine", seconds=None, debug="1", gc=None))
    assert update.total == update.threads + update.asyncio_tasks
    assert f"goroutine profile: total {update.total}\n" in dump.body.decode()


def test_watches_are_capped_and_release_their_slot(core):
    servicer = ProfilerServicer(core, 1)
    context = FakeContext()
    first = servicer.WatchGoroutines(pb.WatchGoroutinesRequest(), context)
    next(first)
    with pytest.raises(Aborted) as info:
        next(servicer.WatchGoroutines(pb.WatchGoroutinesRequest(), FakeContext()))
    assert info.value.code == Code.RESOURCE_EXHAUSTED
    context.end()
    assert list(first) == []  # ends at once instead of sleeping out the interval
    assert next(servicer.WatchGoroutines(pb.WatchGoroutinesRequest(), FakeContext())).total > 0


# -- one real server ----------------------------------------------------------------------------
def test_real_server_health_and_list(core, server):
    listener, stub = server
    assert listener.address[0] == "127.0.0.1" and listener.address[1] > 0
    channel = grpc.insecure_channel(f"127.0.0.1:{listener.address[1]}")
    try:
        health = health_pb2_grpc.HealthStub(channel)
        for service in ("", "duragraph.pprof.v1.ProfilerService"):
            reply = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
    finally:
        channel.close()
    names = [p.name for p in stub.ListProfiles(pb.ListProfilesRequest(), timeout=5).profiles]
    assert names == [e.name for e in REGISTRY.entries()]


def test_http_and_grpc_serve_identical_bytes(both):
    profiler, stub = both
    headers, http_body = http_get(profiler, "cmdline")
    messages, grpc_body = pull(stub, name="cmdline")
    assert grpc_body == http_body and grpc_body
    assert messages[0].content_type == headers["Content-Type"]
    # a CPU profile is not deterministic, but its headers and format are the same
    headers, http_body = http_get(profiler, "profile?seconds=1")
    messages, grpc_body = pull(stub, name="profile", seconds=1)
    assert messages[0].content_type == headers["Content-Type"]
    assert f'filename="{messages[0].filename}"' in headers["Content-Disposition"]
    assert parse_pprof(grpc_body).sample_type == parse_pprof(http_body).sample_type


def test_large_body_streams_intact(core, server, monkeypatch):
    body = os.urandom(100 << 20)  # the size of a big heap profile
    monkeypatch.setattr(grpc_server, "render", lambda c, r, cancel: Rendered("x/y", "big", body))
    started = time.monotonic()
    messages, got = pull(server[1], name="heap")
    assert got == body and len(messages) == 100
    assert time.monotonic() - started < 30


def test_bad_requests_get_statuses_and_the_server_keeps_serving(server):
    _, stub = server
    cases = [
        (pb.GetProfileRequest(name="nope"), Code.NOT_FOUND),
        (pb.GetProfileRequest(name="profile", seconds=-5), Code.INVALID_ARGUMENT),
        (pb.GetProfileRequest(name="profile", seconds=10**9), Code.INVALID_ARGUMENT),
    ]
    for request, code in cases:
        assert status_of(lambda r=request: list(stub.GetProfile(r, timeout=10)))[0] == code
    bad_watch = pb.WatchGoroutinesRequest()
    bad_watch.interval.FromSeconds(86400 * 365)
    assert status_of(lambda: list(stub.WatchGoroutines(bad_watch, timeout=10)))[0] == (
        Code.INVALID_ARGUMENT
    )
    assert stub.ListProfiles(pb.ListProfilesRequest(), timeout=5).profiles


def test_long_pull_cap_cancel_and_deadline_free_the_slot():
    with running_core(max_long_requests=1) as core, serving(core) as (_, stub):
        long_pull = stub.GetProfile(pb.GetProfileRequest(name="profile", seconds=30))
        time.sleep(0.5)
        code, _ = status_of(
            lambda: list(stub.GetProfile(pb.GetProfileRequest(name="wall", seconds=1), timeout=10))
        )
        assert code == Code.RESOURCE_EXHAUSTED
        long_pull.cancel()
        time.sleep(0.3)
        assert pull(stub, name="profile", seconds=1)[1]  # the cancelled pull let go of its slot
        started = time.monotonic()
        code, _ = status_of(
            lambda: list(
                stub.GetProfile(pb.GetProfileRequest(name="profile", seconds=30), timeout=0.5)
            )
        )
        assert code == Code.DEADLINE_EXCEEDED and time.monotonic() - started < 2
        time.sleep(0.3)
        assert pull(stub, name="profile", seconds=1)[1]  # so did the expired one


def test_stop_cancels_calls_in_flight(core):
    with serving(core) as (listener, stub):
        pulling = stub.GetProfile(pb.GetProfileRequest(name="profile", seconds=30))
        watching = stub.WatchGoroutines(pb.WatchGoroutinesRequest())
        next(watching)
        time.sleep(0.3)
        started = time.monotonic()
        listener.stop()
        assert time.monotonic() - started < 3  # the grace period, not the 30 s window
        for call in (pulling, watching):
            assert status_of(lambda c=call: list(c))[0] in (Code.UNAVAILABLE, Code.CANCELLED)


def test_overlapping_pulls_and_watch_share_one_sampler(both):
    profiler, stub = both
    results: dict[str, bytes] = {}

    def http_pull():
        results["http"] = http_get(profiler, "profile?seconds=2")[1]

    def grpc_pull():
        results["grpc"] = pull(stub, name="profile", seconds=2)[1]

    workers = [threading.Thread(target=http_pull), threading.Thread(target=grpc_pull)]
    for worker in workers:
        worker.start()
    watch = pb.WatchGoroutinesRequest(max_updates=20)
    watch.interval.FromMilliseconds(100)
    seen = set()
    for update in stub.WatchGoroutines(watch, timeout=30):
        assert update.total == update.threads + update.asyncio_tasks > 0
        seen.add(profiler.core.sampler.stats().running_threads)
    for worker in workers:
        worker.join(30)
    assert seen == {1}
    assert set(results) == {"http", "grpc"}
    for body in results.values():
        assert parse_pprof(body).sample


def test_typed_goroutine_stacks(server):
    _, stub = server
    loop = asyncio.new_event_loop()
    ready = threading.Event()

    async def parked():
        ready.set()
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            pass  # the test is done with it

    runner = threading.Thread(
        target=loop.run_until_complete, args=(parked(),), name="asyncio-runner"
    )
    runner.start()
    try:
        assert ready.wait(5)
        reply = stub.GetGoroutines(pb.GetGoroutinesRequest(), timeout=10)
        tasks = [g for g in reply.goroutines if g.kind == pb.GOROUTINE_KIND_ASYNCIO_TASK]
        assert any(f.function.endswith("parked") for t in tasks for f in t.frames)
        mine = [
            g
            for g in reply.goroutines
            if any(f.function.endswith("test_typed_goroutine_stacks") for f in g.frames)
        ]
        assert len(mine) == 1 and mine[0].kind == pb.GOROUTINE_KIND_THREAD
        assert mine[0].thread_id == threading.get_ident()
        only = stub.GetGoroutines(pb.GetGoroutinesRequest(kind=pb.GOROUTINE_KIND_THREAD))
        assert {g.kind for g in only.goroutines} == {pb.GOROUTINE_KIND_THREAD}
    finally:
        loop.call_soon_threadsafe(lambda: [t.cancel() for t in asyncio.all_tasks(loop)])
        runner.join(5)
        loop.close()


def test_token_is_required_on_profiler_calls_only():
    with running_core(token="s3cret") as core, serving(core) as (listener, stub):
        request = pb.ListProfilesRequest()
        for metadata in [(), (("authorization", "Bearer wrong"),), (("authorization", "s3cret"),)]:
            code, _ = status_of(
                lambda m=metadata: stub.ListProfiles(request, metadata=m, timeout=5)
            )
            assert code == Code.UNAUTHENTICATED
        code, _ = status_of(lambda: list(stub.GetProfile(pb.GetProfileRequest(name="cmdline"))))
        assert code == Code.UNAUTHENTICATED
        good = (("authorization", "Bearer s3cret"),)
        assert stub.ListProfiles(request, metadata=good, timeout=5).profiles
        channel = grpc.insecure_channel(f"127.0.0.1:{listener.address[1]}")
        try:
            health = health_pb2_grpc.HealthStub(channel)
            assert health.Check(health_pb2.HealthCheckRequest(), timeout=5).status == (
                health_pb2.HealthCheckResponse.SERVING
            )
        finally:
            channel.close()


def test_guard_refuses_every_interface_as_for_http(core):
    for host in ("0.0.0.0", "[::]"):
        with pytest.raises(BindRefused) as grpc_refusal:
            check_bind(f"{host}:6061", variable=GRPC_VAR, allow_public=False)
        with pytest.raises(BindRefused) as http_refusal:
            check_bind(f"{host}:6061", variable="DURAGRAPH_PPROF_ADDR", allow_public=False)
        assert grpc_refusal.value.variable == GRPC_VAR
        assert str(grpc_refusal.value).replace(GRPC_VAR, "DURAGRAPH_PPROF_ADDR") == str(
            http_refusal.value
        )
    with pytest.raises(BindRefused) as refusal:
        duragraph_pprof.start("serve", environ={GRPC_VAR: "0.0.0.0:6061"})
    assert refusal.value.variable == GRPC_VAR and refusal.value.value == "0.0.0.0:6061"
    with pytest.raises(TypeError):
        start_grpc_server(core, "0.0.0.0:6061", core.config)


def test_taken_port_and_idempotent_stop(core, server):
    listener, _ = server
    taken = check_bind(f"127.0.0.1:{listener.address[1]}", variable=GRPC_VAR, allow_public=False)
    with pytest.raises(OSError):
        start_grpc_server(core, taken, core.config).stop()
    listener.stop()
    listener.stop()


# -- a real client through reflection -----------------------------------------------------------
def run_grpcurl(grpcurl, port, *args, data=None) -> str:
    command = [grpcurl, "-plaintext", "-max-time", "60"]
    command += ["-d", json.dumps(data)] if data is not None else []
    command += [f"127.0.0.1:{port}", *args]
    out = subprocess.run(command, check=False, capture_output=True, text=True, timeout=90)
    assert out.returncode == 0, out.stderr
    return out.stdout


def json_stream(text: str) -> list[dict]:
    """grpcurl prints one JSON document per streamed message."""
    decoder, messages, text, at = json.JSONDecoder(), [], text.strip(), 0
    while at < len(text):
        message, at = decoder.raw_decode(text, at)
        messages.append(message)
        while at < len(text) and text[at].isspace():
            at += 1
    return messages


def test_grpcurl_through_reflection_and_go_tool_pprof(grpcurl, server, tmp_path):
    listener, _ = server
    port = listener.address[1]
    services = run_grpcurl(grpcurl, port, "list").split()
    assert {"duragraph.pprof.v1.ProfilerService", "grpc.health.v1.Health"} <= set(services)
    (listing,) = json_stream(
        run_grpcurl(grpcurl, port, "duragraph.pprof.v1.ProfilerService/ListProfiles")
    )
    assert {"heap", "profile", "goroutine"} <= {p["name"] for p in listing["profiles"]}
    for name, data in [("heap", {"name": "heap"}), ("profile", {"name": "profile", "seconds": 2})]:
        messages = json_stream(
            run_grpcurl(grpcurl, port, "duragraph.pprof.v1.ProfilerService/GetProfile", data=data)
        )
        body = b"".join(base64.b64decode(m.get("data", "")) for m in messages)
        assert messages[0]["content_type"] == "application/octet-stream"
        path = tmp_path / f"{name}.pb.gz"
        path.write_bytes(body)
        raw = subprocess.run(
            ["go", "tool", "pprof", "-raw", "-symbolize=none", str(path)],
            check=False,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert raw.returncode == 0, raw.stderr
        assert "Samples:" in raw.stdout
