"""The README's pre-fork recipes under the real servers: gunicorn (sync and gthread workers) and
uvicorn with --workers. Every worker gets its own listener, and a heap and a CPU profile are
pulled from each; a worker replaced by --max-requests comes back profiled and leaves no stale
socket behind."""

from __future__ import annotations

import glob
import gzip
import os
import re
import signal
import socket
import subprocess
import sys
import time
from functools import partial
from pathlib import Path

import pytest
from support.collector import running_collector

from duragraph_pprof._gen.perftools.profiles import profile_pb2

BIN = Path(sys.executable).parent
WSGI_APP = """
def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]
"""
# the README's gunicorn.conf.py, with a socket per pid under PPROF_DIR
GUNICORN_CONF = """
import os
import duragraph_pprof

def post_fork(server, worker):
    path = os.path.join(os.environ["PPROF_DIR"], f"pprof-{worker.pid}.sock")
    worker.pprof = duragraph_pprof.start("serve", http_addr="unix:" + path, heap=True)
    server.log.info("worker %s pprof on %s", worker.pid, worker.pprof.http_address)

def worker_exit(server, worker):
    worker.pprof.stop()  # removes its socket
"""
# the README's uvicorn recipe: each worker process starts its profiler at lifespan startup
ASGI_APP = """
import sys
import duragraph_pprof

async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                app.pprof = duragraph_pprof.start("serve", http_addr="127.0.0.1:0", heap=True)
                host, port = app.pprof.http_address[:2]
                print(f"pprof on http://{host}:{port}/", file=sys.stderr, flush=True)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                app.pprof.stop()
                await send({"type": "lifespan.shutdown.complete"})
                return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})
"""


def raw_get(connect, target: str, timeout: float = 30) -> tuple[int, bytes]:
    """One GET over a fresh connection; the listener closes after each answer."""
    with connect() as client:
        client.settimeout(timeout)
        client.sendall(f"GET {target} HTTP/1.1\r\nHost: pprof\r\n\r\n".encode())
        answer = b""
        while chunk := client.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def unix(path: str):
    def connect() -> socket.socket:
        client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            client.connect(path)
        except OSError:
            client.close()
            raise
        return client

    return connect


def tcp(host: str, port: int):
    return lambda: socket.create_connection((host, port))


def pull_heap_and_cpu(connect) -> tuple[profile_pb2.Profile, profile_pb2.Profile]:
    out = []
    for target in ("/debug/pprof/heap", "/debug/pprof/profile?seconds=1"):
        status, body = raw_get(connect, target)
        assert status == 200, (target, body[:200])
        profile = profile_pb2.Profile()
        profile.ParseFromString(gzip.decompress(body))
        out.append(profile)
    heap, cpu = out
    assert [heap.string_table[t.type] for t in heap.sample_type][:2] == ["inuse_objects",
                                                                         "inuse_space"]
    assert heap.sample, "a worker with heap tracing on has live allocations"
    assert [cpu.string_table[t.type] for t in cpu.sample_type] == ["samples", "cpu"]
    return heap, cpu


def wait_for(condition, what: str, process: subprocess.Popen, timeout: float = 30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        assert process.poll() is None, f"server exited ({process.returncode}) before {what}"
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def stop(process: subprocess.Popen) -> str:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        _, err = process.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        _, err = process.communicate()
    return err


def child_pids(parent: int) -> set[int]:
    children = Path(f"/proc/{parent}/task/{parent}/children")
    return {int(p) for p in children.read_text().split()} if children.exists() else set()


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    (tmp_path / "wsgi_app.py").write_text(WSGI_APP)
    (tmp_path / "asgi_app.py").write_text(ASGI_APP)
    (tmp_path / "gunicorn.conf.py").write_text(GUNICORN_CONF)
    (tmp_path / "pprof").mkdir()
    return tmp_path


def gunicorn(app_dir: Path, *args: str, **environ: str) -> subprocess.Popen:
    env = {**os.environ, "PPROF_DIR": str(app_dir / "pprof"), **environ}
    return subprocess.Popen(
        [str(BIN / "gunicorn"), "-c", "gunicorn.conf.py", "--bind",
         f"unix:{app_dir / 'app.sock'}", "--workers", "2", *args, "wsgi_app:app"],
        cwd=app_dir, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def settled(app_dir: Path, server: subprocess.Popen, old: dict[int, str]) -> dict[int, str]:
    found = sockets(app_dir)
    if len(found) != 2 or set(found) & set(old) or set(found) != child_pids(server.pid):
        return {}
    time.sleep(1.0)
    return found if sockets(app_dir) == found and set(found) == child_pids(server.pid) else {}


def sockets(app_dir: Path) -> dict[int, str]:
    return {int(re.search(r"pprof-(\d+)\.sock$", p).group(1)): p
            for p in glob.glob(str(app_dir / "pprof" / "pprof-*.sock"))}


@pytest.mark.parametrize("worker_args", [["--worker-class", "sync"],
                                         ["--worker-class", "gthread", "--threads", "4"]],
                         ids=["sync", "gthread"])
def test_gunicorn_workers_each_serve_their_own_heap_and_cpu_profile(app_dir, worker_args):
    server = gunicorn(app_dir, *worker_args)
    try:
        found = wait_for(lambda: (s := sockets(app_dir)) and len(s) == 2 and s,
                         "two worker sockets", server)
        assert set(found) == child_pids(server.pid), (found, child_pids(server.pid))
        for path in found.values():
            heap, _ = pull_heap_and_cpu(unix(path))
            assert heap.sample
    finally:
        err = stop(server)
    assert len(re.findall(r"worker \d+ pprof on /", err)) == 2, err
    assert sockets(app_dir) == {}, "a worker left its socket behind"


def test_gunicorn_workers_replaced_by_max_requests_come_back_profiled(app_dir):
    server = gunicorn(app_dir, "--max-requests", "2")
    try:
        first = wait_for(lambda: (s := sockets(app_dir)) and len(s) == 2 and s,
                         "two worker sockets", server)
        for _ in range(6):  # every worker passes its two requests and is replaced
            assert raw_get(unix(str(app_dir / "app.sock")), "/")[0] == 200
        # a worker that served its second request exits just after answering: wait until the
        # set of workers has stayed the same for a second
        replaced = wait_for(lambda: settled(app_dir, server, first), "replacement workers",
                            server)
        for path in replaced.values():
            pull_heap_and_cpu(unix(path))
    finally:
        stop(server)
    assert sockets(app_dir) == {}


def test_uvicorn_workers_each_serve_their_own_heap_and_cpu_profile(app_dir):
    log = app_dir / "uvicorn.log"
    with open(log, "w") as stderr:
        server = subprocess.Popen(
            [str(BIN / "uvicorn"), "--uds", str(app_dir / "app.sock"), "--workers", "2",
             "--lifespan", "on", "asgi_app:app"],
            cwd=app_dir, stdout=subprocess.DEVNULL, stderr=stderr, text=True)
        try:
            urls = wait_for(lambda: (u := re.findall(r"pprof on http://([\d.]+):(\d+)/",
                                                     log.read_text())) and len(u) == 2 and u,
                            "two workers' listeners", server)
            assert len(set(urls)) == 2
            for host, port in urls:
                pull_heap_and_cpu(tcp(host, int(port)))
        finally:
            server.send_signal(signal.SIGINT)
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
    text = log.read_text()
    assert "Traceback" not in text, text
    assert text.count("pprof on") == 2


@pytest.mark.collector
def test_gunicorn_workers_push_to_the_collector_each_with_its_own_pid(app_dir):
    with running_collector(app_dir / "otelcol") as otelcol:
        server = gunicorn(app_dir, OTEL_EXPORTER_OTLP_ENDPOINT=f"http://{otelcol.grpc_endpoint}",
                          OTEL_SERVICE_NAME="gunicorn-test", DURAGRAPH_PPROF_PUSH_INTERVAL="1")
        try:
            workers = set(wait_for(lambda: (s := sockets(app_dir)) and len(s) == 2 and s,
                                   "two worker sockets", server))

            pushed = partial(otelcol.pushed_pids, "gunicorn-test")
            seen = otelcol.wait_for(lambda: workers <= pushed() and pushed(), timeout=30)
        finally:
            stop(server)
    assert seen == workers, (seen, workers)  # the master starts no profiler of its own
