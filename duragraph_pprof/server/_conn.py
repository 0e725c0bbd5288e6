"""Connection-level pieces of the HTTP listener: where a request ends in the bytes read so far,
the cancel signal of a long request whose client hung up, and the fixed answer when every worker
is busy."""

from __future__ import annotations

import select
import socket
import threading
import time

READ_TIMEOUT = 10.0  # seconds a client may take to send its whole request
MAX_HEAD = 128 * 1024  # a head this long and unfinished gets 431 (http.server's limits are lower)
MAX_BODY = 1 << 20
_MAX_LINE = 65536  # http.server's limit on one line; a longer request line is answered at once


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


def request_size(data: bytes | bytearray) -> tuple[int | None, bool]:
    """(bytes the request takes, or None while it is still coming in; whether its
    head passed MAX_HEAD unfinished). The head ends where `http.server` stops reading it: after
    the request line when that has fewer than three words or is over 64 KiB (it answers without
    headers), else at the first empty line. The body is as long as a valid Content-Length says."""
    first = data.find(b"\n")
    if first < 0:
        return (len(data), False) if len(data) > _MAX_LINE else (None, len(data) > MAX_HEAD)
    if first + 1 > _MAX_LINE or len(str(data[:first], "iso-8859-1").split()) < 3:
        return first + 1, False
    ends = [i for i in (data.find(b"\n\n", first), data.find(b"\n\r\n", first)) if i >= 0]
    if not ends:
        return None, len(data) > MAX_HEAD
    end = min(ends)
    head = end + (2 if data[end + 1:end + 2] == b"\n" else 3)
    if head > MAX_HEAD:
        return None, True
    size = head + _content_length(bytes(data[first + 1:head]))
    return (size if len(data) >= size else None), False


def _content_length(headers: bytes) -> int:
    """The body length the handler will read: the first Content-Length, when it is valid."""
    for line in headers.split(b"\n"):
        name, colon, value = line.partition(b":")
        if colon and name.strip().lower() == b"content-length":
            value = value.strip()
            if value.isdigit() and len(value) <= 8 and int(value) <= MAX_BODY:
                return int(value)
            return 0  # the handler answers 413 without reading a body
    return 0


def answer_busy(request: socket.socket) -> None:
    """One non-blocking send: it is small enough for any socket buffer, and the listener's loop
    must never wait on a client."""
    body = b"pprof listener busy - retry later\n"
    try:
        request.setblocking(False)
        request.send(b"HTTP/1.0 503 Service Unavailable\r\nContent-Type: text/plain; "
                        b"charset=utf-8\r\nX-Go-Pprof: 1\r\nRetry-After: 1\r\nContent-Length: "
                        + str(len(body)).encode() + b"\r\n\r\n" + body)
    except OSError:
        pass
