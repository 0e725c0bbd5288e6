"""The gRPC listener: a thin ProfilerService over the profiling core and the shared render layer.

GetProfile streams exactly the bytes the HTTP endpoint serves, because both call `render()`.
The listener binds only what the bind guard returned, and adds standard health checking and
server reflection so that generic clients (grpcurl, grpc-health-probe) work without our protos.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from .._gen.duragraph.pprof.v1 import profiler_pb2 as pb
from .._gen.duragraph.pprof.v1 import profiler_pb2_grpc as pb_grpc
from ..config import Config
from ..core.snapshot import ASYNCIO_TASK, THREAD, Goroutine
from ..errors import RequestError
from ..guard import BindTarget, bearer_token_ok
from ..kinds import REGISTRY
from ..render import ProfileRequest, Rendered, render
from ._unix import clear_stale, restrict

if TYPE_CHECKING:
    from ..core.profiling_core import ProfilingCore

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["ProfilerService"].full_name
CHUNK_SIZE = 1 << 20  # 1 MiB: well under every client's default 4 MiB receive limit
MIN_WATCH_INTERVAL = 0.01
MAX_WATCH_INTERVAL = 3600.0
DEFAULT_WATCH_INTERVAL = 1.0
SHORT_CALL_WORKERS = 4  # room for list/stacks/health calls while every long slot is taken
GRACE_SECONDS = 1.0

_STATUS = {
    "not_found": grpc.StatusCode.NOT_FOUND,
    "invalid": grpc.StatusCode.INVALID_ARGUMENT,
    "unsupported": grpc.StatusCode.UNIMPLEMENTED,
    "busy": grpc.StatusCode.RESOURCE_EXHAUSTED,
    "precondition": grpc.StatusCode.FAILED_PRECONDITION,
    "cancelled": grpc.StatusCode.CANCELLED,
    "timeout": grpc.StatusCode.DEADLINE_EXCEEDED,
    "internal": grpc.StatusCode.INTERNAL,
}
_KIND_TO_PB = {THREAD: pb.GOROUTINE_KIND_THREAD, ASYNCIO_TASK: pb.GOROUTINE_KIND_ASYNCIO_TASK}


class ProfilerServicer(pb_grpc.ProfilerServiceServicer):
    """Unpacks a request, asks the core or `render()`, packs the answer. No logic of its own."""

    def __init__(self, core: ProfilingCore, max_watches: int) -> None:
        self._core = core
        # Watches are long-lived and hold a worker each; cap them apart from profile pulls,
        # whose cap render() enforces across HTTP and gRPC.
        self._watch_slots = threading.BoundedSemaphore(max_watches)
        self._max_watches = max_watches

    def ListProfiles(self, request, context):
        infos = [
            pb.ProfileInfo(name=k.name, description=k.description, count=k.count(self._core),
                           delta=k.delta)
            for k in REGISTRY.entries()
        ]
        return pb.ListProfilesResponse(profiles=infos)

    def GetProfile(self, request, context) -> Iterator[pb.GetProfileResponse]:
        if not request.name:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "name is required")
        cancel = cancel_event(context)
        try:
            rendered = render(self._core, _profile_request(request), cancel)
        except RequestError as exc:
            if cancel.is_set():
                return  # the client is gone; nobody reads a status
            context.abort(_STATUS.get(exc.kind, grpc.StatusCode.INTERNAL), exc.message)
        for message in chunks(rendered):
            if cancel.is_set():
                return
            yield message

    def WatchGoroutines(self, request, context) -> Iterator[pb.WatchGoroutinesResponse]:
        interval = _watch_interval(request, context)
        if not self._watch_slots.acquire(blocking=False):
            context.abort(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"too many goroutine watches (at most {self._max_watches}); try again later",
            )
        try:
            yield from self._watch(interval, request.max_updates, cancel_event(context))
        finally:
            self._watch_slots.release()

    def _watch(self, interval: float, limit: int, cancel: threading.Event):
        sent = 0
        while not cancel.is_set():
            threads, tasks = self._core.goroutine_counts()
            yield pb.WatchGoroutinesResponse(
                time=_timestamp(time.time_ns()),
                threads=threads,
                asyncio_tasks=tasks,
                total=threads + tasks,
            )
            sent += 1
            if (limit and sent >= limit) or cancel.wait(interval):
                return

    def GetGoroutines(self, request, context):
        snapshot = self._core.goroutines()
        wanted = request.kind
        goroutines = [
            goroutine_message(g)
            for g in snapshot.goroutines
            if wanted == pb.GOROUTINE_KIND_UNSPECIFIED or _KIND_TO_PB.get(g.kind) == wanted
        ]
        return pb.GetGoroutinesResponse(time=_timestamp(snapshot.time_nanos), goroutines=goroutines)


def cancel_event(context: grpc.ServicerContext) -> threading.Event:
    """An Event set the moment the call ends: client cancel, deadline, or server stop."""
    event = threading.Event()
    if not context.add_callback(event.set):
        event.set()  # the call already ended
    return event


def chunks(rendered: Rendered) -> Iterator[pb.GetProfileResponse]:
    """The body in CHUNK_SIZE pieces; the first carries the headers, even for an empty body."""
    body = memoryview(rendered.body)
    yield pb.GetProfileResponse(
        data=bytes(body[:CHUNK_SIZE]),
        content_type=rendered.content_type,
        filename=rendered.filename or "",
    )
    for start in range(CHUNK_SIZE, len(body), CHUNK_SIZE):
        yield pb.GetProfileResponse(data=bytes(body[start : start + CHUNK_SIZE]))


def goroutine_message(g: Goroutine) -> pb.Goroutine:
    return pb.Goroutine(
        id=g.id,
        kind=_KIND_TO_PB.get(g.kind, pb.GOROUTINE_KIND_UNSPECIFIED),
        name=g.name,
        status=g.status,
        frames=[
            pb.Frame(function=f.function, filename=f.filename, line=f.line, start_line=f.start_line)
            for f in g.stack
        ],
        thread_id=g.thread_id,
        awaiting=g.awaiting,
        created_by=g.created_by,
    )


def _profile_request(request: pb.GetProfileRequest) -> ProfileRequest:
    # render() takes the HTTP query values as text, so it validates both surfaces the same way.
    return ProfileRequest(
        name=request.name,
        seconds=str(request.seconds) if request.HasField("seconds") else None,
        debug=str(request.debug) if request.HasField("debug") else None,
        gc="1" if request.gc else None,
    )


def _watch_interval(request: pb.WatchGoroutinesRequest, context) -> float:
    if not request.HasField("interval"):
        return DEFAULT_WATCH_INTERVAL
    seconds = request.interval.seconds + request.interval.nanos / 1e9
    if not MIN_WATCH_INTERVAL <= seconds <= MAX_WATCH_INTERVAL:
        context.abort(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"interval must be from {MIN_WATCH_INTERVAL * 1000:g}ms "
            f"to {MAX_WATCH_INTERVAL:g}s, got {seconds:g}s",
        )
    return seconds


def _timestamp(nanos: int) -> Timestamp:
    stamp = Timestamp()
    stamp.FromNanoseconds(nanos)
    return stamp


class _TokenCheck(grpc.ServerInterceptor):
    """Requires `authorization: Bearer <token>` on ProfilerService calls.

    Health and reflection stay open: they reveal nothing about the process, and orchestrators'
    health probes carry no token.
    """

    def __init__(self, token: str) -> None:
        self._token = token
        self._deny = grpc.unary_unary_rpc_method_handler(_unauthenticated)

    def intercept_service(self, continuation, handler_call_details):
        if not handler_call_details.method.startswith(f"/{SERVICE_NAME}/"):
            return continuation(handler_call_details)
        if self._allowed(handler_call_details.invocation_metadata or ()):
            return continuation(handler_call_details)
        return self._deny

    def _allowed(self, metadata) -> bool:
        for key, value in metadata:
            if key == "authorization" and isinstance(value, str):
                return bearer_token_ok(value, self._token)
        return False


def _unauthenticated(request, context):
    context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or wrong authorization: Bearer token")


class GrpcListener:
    """A running gRPC server; `address` is what was really bound (port 0 resolved)."""

    def __init__(
        self,
        server: grpc.Server,
        pool: ThreadPoolExecutor,
        health_servicer,
        address: tuple[str, int],
    ) -> None:
        self._server = server
        self._pool = pool
        self._health = health_servicer
        self.address = address
        self._lock = threading.Lock()
        self._stopped = False

    def stop(self, grace: float = GRACE_SECONDS) -> None:
        """Stop serving; calls still running after `grace` seconds are cancelled. Idempotent."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        self._health.enter_graceful_shutdown()
        _naming_grpc_threads(lambda: self._server.stop(grace)).wait()
        self._pool.shutdown(wait=True)  # grpc leaves a caller-supplied pool running


def start_grpc_server(core: ProfilingCore, target: BindTarget, config: Config) -> GrpcListener:
    """Serve ProfilerService, health and reflection on `target`, which the guard returned."""
    if not isinstance(target, BindTarget):
        raise TypeError("start_grpc_server needs the BindTarget returned by check_bind()")
    long_calls = config.max_long_requests
    workers = 2 * long_calls + SHORT_CALL_WORKERS  # pulls + watches + short calls
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=THREAD_PREFIX)
    interceptors = [_TokenCheck(config.token)] if config.token else []
    server = grpc.server(
        pool,
        interceptors=interceptors,
        options=[
            ("grpc.so_reuseport", 0),  # a second listener on a taken port must fail, not share
            ("grpc.max_concurrent_streams", workers),
            ("grpc.max_receive_message_length", 64 * 1024),  # requests are a few bytes
        ],
        maximum_concurrent_rpcs=workers,  # beyond: RESOURCE_EXHAUSTED at once, never a queue
    )
    pb_grpc.add_ProfilerServiceServicer_to_server(ProfilerServicer(core, long_calls), server)
    health_servicer = _add_health(server)
    reflection.enable_server_reflection(
        (SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), server
    )
    try:
        address = _bind(server, target)
    except Exception:
        pool.shutdown(wait=False)
        raise
    _naming_grpc_threads(server.start)
    return GrpcListener(server, pool, health_servicer, address)


THREAD_PREFIX = "duragraph-pprof-grpc"  # the sampler leaves "duragraph-pprof*" threads out


def _naming_grpc_threads(action):
    """Run `action`, then give the threads grpc started meanwhile (its serving loop, its stop
    timer) our prefix: grpc names them as an application would ("Thread-1 (_serve)"), so they
    would count as the application's wall time and hide whose they are in the goroutine dump.
    Only threads running grpc's own functions are renamed."""
    before = set(threading.enumerate())
    result = action()
    for thread in threading.enumerate():
        target = getattr(thread, "_target", None)  # threading's own attribute, set while running
        if thread not in before and getattr(target, "__module__", "").startswith("grpc."):
            thread.name = f"{THREAD_PREFIX}-{target.__name__.strip('_')}"
    return result


def _add_health(server: grpc.Server) -> health.HealthServicer:
    servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    for name in ("", SERVICE_NAME):
        servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    return servicer


def _bind(server: grpc.Server, target: BindTarget) -> tuple[str, int]:
    if target.path:
        spec = f"unix:{target.path}"
    elif ":" in target.host:
        spec = f"[{target.host}]:{target.port}"
    else:
        spec = f"{target.host}:{target.port}"
    if target.path:
        clear_stale(target.path)
    try:
        port = server.add_insecure_port(spec)
    except RuntimeError as exc:  # grpc reports a failed bind this way
        raise OSError(f"gRPC listener cannot bind {spec}: {exc}") from None
    if target.path:
        restrict(target.path)  # before server.start(): nothing is accepted yet
        return (target.path, 0)
    return (target.host, port)
