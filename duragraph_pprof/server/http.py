"""The HTTP pprof listener: a thin adapter that parses the request, asks `render`, and writes
Go's headers and bytes. It runs on its own bounded pool of threads, so a flood of clients or a
slow one never blocks the application, and it never answers with a traceback.
"""

from __future__ import annotations

import io
import logging
import os
import queue
import socket
import threading
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, unquote, urlsplit

from .. import ui
from ..encode.index import index_page
from ..errors import RequestError
from ..guard import BindTarget, bearer_token_ok
from ..kinds import REGISTRY
from ..render import TEXT, ProfileRequest, Rendered, render
from ._conn import MAX_BODY, READ_TIMEOUT, ClientGone
from ._front import Front, Request
from ._unix import clear_stale, restrict

if TYPE_CHECKING:
    from ..core.profiling_core import ProfilingCore

log = logging.getLogger("duragraph_pprof.http")
PREFIX = "/debug/pprof/"
_STATUS = {"not_found": 404, "invalid": 400, "unsupported": 400, "busy": 429,
           "precondition": 500, "cancelled": 500, "timeout": 408, "internal": 500,
           "unauthenticated": 401}


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "duragraph-pprof"
    sys_version = ""
    timeout = READ_TIMEOUT
    error_content_type = TEXT
    error_message_format = "%(code)d %(message)s\n"

    def do_GET(self) -> None:
        self._serve(b"")

    def do_HEAD(self) -> None:
        self._serve(b"", head=True)

    def do_POST(self) -> None:
        length = self.headers.get("Content-Length", "0")
        # ASCII digits only: "²".isdigit() is true and int() of 5000 digits raises
        if not (length.isascii() and length.isdigit()) or len(length) > 8 or int(length) > MAX_BODY:
            return self._error(413, f"request body over {MAX_BODY} bytes or bad Content-Length")
        self._serve(self.rfile.read(int(length)))

    def __getattr__(self, name: str):
        if name.startswith("do_"):  # every other method: 405, as Go's mux answers
            return self._not_allowed
        raise AttributeError(name)

    def _not_allowed(self) -> None:
        self._error(405, "Method Not Allowed", {"Allow": "GET, HEAD, POST"})

    def parse_request(self) -> bool:
        if not super().parse_request():
            return False
        if self.request_version == "HTTP/0.9":  # as Go: no version, no request
            self.send_error(400, "Bad request syntax - HTTP/1.0 or later needed")
            return False
        if self._truncated:  # its head never ended within MAX_HEAD
            self.send_error(431, "Request header fields too large")
            return False
        return True

    def setup(self) -> None:
        # the front read the whole request already: parse it from memory, answer on the socket
        request: Request = self.request
        self.connection = request.sock
        self.connection.settimeout(self.timeout)
        self.rfile = io.BytesIO(request.data)
        self.wfile = _Writer(self.connection)
        self._truncated = request.truncated

    def handle(self) -> None:
        self.close_connection = True
        self.handle_one_request()  # one request per connection, as http.server 1.0 serves

    def finish(self) -> None:
        try:
            self.wfile.flush()
        except OSError:
            pass

    def _serve(self, body: bytes, head: bool = False) -> None:
        try:
            self._route(body, head)
        except RequestError as exc:
            self._error(_STATUS.get(exc.kind, 500), exc.message, head=head)
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            self.close_connection = True
        except Exception:  # never a traceback in a body; the log has it
            log.exception("pprof request %s failed", self.path[:200])
            self._error(500, "internal error - the application log has the details", head=head)

    def _route(self, body: bytes, head: bool) -> None:
        url = urlsplit(self.path)
        path = unquote(url.path)  # Go routes on the unescaped path: %68eap is heap
        if path == ui.UI_PATH or path.startswith(ui.UI_PATH + "/"):  # the page checks its own token
            return self._reply(ui.route(self.server.core, path, url.query, self._authorized(),
                                        ClientGone(self.connection, self.server.stopping)), head)
        if not self._authorized():
            raise RequestError("unauthenticated", "missing or wrong token - send "
                               "Authorization: Bearer $DURAGRAPH_PPROF_TOKEN")
        if path == PREFIX.rstrip("/"):
            return self._redirect(PREFIX)
        if not path.startswith(PREFIX):
            return self._error(404, "404 page not found", head=head)
        name = path[len(PREFIX):]
        if name == "":
            return self._send(Rendered(HTML, None, self._index().encode()), head)
        kind = REGISTRY.get(name)
        if kind is not None and kind.lookup is not None:  # symbol: its query may come as a body
            query = body if self.command == "POST" else url.query.encode("latin-1")
            return self._send(kind.lookup(self.server.core, query), head)
        first = _first_values(url.query)
        request = ProfileRequest(name, first.get("seconds"), first.get("debug"), first.get("gc"))
        gone = ClientGone(self.connection, self.server.stopping)
        self._send(render(self.server.core, request, gone), head)

    def _index(self) -> str:
        core = self.server.core
        sampler, heap = core.sampler, core.heap
        heap_note = {"sampled": f"sampled, one allocation per {heap.rate} bytes on average",
                     "exact": "exact (tracemalloc)"}.get(heap.mode, "off")
        return index_page([(k.name, k.count(core), k.description) for k in REGISTRY.entries()],
                          (f"Stack sampler: {sampler.describe()}, {sampler.hz} Hz nominal",
                           f"Heap profile: {heap_note}"))

    def _authorized(self) -> bool:
        token = self.server.core.config.token
        if not token:
            return True
        return bearer_token_ok(self.headers.get("Authorization", ""), token)

    def _send(self, rendered: Rendered, head: bool) -> None:
        self.send_response(200)
        self.send_header("Content-Type", rendered.content_type)
        if rendered.filename:
            self.send_header("Content-Disposition", f'attachment; filename="{rendered.filename}"')
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Content-Length", str(len(rendered.body)))
        self.end_headers()
        if not head:
            self.wfile.write(rendered.body)

    def _reply(self, reply: ui.Reply, head: bool) -> None:
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("X-Content-Type-Options", "nosniff")
        for key, value in reply.headers:
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        if not head:
            self.wfile.write(reply.body)

    def _redirect(self, location: str) -> None:
        self.send_response(301)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _error(self, status: int, message: str, extra: dict | None = None,
               head: bool = False) -> None:
        body = (message + "\n").encode("utf-8", "replace")
        self.send_response(status)
        self.send_header("Content-Type", TEXT)
        self.send_header("X-Go-Pprof", "1")
        self.send_header("X-Content-Type-Options", "nosniff")
        if status == 429:
            self.send_header("Retry-After", "1")
        if status == 401:
            self.send_header("WWW-Authenticate", 'Bearer realm="pprof"')
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None):
        # the stdlib's own errors (bad request line, header flood, 414): plain text, no HTML
        self.close_connection = True
        self.request_version = "HTTP/1.0"  # else a request line that did not parse gets no status
        self._error(code, message or self.responses.get(code, ("error",))[0])

    def address_string(self) -> str:
        return str(self.client_address[0]) if self.client_address else "unix"

    def log_message(self, format: str, *args) -> None:
        log.debug(format, *args)


HTML = "text/html; charset=utf-8"
MAX_FIELDS = 64


def _first_values(query: str) -> dict[str, str]:
    """Each query parameter's first value, as Go's FormValue reads it."""
    try:
        form = parse_qs(query, keep_blank_values=True, max_num_fields=MAX_FIELDS)
    except ValueError:  # past max_num_fields: a client error, not a 500
        raise RequestError("invalid", f"too many query parameters (limit {MAX_FIELDS})") from None
    return {key: values[0] for key, values in form.items()}


class _Writer(io.RawIOBase):
    """The response stream: every write goes out whole (or raises), under the socket timeout."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self._sock.sendall(data)
        return len(data)


class _Server:
    """The listening socket, the front that reads requests and the bounded pool that serves
    them; a complete request that finds no free worker within BUSY_WAIT gets 503."""

    def __init__(self, target: BindTarget, core: ProfilingCore, threads: int) -> None:
        self.core = core
        self.stopping = threading.Event()
        self._slots = threading.BoundedSemaphore(threads)
        # a fixed set of workers, all started now: the goroutine count does not move because
        # somebody fetched it, and the bound is plain to see
        self._work_queue: queue.SimpleQueue = queue.SimpleQueue()
        self._workers = [threading.Thread(target=self._worker, name=f"duragraph-pprof-http_{n}",
                                          daemon=True) for n in range(threads)]
        self.socket = socket.socket(target.family, socket.SOCK_STREAM)
        self.target = target
        try:
            self._bind()
        except BaseException:
            self.socket.close()
            raise
        self.front = Front(self.socket, self._submit, self.stopping)

    def _bind(self) -> None:
        if self.target.path:
            clear_stale(self.target.path)
            self.socket.bind(self.target.path)
            restrict(self.target.path)  # before listen(): nobody can connect yet
        else:
            self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.socket.bind((self.target.host, self.target.port))
        self.socket.listen(1024)  # the front accepts at once; a burst waits here meanwhile
        self.server_address = self.socket.getsockname()

    def _submit(self, request: Request) -> bool:
        if not self._slots.acquire(blocking=False):
            return False
        self._work_queue.put(request)
        return True

    def start_workers(self) -> None:
        for worker in self._workers:
            worker.start()

    def _worker(self) -> None:
        while (request := self._work_queue.get()) is not None:
            self._work(request)

    def _work(self, request: Request) -> None:
        try:
            _Handler(request, request.address, self)
        except Exception:
            log.debug("pprof connection failed", exc_info=True)
        finally:
            _shutdown(request.sock)
            self._slots.release()

    def server_close(self) -> None:
        self.stopping.set()
        self.socket.close()
        for _ in self._workers:
            self._work_queue.put(None)
        for worker in self._workers:
            if worker.is_alive():
                worker.join(timeout=5)
        if self.target.path and os.path.exists(self.target.path):
            os.unlink(self.target.path)


def _shutdown(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_WR)
    except OSError:
        pass
    sock.close()


class HttpListener:
    """The running HTTP listener; `address` is what it really bound (port 0 works)."""

    def __init__(self, core: ProfilingCore, target: BindTarget) -> None:
        self._server = _Server(target, core, core.config.http_threads)
        self.address = self._server.server_address
        self._thread = threading.Thread(target=self._server.front.run,
                                        name="duragraph-pprof-http-listener", daemon=True)
        self._server.start_workers()
        self._thread.start()
        self._stopped = False

    @property
    def url(self) -> str:
        if isinstance(self.address, str):
            return f"unix:{self.address}"
        host, port = self.address[:2]
        return f"http://{'[' + host + ']' if ':' in host else host}:{port}{PREFIX}"

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self._server.stopping.set()
        self._thread.join(timeout=5)  # the front closes what it holds, then the socket goes
        self._server.server_close()

    def forget_in_child(self) -> None:
        """After fork: the child has none of our threads; drop its copy of the listening
        socket (close, not shutdown, which would stop the parent's too) so a port is never
        served, or held open, by two processes."""
        self._stopped = True
        self._server.front.forget_in_child()
        self._server.socket.close()
