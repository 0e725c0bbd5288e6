"""The HTTP listener's front: one selector loop in the listener's own thread accepts connections
and reads each request (head and body) under the read deadline, so an idle or slow client costs a
socket and a few bytes, never a worker thread. Only a complete request goes to the worker pool.

Waiting connections are capped on their own; at the cap the one idle longest is dropped to make
room. A client that hangs up frees its place at once.
"""

from __future__ import annotations

import logging
import selectors
import socket
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import NamedTuple

from ._conn import READ_TIMEOUT, answer_busy, request_size

log = logging.getLogger("duragraph_pprof.http")
MAX_WAITING = 1000  # connections still sending their request
BUSY_WAIT = 0.05  # seconds the first complete request in line waits for a worker, then 503
_RECV = 65536
_ACCEPTS_PER_WAKE = 256  # then serve reads: a connect flood cannot starve the others
_TICK = 0.1  # deadlines are checked at least this often


class Request(NamedTuple):
    """A complete request, as a worker gets it: the socket (blocking again) and every byte read."""

    sock: socket.socket
    address: object
    data: bytes
    truncated: bool  # the head passed MAX_HEAD before it ended


class _Waiting:
    __slots__ = ("address", "data", "deadline")

    def __init__(self, address: object, deadline: float) -> None:
        self.address = address
        self.data = bytearray()
        self.deadline = deadline


class Front:
    """`submit(request)` hands a request to a worker and says whether one was free."""

    def __init__(self, listening: socket.socket, submit: Callable[[Request], bool],
                 stopping: threading.Event, max_waiting: int = MAX_WAITING) -> None:
        self._listening = listening
        self._submit = submit
        self._stopping = stopping
        self._max_waiting = max_waiting
        self._selector = selectors.DefaultSelector()
        # least recently active first: the one to drop when full
        self._waiting: OrderedDict[socket.socket, _Waiting] = OrderedDict()
        self._ready: deque[Request] = deque()  # complete, no worker free yet
        self._head_since = 0.0  # when the first in `_ready` took its place there
        self._next_expiry = 0.0

    def waiting(self) -> int:
        return len(self._waiting)

    def run(self) -> None:
        self._listening.setblocking(False)
        self._selector.register(self._listening, selectors.EVENT_READ)
        try:
            while not self._stopping.is_set():
                timeout = 0.01 if self._ready else _TICK
                for key, _ in self._selector.select(timeout):
                    if key.fileobj is self._listening:
                        self._accept()
                    else:
                        self._read(key.fileobj)  # type: ignore[arg-type]
                self._dispatch()
                self._expire()
        except Exception:  # logged; the listener stops, the application goes on
            log.exception("duragraph-pprof: HTTP listener loop failed")
        finally:
            self._close_all()

    def forget_in_child(self) -> None:
        """After fork: drop the child's copies without touching the parent's registrations."""
        self._selector.close()
        for sock in [*self._waiting, *(r.sock for r in self._ready)]:
            sock.close()  # close, never shutdown: that would cut the parent's connection too
        self._waiting.clear()
        self._ready.clear()

    def _accept(self) -> None:
        for _ in range(_ACCEPTS_PER_WAKE):
            try:
                sock, address = self._listening.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # e.g. out of descriptors: leave the rest in the backlog for now
                log.debug("pprof accept failed", exc_info=True)
                return
            if len(self._waiting) >= self._max_waiting:
                oldest, _ = self._waiting.popitem(last=False)
                self._drop(oldest)
            sock.setblocking(False)
            self._waiting[sock] = _Waiting(address, time.monotonic() + READ_TIMEOUT)
            self._selector.register(sock, selectors.EVENT_READ)

    def _read(self, sock: socket.socket) -> None:
        waiting = self._waiting.get(sock)
        if waiting is None:
            return
        try:
            chunk = sock.recv(_RECV)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            chunk = b""
        if not chunk:  # hung up: its place is free now
            del self._waiting[sock]
            self._drop(sock)
            return
        waiting.data += chunk
        self._waiting.move_to_end(sock)
        size, truncated = request_size(waiting.data)
        if size is not None or truncated:
            del self._waiting[sock]
            self._selector.unregister(sock)
            sock.setblocking(True)
            request = Request(sock, waiting.address, bytes(waiting.data), truncated)
            if self._ready or not self._submit(request):
                self._queue(request)

    def _queue(self, request: Request) -> None:
        if len(self._ready) >= self._max_waiting:  # a flood of complete requests: shed at once
            _refuse(request.sock)
            return
        if not self._ready:
            self._head_since = time.monotonic()
        self._ready.append(request)

    def _dispatch(self) -> None:
        """Complete requests in arrival order. The first in line waits up to BUSY_WAIT for a
        worker, then gets 503 and the next one's wait begins: past the worker bound the listener
        sheds one request per BUSY_WAIT, and a burst is served in full."""
        while self._ready:
            now = time.monotonic()
            if not self._submit(self._ready[0]):
                if now - self._head_since < BUSY_WAIT:
                    return
                _refuse(self._ready[0].sock)
            self._ready.popleft()
            self._head_since = now

    def _expire(self) -> None:
        now = time.monotonic()
        if now < self._next_expiry:
            return
        self._next_expiry = now + _TICK
        late = [sock for sock, waiting in self._waiting.items() if waiting.deadline < now]
        for sock in late:  # READ_TIMEOUT passed without a whole request: cut off, no answer
            del self._waiting[sock]
            self._drop(sock)

    def _drop(self, sock: socket.socket) -> None:
        try:
            self._selector.unregister(sock)
        except (KeyError, ValueError):
            pass
        _close(sock)

    def _close_all(self) -> None:
        for sock in list(self._waiting):
            self._drop(sock)
        self._waiting.clear()
        for request in self._ready:
            _close(request.sock)
        self._ready.clear()
        self._selector.close()


def _refuse(sock: socket.socket) -> None:
    answer_busy(sock)
    _close(sock)


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()
