"""Lifecycle: start/stop/start cycles leave nothing behind, and a gunicorn-style pre-fork server
gets one profiler per worker, each reached on its own port and pushing with its own pid."""

from __future__ import annotations

import gc
import json
import os
import socket
import threading
import time
import tracemalloc
from functools import partial
from pathlib import Path

import grpc
import pytest
from support.collector import running_collector
from support.listener import get

import duragraph_pprof
from duragraph_pprof._gen.duragraph.pprof.v1 import profiler_pb2 as pb
from duragraph_pprof._gen.duragraph.pprof.v1 import profiler_pb2_grpc as pb_grpc

CYCLES = 20


def fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def os_threads() -> int:
    return len(os.listdir("/proc/self/task"))


def one_cycle() -> None:
    profiler = duragraph_pprof.start(
        "serve", environ={}, http_addr="127.0.0.1:0", grpc_addr="127.0.0.1:0", heap=True,
        mutex_fraction=1, block_fraction=1)
    try:
        assert threading.Lock is not LOCK  # patched while running
        assert tracemalloc.is_tracing()
        assert get(profiler.http_address, "goroutine?debug=1").startswith(b"goroutine")
        channel = grpc.insecure_channel(f"127.0.0.1:{profiler.grpc_address[1]}")
        try:
            stub = pb_grpc.ProfilerServiceStub(channel)
            assert stub.ListProfiles(pb.ListProfilesRequest(), timeout=10).profiles
        finally:
            channel.close()
    finally:
        profiler.stop()


LOCK = threading.Lock


def test_start_stop_cycles_leak_no_thread_fd_patched_lock_or_tracemalloc_state():
    assert not tracemalloc.is_tracing()
    # One cycle first: gRPC's process-wide core (its epoll set, wake-up pipes, timer and
    # executor threads) starts on first use and stays for the life of the process by design.
    one_cycle()
    time.sleep(0.5)
    gc.collect()  # gRPC objects in reference cycles hold its poller's fds until collected
    fds_before, tasks_before = fds(), os_threads()
    names_before = sorted(t.name for t in threading.enumerate())
    for _ in range(CYCLES):
        one_cycle()
        assert threading.Lock is LOCK and not tracemalloc.is_tracing()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:  # gRPC closes a channel's fds a moment after close()
        gc.collect()
        if len(fds() - fds_before) == 0 and os_threads() <= tasks_before:
            break
        time.sleep(0.1)
    leaked = {fd: os.readlink(f"/proc/self/fd/{fd}") for fd in fds() - fds_before
              if os.path.exists(f"/proc/self/fd/{fd}")}
    assert not leaked, f"{len(leaked)} fds after {CYCLES} cycles: {leaked}"
    assert os_threads() <= tasks_before, (os_threads(), tasks_before)
    assert sorted(t.name for t in threading.enumerate()) == names_before


# -- a gunicorn-style pre-fork server ---------------------------------------------------------
WORKERS = 2


def _worker(app: socket.socket, report: int, environ: dict[str, str], parent_inode: int) -> int:
    """What a worker does after fork: start its own profiler (gunicorn's post_fork hook), say
    where it listens, then accept one application connection on the shared socket."""
    threading.current_thread().name = f"worker-{os.getpid()}"
    inherited = [fd for fd in os.listdir("/proc/self/fd")
                 if _inode(f"/proc/self/fd/{fd}") == parent_inode]
    profiler = duragraph_pprof.start("serve", environ=environ, http_addr="127.0.0.1:0",
                                     push_interval=0.5)
    try:
        os.write(report, json.dumps({"pid": os.getpid(), "port": profiler.http_address[1],
                                     "inherited": inherited}).encode() + b"\n")
        app.settimeout(30)
        connection, _ = app.accept()
        with connection:
            connection.recv(100)  # the parent has read our pprof by now
            end = time.thread_time() + 0.5
            while time.thread_time() < end:  # some CPU for the pushed profile
                sum(i * i for i in range(1000))
            connection.sendall(f"served by {os.getpid()}".encode())
    finally:
        profiler.stop()  # flushes the last push
    return 0


def _inode(path: str) -> int | None:
    try:
        return os.stat(path).st_ino
    except OSError:
        return None


def prefork(environ: dict[str, str]) -> tuple[list[dict], list[bytes], dict]:
    """Parent: bind, start its own profiler, fork WORKERS workers; read each worker's pprof
    while it runs; return (worker reports, application answers, parent facts)."""
    parent = duragraph_pprof.start("serve", environ=environ, http_addr="127.0.0.1:0",
                                   push_interval=0.5)
    app = socket.create_server(("127.0.0.1", 0))
    read, write = os.pipe()
    pids = []
    try:
        parent_inode = os.fstat(parent.http._server.socket.fileno()).st_ino
        for _ in range(WORKERS):
            pid = os.fork()
            if pid == 0:  # pragma: no cover - a worker; its result comes through the pipe
                code = 1
                try:
                    os.close(read)
                    code = _worker(app, write, environ, parent_inode)
                finally:
                    os._exit(code)
            pids.append(pid)
        os.close(write)
        write = -1
        reports = []
        with os.fdopen(read, "rb") as pipe:
            read = -1
            for _ in range(WORKERS):
                reports.append(json.loads(pipe.readline()))
            facts = {"pid": os.getpid(), "pprof": {}}
            for report in reports:
                address = ("127.0.0.1", report["port"])
                facts["pprof"][report["pid"]] = {
                    "dump": get(address, "goroutine?debug=2").decode(),
                    "trace": json.loads(get(address, "trace?seconds=0.2")),
                }
            facts["parent_dump"] = get(parent.http_address, "goroutine?debug=2").decode()
            answers = []
            for _ in range(WORKERS):  # each worker accepts exactly one: both get one
                with socket.create_connection(app.getsockname(), timeout=30) as client:
                    client.sendall(b"hi")
                    answers.append(client.recv(100))
        for pid in pids:
            _, status = os.waitpid(pid, 0)
            facts.setdefault("exit", []).append(os.waitstatus_to_exitcode(status))
        pids.clear()
        facts["parent_after"] = get(parent.http_address, "cmdline")
        return reports, answers, facts
    finally:
        for fd in (read, write):
            if fd >= 0:
                os.close(fd)
        for pid in pids:  # only on failure: never leave a worker behind
            os.kill(pid, 9)
            os.waitpid(pid, 0)
        app.close()
        parent.stop()


def check_prefork(reports, answers, facts) -> None:
    pids = {r["pid"] for r in reports}
    assert len(pids) == WORKERS and facts["pid"] not in pids
    assert facts["exit"] == [0] * WORKERS  # nothing deadlocked: both finished
    assert len({r["port"] for r in reports}) == WORKERS  # each its own pprof port
    assert sorted(answers) == sorted(f"served by {pid}".encode() for pid in pids)
    for report in reports:
        assert report["inherited"] == [], "a worker kept the parent's pprof listening socket"
        own = facts["pprof"][report["pid"]]
        assert f'thread "worker-{report["pid"]}"' in own["dump"]  # its own goroutines
        for other in pids - {report["pid"]}:
            assert f"worker-{other}" not in own["dump"]
        assert {e.get("pid") for e in own["trace"]["traceEvents"]} == {report["pid"]}
    assert "worker-" not in facts["parent_dump"]  # the parent's port serves the parent
    assert facts["parent_after"]  # and still does after the workers have gone


def test_prefork_workers_each_serve_their_own_pprof():
    check_prefork(*prefork({}))


@pytest.mark.collector
def test_prefork_workers_push_with_their_own_pid(tmp_path: Path):
    with running_collector(tmp_path / "otelcol") as otelcol:
        environ = {"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://{otelcol.grpc_endpoint}",
                   "OTEL_SERVICE_NAME": "prefork-test"}
        reports, answers, facts = prefork(environ)
        check_prefork(reports, answers, facts)
        wanted = {r["pid"] for r in reports} | {facts["pid"]}

        pushed_pids = partial(otelcol.pushed_pids, "prefork-test")
        seen = otelcol.wait_for(lambda: wanted <= pushed_pids() and pushed_pids(), timeout=30)
    assert seen == wanted, (seen, wanted)  # each worker its own pid; no inherited push
