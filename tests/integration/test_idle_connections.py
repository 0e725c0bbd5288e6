"""Idle and slow connections cannot lock the HTTP listener out: the front reads request heads
without a worker, caps the waiting connections on their own (dropping the one idle longest) and
frees a hung-up connection's place at once."""

from __future__ import annotations

import resource
import socket
import threading
import time

import pytest
from support.waiting import wait_for

import duragraph_pprof
from duragraph_pprof.server._conn import MAX_HEAD, request_size
from duragraph_pprof.server._front import MAX_WAITING, Front, Request

IDLE = 1000
TRICKLING = 60
STALLED = b"GET /debug/pprof/heap HTTP/1.1\r\nX: "  # a head that never ends
SLOW = b"GET /debug/pprof/cmdline HTTP/1.1\r\nHost: pprof\r\nX-Padding: " + b"p" * 100


@pytest.fixture
def descriptors():
    """Room for every client socket and its server side in this one process."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = 2 * (IDLE + TRICKLING) + 512
    if soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(need, hard), hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def timed_get(address) -> tuple[int, float]:
    began = time.monotonic()
    with socket.create_connection(address, timeout=5) as client:
        client.sendall(b"GET /debug/pprof/cmdline HTTP/1.1\r\nHost: pprof\r\n\r\n")
        answer = b""
        while chunk := client.recv(65536):
            answer += chunk
    return int(answer.split(b" ", 2)[1]), time.monotonic() - began


def listener_threads() -> int:
    return sum(t.name.startswith("duragraph-pprof-http") for t in threading.enumerate())


class Trickle:
    """Clients sending their request one byte a second, all from one thread."""

    def __init__(self, address, count: int) -> None:
        self.socks = [socket.create_connection(address, timeout=5) for _ in range(count)]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="trickle")

    def _run(self) -> None:
        sent = 0
        while not self._stop.wait(1.0):
            for sock in self.socks:
                try:
                    sock.send(SLOW[sent:sent + 1])
                except OSError:
                    pass
            sent = (sent + 1) % len(SLOW)

    def __enter__(self) -> Trickle:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        for sock in self.socks:
            sock.close()


def test_a_thousand_idle_and_sixty_trickling_connections_never_delay_a_request(descriptors):
    profiler = duragraph_pprof.start("serve", environ={}, http_addr="127.0.0.1:0")
    address = profiler.http_address[:2]
    bound = profiler.config.http_threads + 1  # the workers and the front's loop
    front = profiler.http._server.front
    idle: list[socket.socket] = []
    latencies: list[tuple[int, float]] = []
    most = 0
    try:
        for _ in range(IDLE):
            sock = socket.create_connection(address, timeout=5)
            sock.sendall(STALLED)
            idle.append(sock)
            if len(idle) % 100 == 0:  # served all along, not only once the crowd is in
                latencies.append(timed_get(address))
        with Trickle(address, TRICKLING):
            end = time.monotonic() + 8  # inside the read deadline: nobody has been cut off yet
            while time.monotonic() < end:
                latencies.append(timed_get(address))
                most = max(most, listener_threads())
                assert front.waiting() <= MAX_WAITING
                time.sleep(0.1)
            for sock in idle:
                sock.close()
        hung_up = time.monotonic()
        status, after = timed_get(address)
        freed = front.waiting()
        while front.waiting() and time.monotonic() - hung_up < 1:
            time.sleep(0.01)
        emptied = time.monotonic() - hung_up
    finally:
        for sock in idle:
            sock.close()
        profiler.stop()
    worst = max(t for _, t in latencies)
    print(f"\nidle: {IDLE} idle + {TRICKLING} trickling: {len(latencies)} requests, worst "
          f"{worst * 1000:.0f} ms; listener threads <= {most} (bound {bound}); after hang-up "
          f"{after * 1000:.0f} ms, {freed} still waiting, none after {emptied * 1000:.0f} ms")
    assert all(s == 200 for s, _ in latencies), latencies
    assert worst < 1.0, latencies
    assert most <= bound, (most, bound)
    assert status == 200 and after < 1.0, (status, after)
    assert emptied < 1.0


def test_at_the_cap_the_connection_idle_longest_is_dropped_first():
    server = socket.create_server(("127.0.0.1", 0))
    stopping = threading.Event()
    got: list[Request] = []
    front = Front(server, lambda r: got.append(r) or True, stopping, max_waiting=3)
    loop = threading.Thread(target=front.run, name="front")
    loop.start()
    clients = []
    try:
        for _ in range(3):
            clients.append(socket.create_connection(server.getsockname()))
            wait_for(lambda: front.waiting() == len(clients))
        clients[0].sendall(b"G")  # the first one in is active again: the second is oldest now
        time.sleep(0.1)
        clients.append(socket.create_connection(server.getsockname()))
        wait_for(lambda: front.waiting() == 3 and closed(clients[1]))
        assert not closed(clients[0]) and not closed(clients[2])
        clients[0].sendall(b"ET / HTTP/1.1\r\n\r\n")
        wait_for(lambda: len(got) == 1)
        assert got[0].data == b"GET / HTTP/1.1\r\n\r\n"
        clients[2].close()  # a hang-up frees its place at once
        wait_for(lambda: front.waiting() == 1)
    finally:
        stopping.set()
        loop.join()
        server.close()
        for sock in clients + [r.sock for r in got]:
            sock.close()


def closed(sock: socket.socket) -> bool:
    sock.settimeout(0.05)
    try:
        return sock.recv(1) == b""
    except TimeoutError:
        return False
    except OSError:
        return True


@pytest.mark.parametrize(("data", "size", "truncated"), [
    (b"GET / HTTP/1.1\r\nHost: x\r\n", None, False),  # head not over yet
    (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", 27, False),
    (b"GET / HTTP/1.1\n\nrest", 16, False),  # bare newlines end it too, as http.server reads
    (b"GET /\r\n", 7, False),  # HTTP/0.9 style: answered without headers
    (b"\r\n", 2, False),
    (b"POST /s HTTP/1.1\r\nContent-Length: 4\r\n\r\n0x", None, False),  # body still coming
    (b"POST /s HTTP/1.1\r\ncontent-length: 4\r\n\r\n0x12", 43, False),
    (b"POST /s HTTP/1.1\r\nContent-Length: 99999999999\r\n\r\n", 49, False),  # 413, no body read
    (b"POST /s HTTP/1.1\r\nContent-Length: \xb2\r\n\r\n", 39, False),
    (b"GET /" + b"x" * 70000, 70005, False),  # a request line over 64 KiB: 414 at once
    (b"GET / HTTP/1.1\r\n" + b"X: y\r\n" * 30000, None, True),  # a head past MAX_HEAD: 431
])
def test_request_size_ends_a_request_where_http_server_does(data, size, truncated):
    assert request_size(data) == (size, truncated)
    assert MAX_HEAD < len(b"X: y\r\n" * 30000)
