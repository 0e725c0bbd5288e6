"""Connection-level guards of the HTTP listener: a read deadline for slow clients, the cancel
signal of a long request whose client hung up, and the fixed answer when every worker is busy."""

from __future__ import annotations

import select
import socket
import threading
import time

READ_TIMEOUT = 10.0  # seconds a client may take to send its whole request


class ClientGone:
    """The cancel signal for a long request: the client hung up, or the server is stopping."""

    def __init__(self, connection: socket.socket, stopping: threading.Event) -> None:
        self._connection = connection
        self._stopping = stopping

    def is_set(self) -> bool:
        return self._stopping.is_set()

    def wait(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            if self._stopping.wait(0) or self._hung_up(min(left, 0.25)):
                return True
        return False

    def _hung_up(self, slice_: float) -> bool:
        try:
            readable, _, _ = select.select([self._connection], [], [], slice_)
            if readable and self._connection.recv(1, socket.MSG_PEEK) == b"":
                return True
            if readable:  # the client sent more bytes early; not a hang-up
                time.sleep(slice_)
        except (OSError, ValueError):
            return True
        return False


class ReadDeadlines:
    """One watchdog per server: a client that has not sent its whole request within
    READ_TIMEOUT (say, one byte a second) is disconnected, so it cannot pin a worker thread."""

    def __init__(self, stopping: threading.Event) -> None:
        self._stopping = stopping
        self._lock = threading.Lock()
        self._deadlines: dict[socket.socket, float] = {}
        self._thread = threading.Thread(target=self._run, name="duragraph-pprof-http-deadlines",
                                        daemon=True)

    def start(self) -> None:
        self._thread.start()

    def join(self) -> None:
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def watch(self, connection: socket.socket) -> None:
        with self._lock:
            self._deadlines[connection] = time.monotonic() + READ_TIMEOUT

    def release(self, connection: socket.socket) -> None:
        with self._lock:
            self._deadlines.pop(connection, None)

    def _run(self) -> None:
        while not self._stopping.wait(0.25):
            now = time.monotonic()
            with self._lock:
                late = [c for c, deadline in self._deadlines.items() if deadline < now]
                for connection in late:
                    del self._deadlines[connection]
            for connection in late:
                try:
                    connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


def answer_busy(request: socket.socket) -> None:
    body = b"pprof listener busy - retry later\n"
    try:
        request.settimeout(1)
        request.sendall(b"HTTP/1.0 503 Service Unavailable\r\nContent-Type: text/plain; "
                        b"charset=utf-8\r\nX-Go-Pprof: 1\r\nRetry-After: 1\r\nContent-Length: "
                        + str(len(body)).encode() + b"\r\n\r\n" + body)
    except OSError:
        pass
