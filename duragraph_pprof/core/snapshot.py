"""Frozen plain data that the profiling core hands to encoders and transports.

Nothing here touches the running process: a snapshot is a value, so the same snapshot always
encodes to the same bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Frame:
    """One Python frame: `function` is `module.qualname`, `filename` absolute."""

    function: str
    filename: str
    line: int
    start_line: int


Stack = tuple[Frame, ...]  # leaf (innermost) first, as pprof wants


@dataclass(frozen=True, slots=True)
class ValueType:
    type: str
    unit: str


@dataclass(frozen=True, slots=True)
class Sample:
    stack: Stack
    values: tuple[int, ...]
    # string labels (key, value), e.g. ("thread.name", "MainThread"); sorted by key
    labels: tuple[tuple[str, str], ...] = ()
    # numeric labels (key, value, unit), e.g. ("bytes", 64, "bytes")
    num_labels: tuple[tuple[str, int, str], ...] = ()


@dataclass(frozen=True, slots=True)
class Profile:
    """A profile in pprof's terms, independent of any wire format."""

    sample_types: tuple[ValueType, ...]
    period_type: ValueType
    period: int
    samples: tuple[Sample, ...]
    time_nanos: int
    duration_nanos: int = 0
    default_sample_type: str = ""
    comments: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Goroutine:
    """A thread or an asyncio task, as the goroutine dump shows it."""

    id: int
    kind: str  # "thread" | "asyncio_task"
    name: str
    status: str  # Go-style: "running", "sleep", "IO wait", "semacquire", "select", ...
    stack: Stack
    thread_id: int | None = None  # the OS-visible ident of the thread (the loop's, for a task)
    awaiting: str = ""  # for a task: what it awaits, e.g. "Future pending", "Task-3"
    created_by: str = ""  # for a task: the thread/loop it runs on, for the dump's `created by`


@dataclass(frozen=True, slots=True)
class GoroutineSet:
    goroutines: tuple[Goroutine, ...]
    time_nanos: int

    @property
    def threads(self) -> int:
        return sum(1 for g in self.goroutines if g.kind == "thread")

    @property
    def tasks(self) -> int:
        return sum(1 for g in self.goroutines if g.kind == "asyncio_task")


THREAD = "thread"
ASYNCIO_TASK = "asyncio_task"


@dataclass(frozen=True, slots=True)
class TraceEvent:
    """One Chrome Trace Event (`ph` X = complete span, i = instant, M = metadata)."""

    name: str
    ph: str
    ts_us: float
    pid: int
    tid: int
    dur_us: float = 0.0
    cat: str = ""
    args: tuple[tuple[str, str], ...] = field(default=())


def subtract(after: Profile, before: Profile) -> Profile:
    """`after - before` by stack and labels, dropping all-zero samples (pprof merge semantics).
    Values may be negative, e.g. heap in-use that shrank."""
    acc: dict[tuple, list[int]] = {}
    for sign, profile in ((1, after), (-1, before)):
        for s in profile.samples:
            key = (s.stack, s.labels, s.num_labels)
            values = acc.setdefault(key, [0] * len(s.values))
            for i, v in enumerate(s.values):
                values[i] += sign * v
    samples = tuple(
        Sample(stack, tuple(values), labels, num)
        for (stack, labels, num), values in acc.items()
        if any(values)
    )
    return Profile(
        after.sample_types, after.period_type, after.period, samples, after.time_nanos,
        after.time_nanos - before.time_nanos, after.default_sample_type, after.comments,
    )
