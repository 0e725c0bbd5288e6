"""Access control beyond the bind guard: the token on HTTP and gRPC, the Unix-socket listener,
and the warning a public bind prints."""

from __future__ import annotations

import hmac
import os
import socket
import stat
import sys
import tempfile

import grpc
import pytest
from support.listener import fetch, started

import duragraph_pprof
from duragraph_pprof import guard as guard_module
from duragraph_pprof._gen.duragraph.pprof.v1 import profiler_pb2 as pb
from duragraph_pprof._gen.duragraph.pprof.v1 import profiler_pb2_grpc as pb_grpc
from duragraph_pprof.errors import ConfigError

P = "/debug/pprof/"
TOKEN = "T0k3n-with.symbols~"
# every surface the listener serves: a 401 must come before any of them runs
PATHS = ["/debug/pprof", P, P + "cmdline", P + "heap", P + "goroutine?debug=2", P + "symbol",
         P + "profile?seconds=1", P + "trace?seconds=1", P + "nope", "/elsewhere"]


# -- the token ------------------------------------------------------------------------------------
WRONG = [None, "", "Bearer", "Bearer ", "Bearer wrong", f"Bearer {TOKEN}x", f"Bearer {TOKEN[:-1]}",
         f"Basic {TOKEN}", TOKEN, f"Bearer{TOKEN}", f"Token {TOKEN}", "Bearer " + "x" * 5000,
         f"Bearer {TOKEN.upper()}", "Bearer \u00e9"]


def test_http_token_is_required_on_every_path_and_checked_in_constant_time(monkeypatch):
    compared = []
    real = hmac.compare_digest

    def spy(a, b):
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(guard_module.hmac, "compare_digest", spy)
    with started({"DURAGRAPH_PPROF_TOKEN": TOKEN}, http_addr="127.0.0.1:0", heap=True) as prof:
        for path in PATHS:
            for offered in WRONG:
                headers = {} if offered is None else {"Authorization": offered}
                status, head, body = fetch(prof, path, headers)
                assert status == 401, (path, offered, status)
                assert head["www-authenticate"].startswith("Bearer"), head
                assert body == (b"missing or wrong token - send Authorization: Bearer "
                                b"$DURAGRAPH_PPROF_TOKEN\n")
                assert TOKEN.encode() not in body
            for method in ("HEAD", "POST"):
                assert fetch(prof, path, method=method)[0] == 401
        compared.clear()
        for scheme in ("Bearer", "bearer", "BEARER"):
            status, _, body = fetch(prof, P + "cmdline", {"Authorization": f"{scheme} {TOKEN}"})
            assert (status, body) == (200, "\x00".join(sys.argv).encode())
        assert compared and all(b == TOKEN.encode() for _, b in compared), compared
        good = {"Authorization": f"Bearer {TOKEN}"}
        assert fetch(prof, P + "heap", good)[0] == 200
        assert fetch(prof, P + "symbol", good, "POST", b"0x1")[0] == 200
        assert fetch(prof, P, good)[2].startswith(b"<html>")
        assert fetch(prof, P + "nope", good)[0] == 404  # past the token, routing as usual


def test_one_token_guards_both_listeners_and_grpc_compares_in_constant_time(monkeypatch):
    """The environment variable reaches gRPC too; test_grpc.py pins its metadata cases."""
    compared = []
    real = hmac.compare_digest
    monkeypatch.setattr(guard_module.hmac, "compare_digest",
                        lambda a, b: compared.append(b) or real(a, b))
    with started({"DURAGRAPH_PPROF_TOKEN": TOKEN}, http_addr="127.0.0.1:0",
                 grpc_addr="127.0.0.1:0") as prof:
        channel = grpc.insecure_channel(f"127.0.0.1:{prof.grpc_address[1]}")
        try:
            stub = pb_grpc.ProfilerServiceStub(channel)
            request = pb.GetProfileRequest(name="cmdline")
            with pytest.raises(grpc.RpcError) as denied:
                list(stub.GetProfile(request, metadata=(("authorization", "Bearer no"),),
                                     timeout=10))
            assert denied.value.code() == grpc.StatusCode.UNAUTHENTICATED
            assert TOKEN not in (denied.value.details() or "")
            answer = list(stub.GetProfile(
                request, metadata=(("authorization", f"Bearer {TOKEN}"),), timeout=10))
            assert b"".join(m.data for m in answer) == "\x00".join(sys.argv).encode()
        finally:
            channel.close()
        assert fetch(prof, P + "cmdline")[0] == 401
    assert TOKEN.encode() in compared


# -- the Unix socket ----------------------------------------------------------------------------
@pytest.fixture
def sock_dir():
    # a short directory: a Unix socket path is limited to 107 bytes
    with tempfile.TemporaryDirectory(prefix="dgp-") as directory:
        yield directory


def unix_get(path: str, target: str, headers: str = "") -> tuple[int, bytes]:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
        client.settimeout(30)
        client.connect(path)
        client.sendall(f"GET {target} HTTP/1.1\r\nHost: pprof\r\n{headers}\r\n".encode())
        answer = b"".join(iter(lambda: client.recv(65536), b""))
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


def test_unix_socket_is_0600_serves_and_is_removed_on_stop(sock_dir):
    path = os.path.join(sock_dir, "pprof.sock")
    old = os.umask(0)  # the most permissive umask: the mode must still be 0600
    try:
        profiler = duragraph_pprof.start("serve", environ={"DURAGRAPH_PPROF_ADDR": f"unix:{path}",
                                                           "DURAGRAPH_PPROF_TOKEN": TOKEN})
    finally:
        os.umask(old)
    try:
        mode = os.stat(path).st_mode
        assert stat.S_ISSOCK(mode) and stat.S_IMODE(mode) == 0o600, oct(mode)
        assert profiler.http_address == path and profiler.http.url == f"unix:{path}"
        assert unix_get(path, P + "cmdline")[0] == 401  # the token applies on the socket too
        status, body = unix_get(path, P + "cmdline", f"Authorization: Bearer {TOKEN}\r\n")
        assert (status, body) == (200, "\x00".join(sys.argv).encode())
        status, body = unix_get(path, P + "goroutine?debug=1", f"Authorization: Bearer {TOKEN}\r\n")
        assert status == 200 and body.startswith(b"goroutine profile: total ")
    finally:
        profiler.stop()
    assert not os.path.exists(path)


def test_a_stale_socket_file_is_replaced(sock_dir):
    path = os.path.join(sock_dir, "pprof.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as dead:
        dead.bind(path)  # a previous run that died without unlinking: the file stays
    assert stat.S_ISSOCK(os.stat(path).st_mode)
    with started({}, http_addr=f"unix:{path}"):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        assert unix_get(path, P + "cmdline")[0] == 200
    assert not os.path.exists(path)


def test_a_live_socket_or_a_plain_file_is_never_taken_over(sock_dir):
    path = os.path.join(sock_dir, "pprof.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as live:
        live.bind(path)
        live.listen(1)
        with pytest.raises(ConfigError) as refused:
            duragraph_pprof.start("serve", environ={}, http_addr=f"unix:{path}")
        assert "DURAGRAPH_PPROF_ADDR" in str(refused.value)
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
            client.connect(path)  # still the other listener's clients
            assert live.accept()[0].close() is None
    os.unlink(path)
    with open(path, "w") as plain:
        plain.write("keep me")
    with pytest.raises(ConfigError):
        duragraph_pprof.start("serve", environ={}, http_addr=f"unix:{path}")
    with open(path) as plain:
        assert plain.read() == "keep me"


# -- a public bind ------------------------------------------------------------------------------
def test_public_bind_warns_on_stderr_and_says_when_no_token_is_set(capfd):
    public = {"DURAGRAPH_PPROF_ALLOW_PUBLIC": "true"}
    with started(public, http_addr="0.0.0.0:0", grpc_addr="0.0.0.0:0") as prof:
        assert prof.http_address[0] == "0.0.0.0"
        assert fetch(prof, P + "cmdline")[0] == 200  # reached over loopback
    err = capfd.readouterr().err
    for variable in ("DURAGRAPH_PPROF_ADDR=0.0.0.0:0", "DURAGRAPH_PPROF_GRPC_ADDR=0.0.0.0:0"):
        line = next(x for x in err.splitlines() if variable in x)
        assert line.startswith("duragraph-pprof: WARNING: "), line
        assert "beyond loopback" in line and "DURAGRAPH_PPROF_ALLOW_PUBLIC=true" in line
        assert "No DURAGRAPH_PPROF_TOKEN is set: it is unauthenticated." in line
    with started({**public, "DURAGRAPH_PPROF_TOKEN": TOKEN}, http_addr="0.0.0.0:0"):
        pass
    err = capfd.readouterr().err
    assert "WARNING" in err and "beyond loopback" in err
    assert "No DURAGRAPH_PPROF_TOKEN" not in err and TOKEN not in err
    with started({}, http_addr="127.0.0.1:0"):
        pass
    assert "WARNING" not in capfd.readouterr().err  # loopback: silent


def test_grpc_unix_socket_is_owner_only_and_never_taken_over(sock_dir):
    path = os.path.join(sock_dir, "grpc.sock")
    old = os.umask(0)  # even a permissive umask gives 0600
    try:
        with started({}, grpc_addr=f"unix:{path}"):
            assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
            with pytest.raises(duragraph_pprof.ConfigError, match="served by another process"):
                duragraph_pprof.start("serve", environ={}, grpc_addr=f"unix:{path}")
    finally:
        os.umask(old)
