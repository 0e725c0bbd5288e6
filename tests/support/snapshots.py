"""Hand-built snapshots for the encoders' unit tests: fixed frames, fixed labels and fixed
timestamps, so every encoder's output is the same on every run and can be compared byte for byte.

The value types are spelled out here rather than imported from the core, so a golden file
changes only when an encoder does."""

from __future__ import annotations

from duragraph_pprof.core.snapshot import (
    ASYNCIO_TASK,
    THREAD,
    Frame,
    Goroutine,
    GoroutineSet,
    Profile,
    Sample,
    TraceEvent,
    ValueType,
)

T0 = 1_700_000_000_000_000_000  # 2023-11-14T22:13:20Z, in nanoseconds
SECOND = 1_000_000_000

SAMPLES = ValueType("samples", "count")
CPU = ValueType("cpu", "nanoseconds")
WALL = ValueType("wall", "nanoseconds")
SPACE = ValueType("space", "bytes")
ALLOC_OBJECTS = ValueType("alloc_objects", "count")
ALLOC_SPACE = ValueType("alloc_space", "bytes")
INUSE_OBJECTS = ValueType("inuse_objects", "count")
INUSE_SPACE = ValueType("inuse_space", "bytes")
CONTENTIONS = ValueType("contentions", "count")
DELAY = ValueType("delay", "nanoseconds")
GOROUTINE = ValueType("goroutine", "count")

MAIN = Frame("app.main", "/srv/app/main.py", 30, 1)
SERVE = Frame("app.server.Server.serve_forever", "/srv/app/server.py", 88, 80)
# a name longer than two tab stops, so the debug=1 columns need more than one TAB to line up
HANDLE = Frame("app.handlers.CheckoutHandler.handle_request", "/srv/app/handlers.py", 41, 35)
BURN = Frame("app.work.burn", "/srv/app/work.py", 12, 10)
BURN_LOOP = Frame("app.work.burn", "/srv/app/work.py", 14, 10)  # same function, next line
WAIT = Frame("threading.Event.wait", "/usr/lib/python3.11/threading.py", 629, 611)
ACQUIRE = Frame("app.cache.Cache.get", "/srv/app/cache.py", 19, 17)
FILL = Frame("app.cache.fill", "/srv/app/cache.py", 7, 5)
SLEEP = Frame("asyncio.tasks.sleep", "/usr/lib/python3.11/asyncio/tasks.py", 649, 627)

MAIN_THREAD = (("thread.id", "140001"), ("thread.name", "MainThread"))
WORKER = (("thread.id", "140002"), ("thread.name", "worker-1"))


def cpu() -> Profile:
    """Two sample types, labels, a comment: what the sampler's CPU window gives."""
    return Profile(
        (SAMPLES, CPU), CPU, 10_000_000,
        (
            Sample((BURN, HANDLE, SERVE, MAIN), (90, 900_000_000), MAIN_THREAD),
            Sample((BURN_LOOP, HANDLE, SERVE, MAIN), (7, 70_000_000), MAIN_THREAD),
            Sample((WAIT, SERVE, MAIN), (3, 1_000_000), WORKER),
        ),
        T0, SECOND, comments=("sampler: native",),
    )


def sampled_heap() -> Profile:
    """Go's four heap values, a numeric label, the sampling rate as the period."""
    return Profile(
        (ALLOC_OBJECTS, ALLOC_SPACE, INUSE_OBJECTS, INUSE_SPACE), SPACE, 524_288,
        (
            Sample((FILL, HANDLE, MAIN), (128, 67_108_864, 64, 33_554_432),
                   num_labels=(("bytes", 524_288, "bytes"),)),
            Sample((BURN, MAIN), (16, 8_388_608, 0, 0), num_labels=(("bytes", 524_288, "bytes"),)),
            Sample((ACQUIRE, HANDLE, MAIN), (2, 1_048_576, 2, 1_048_576)),
        ),
        T0 + 5, 0, "inuse_space", ("heap: sampled, one per 524288 bytes",),
    )


def exact_heap() -> Profile:
    """tracemalloc's two in-use values, every live block."""
    return Profile(
        (INUSE_OBJECTS, INUSE_SPACE), SPACE, 1,
        (
            Sample((FILL, HANDLE, MAIN), (40, 4096)),
            Sample((ACQUIRE, MAIN), (3, 4096)),  # ties on bytes: ordered by stack
            Sample((BURN, MAIN), (1, 64)),
        ),
        T0 + 5,
    )


def contention(period: int = 1) -> Profile:
    """(contentions, delay): what the lock recorder gives for mutex and block."""
    return Profile(
        (CONTENTIONS, DELAY), CONTENTIONS, period,
        (
            Sample((ACQUIRE, HANDLE, MAIN), (4, 2_500_000)),
            Sample((WAIT, SERVE, MAIN), (1, 9_000_000)),
            Sample((), (2, 10)),  # a wait with no Python frame left
        ),
        T0,
    )


def goroutine_stacks() -> list[tuple[Frame, ...]]:
    """The stacks `goroutine?debug=1` counts: three threads parked alike, one busy, one bare."""
    parked = (WAIT, SERVE, MAIN)
    return [parked, (BURN, HANDLE, SERVE, MAIN), parked, (), parked]


def goroutines() -> GoroutineSet:
    return GoroutineSet(
        (
            Goroutine(1, THREAD, "MainThread", "running", (BURN, HANDLE, SERVE, MAIN), 140001),
            Goroutine(2, THREAD, 'worker[1] "x"\n', "sleep", (WAIT, SERVE), 140002),
            Goroutine(3, THREAD, "Dummy-3", "runnable", (), 140003),
            Goroutine(4, ASYNCIO_TASK, "Task-7", "select", (SLEEP, HANDLE), 140001,
                      awaiting="Future pending", created_by="thread MainThread"),
        ),
        T0,
    )


def trace_events() -> tuple[TraceEvent, ...]:
    """Metadata, nested spans with sub-microsecond times, a GC span, an instant."""
    return (
        TraceEvent("process_name", "M", 0, 4242, 0, args=(("name", "python"),)),
        TraceEvent("thread_name", "M", 0, 4242, 140001, args=(("name", "MainThread"),)),
        TraceEvent(MAIN.function, "X", 10.0, 4242, 140001, 5000.0, "python"),
        TraceEvent(BURN.function, "X", 10.0004, 4242, 140001, 1234.56789, "python"),
        TraceEvent("gc generation 2", "X", 2500.5, 4242, 1, 42.25, "gc",
                   (("collected", "17"), ("uncollectable", "0"))),
        TraceEvent("trace truncated", "i", 5010.0, 4242, 1),
    )
