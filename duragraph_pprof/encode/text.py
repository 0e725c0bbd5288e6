"""Go's text formats: the panic-style goroutine dump (debug=2) and the legacy debug=1 profiles.

The legacy formats name code by address. Python has none, so each frame gets a synthetic, stable
address derived from its function, file and line; `symbols()` gives the table /symbol answers from.
"""

from __future__ import annotations

import zlib

from ..core.snapshot import Frame, Goroutine, GoroutineSet, Profile, Stack

_BASE = 0x400000


def address(frame: Frame) -> int:
    """A stable synthetic address in the middle of a 16-byte slot (so address-1 stays inside)."""
    key = f"{frame.function}\0{frame.filename}\0{frame.line}".encode()
    return _BASE + (zlib.crc32(key) << 4) + 8


def symbols(profile: Profile) -> dict[int, str]:
    """Slot start -> function name for every frame of `profile`."""
    return {address(f) & ~0xF: f.function for s in profile.samples for f in s.stack}


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
def count_profile(name: str, stacks: list[Stack]) -> str:
    """`goroutine profile: total N` and one group per distinct stack, largest first."""
    groups: dict[Stack, int] = {}
    for stack in stacks:
        groups[stack] = groups.get(stack, 0) + 1
    ordered = sorted(groups.items(), key=lambda kv: (-kv[1], _key(kv[0])))
    out = [f"{name} profile: total {len(stacks)}\n"]
    for stack, count in ordered:
        out.append(f"{count} @{_pcs(stack)}\n{_frames(stack)}\n")
    return "".join(out)


def heap_profile(profile: Profile, stats: tuple[int, int] | None) -> str:
    """Go's legacy heap text. tracemalloc is unsampled (rate 1, so `heap/2`) and records live
    blocks only, so the alloc columns repeat the in-use ones (plus Go's +1 on the header)."""
    samples = sorted(profile.samples, key=lambda s: (-s.values[1], _key(s.stack)))
    objects = sum(s.values[0] for s in samples)
    space = sum(s.values[1] for s in samples)
    out = [f"heap profile: {objects}: {space} [{objects}: {space + 1}] @ heap/2\n"]
    for s in samples:
        n, size = s.values
        out.append(f"{n}: {size} [{n}: {size}] @{_pcs(s.stack)}\n{_frames(s.stack)}\n")
    out.append("\n# tracemalloc\n")
    if stats is not None:
        out.append(f"# TracedMemory = {stats[0]}\n# PeakTracedMemory = {stats[1]}\n")
    return "".join(out)


def contention_profile(kind: str, profile: Profile) -> str:
    """Go's legacy mutex/block text; delays are nanoseconds, so cycles/second is 1e9."""
    samples = sorted(profile.samples, key=lambda s: (-s.values[1], _key(s.stack)))
    out = [f"--- {'mutex' if kind == 'mutex' else 'contention'}:\ncycles/second=1000000000\n"]
    if kind == "mutex":
        out.append(f"sampling period={profile.period}\n")
    for s in samples:
        out.append(f"{s.values[1]} {s.values[0]} @{_pcs(s.stack)}\n{_frames(s.stack)}\n")
    return "".join(out)


def _key(stack: Stack) -> str:
    return "\n".join(f"{f.function}:{f.line}" for f in stack)


def _pcs(stack: Stack) -> str:
    return "".join(f" {address(f):#x}" for f in stack)


def _frames(stack: Stack) -> str:
    rows = [["#", f"{address(f) - 1:#x}", f"{f.function}+0x0", f"{f.filename}:{f.line}"]
            for f in stack]
    return _tabwrite(rows)


def _tabwrite(rows: list[list[str]]) -> str:
    """Go's text/tabwriter with TAB padding: each column padded to a common 8-column stop."""
    if not rows:
        return ""
    widths = [max(len(r[i]) for r in rows) + 1 for i in range(len(rows[0]) - 1)]
    out = []
    for row in rows:
        cells = []
        for cell, width in zip(row, widths):
            stop = -(-width // 8) * 8
            cells.append(cell + "\t" * -(-(stop - len(cell)) // 8))
        out.append("".join(cells) + row[-1] + "\n")
    return "".join(out)
