"""Go's text formats: the panic-style goroutine dump (debug=2) and the legacy debug=1 profiles.

The legacy formats name code by address. Python has none, so each frame gets a synthetic, stable
address derived from its function, file and line; `symbols()` gives the table /symbol answers from.
"""

from __future__ import annotations

import zlib

from ..core.snapshot import Frame, Goroutine, GoroutineSet, Profile, Sample, Stack

_BASE = 0x400000


def address(frame: Frame) -> int:
    """A stable synthetic address in the middle of a 16-byte slot (so address-1 stays inside)."""
    key = f"{frame.function}\0{frame.filename}\0{frame.line}".encode()
    return _BASE + (zlib.crc32(key) << 4) + 8


def symbols(profile: Profile) -> dict[int, str]:
    """Slot start -> function name for every frame of `profile`."""
    frames = {f for s in profile.samples for f in s.stack}
    return {address(f) & ~0xF: f.function for f in frames}


def lookup(table: dict[int, str], addr: int) -> str | None:
    return table.get(addr & ~0xF)


# -- goroutine?debug=2 -------------------------------------------------------------------------
def goroutine_dump(goroutines: GoroutineSet) -> str:
    return "\n".join(_record(g) for g in goroutines.goroutines)


def _record(g: Goroutine) -> str:
    extras = [g.status, f'{"thread" if g.kind == "thread" else "asyncio task"} {_quote(g.name)}']
    if g.awaiting:
        extras.append(f"awaiting {_quote(g.awaiting)}")
    lines = [f"goroutine {g.id} [{', '.join(extras)}]:"]
    for frame in g.stack:
        lines.append(f"{frame.function}(...)")
        lines.append(f"\t{frame.filename}:{frame.line}")
    if not g.stack:
        lines.append("\t(no Python frames)")
    if g.created_by:
        lines.append(f"created by asyncio event loop in {g.created_by}")
    return "\n".join(lines) + "\n"


def _quote(name: str) -> str:
    # keep the header one line that `^goroutine N [...]:` matches
    cleaned = "".join(c if c.isprintable() and c not in '[]"' else "?" for c in name)
    return f'"{cleaned}"'


# -- debug=1 profiles --------------------------------------------------------------------------
class _Frames:
    """Per-call memo of each frame's text cells: records share most of their frames, and while
    tracemalloc traces, every string built again is a traced allocation."""

    def __init__(self) -> None:
        self._cells: dict[Frame, tuple[str, str, str, str]] = {}

    def cells(self, frame: Frame) -> tuple[str, str, str, str]:
        """(` 0xPC` for the @ line, `0xPC-1`, `func+0x0`, `file:line`)"""
        found = self._cells.get(frame)
        if found is None:
            pc = address(frame)
            found = self._cells[frame] = (f" {pc:#x}", f"{pc - 1:#x}", f"{frame.function}+0x0",
                                          f"{frame.filename}:{frame.line}")
        return found

    def record(self, head: str, stack: Stack) -> str:
        """`head @ pcs` and the tab-aligned `#` frame lines (Go's text/tabwriter with TABs)."""
        cells = [self.cells(f) for f in stack]
        if not cells:
            return f"{head} @\n\n"
        pc_stop = _stop(max(len(c[1]) for c in cells) + 1)
        fn_stop = _stop(max(len(c[2]) for c in cells) + 1)
        lines = [f"{head} @{''.join(c[0] for c in cells)}\n"]
        for _, pc, fn, loc in cells:
            lines.append(f"#\t{pc}{_TABS[-(-(pc_stop - len(pc)) // 8)]}"
                         f"{fn}{_TABS[-(-(fn_stop - len(fn)) // 8)]}{loc}\n")
        lines.append("\n")
        return "".join(lines)


_TABS = ["\t" * n for n in range(1024)]


def _stop(width: int) -> int:
    return -(-width // 8) * 8


def _order(stack: Stack) -> tuple:
    return tuple((f.function, f.line) for f in stack)


def count_profile(name: str, stacks: list[Stack]) -> str:
    """`goroutine profile: total N` and one group per distinct stack, largest first."""
    groups: dict[Stack, int] = {}
    for stack in stacks:
        groups[stack] = groups.get(stack, 0) + 1
    ordered = sorted(groups.items(), key=lambda kv: (-kv[1], _order(kv[0])))
    frames = _Frames()
    out = [f"{name} profile: total {len(stacks)}\n"]
    out.extend(frames.record(str(count), stack) for stack, count in ordered)
    return "".join(out)


def heap_profile(profile: Profile, stats: tuple[int, int] | None, rate: int = 1) -> str:
    """Go's legacy heap text. A sampled profile carries Go's four values (alloc objects and
    bytes, in-use objects and bytes). tracemalloc is unsampled (rate 1, so `heap/2`) and records
    live blocks only, so there the alloc columns repeat the in-use ones (plus Go's +1 on the
    header, which keeps pprof from reading a two-column profile)."""
    def columns(s: Sample) -> tuple[int, int, int, int]:  # (inuse n, inuse b, alloc n, alloc b)
        v = s.values
        return (v[2], v[3], v[0], v[1]) if len(v) == 4 else (v[0], v[1], v[0], v[1])

    samples = sorted(profile.samples, key=lambda s: (-columns(s)[1], _order(s.stack)))
    totals = [sum(columns(s)[i] for s in samples) for i in range(4)]
    if totals[3] == totals[1]:
        totals[3] += 1
    frames = _Frames()
    out = [f"heap profile: {totals[0]}: {totals[1]} [{totals[2]}: {totals[3]}] @ heap/{2 * rate}\n"]
    for s in samples:
        n, size, an, ab = columns(s)
        out.append(frames.record(f"{n}: {size} [{an}: {ab}]", s.stack))
    if stats is not None:
        out.append(f"\n# tracemalloc\n# TracedMemory = {stats[0]}\n# PeakTracedMemory = {stats[1]}\n")
    else:
        out.append(f"\n# sampled heap\n# MemProfileRate = {rate}\n")
    return "".join(out)


def contention_profile(kind: str, profile: Profile) -> str:
    """Go's legacy mutex/block text; delays are nanoseconds, so cycles/second is 1e9."""
    samples = sorted(profile.samples, key=lambda s: (-s.values[1], _order(s.stack)))
    out = [f"--- {'mutex' if kind == 'mutex' else 'contention'}:\ncycles/second=1000000000\n"]
    if kind == "mutex":
        out.append(f"sampling period={profile.period}\n")
    frames = _Frames()
    out.extend(frames.record(f"{s.values[1]} {s.values[0]}", s.stack) for s in samples)
    return "".join(out)
