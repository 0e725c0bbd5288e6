"""Turning live Python frames into snapshot `Frame`s, with caches so the sampler stays cheap.

A code object always names the same function, so its name, file and first line are computed once;
a (code, line) pair always gives the same `Frame`, so those are interned too.
"""

from __future__ import annotations

import inspect
import os
from dataclasses import dataclass
from types import CodeType, FrameType

from .snapshot import Frame, Stack

MAX_DEPTH = 128  # deeper stacks keep the innermost frames, like Go's traceback limit
_MAX_CACHED = 200_000  # bounds the caches when code objects are created dynamically

# keyed with the file too: code objects compare by content, not by file, so one function loaded
# from two files would otherwise share one entry (and name the other file)
_code_info: dict[tuple[CodeType, str], tuple[str, str, int]] = {}
_frames: dict[tuple[CodeType, str, int], Frame] = {}


_OWN_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
# the command's runner and the demo sit under the application's own frames: they are the
# application, not the profiler
_APPLICATION = (_OWN_DIR + "cli.py", _OWN_DIR + "demo.py")


def profiler_file(filename: str) -> bool:
    """A file of the profiler itself, whose work (allocations, waits) never shows as the app's."""
    return filename.startswith(_OWN_DIR) and filename not in _APPLICATION


def own_frame(frame: Frame) -> bool:
    """A frame of the profiler: in one of its files, or code it generated at run time (a
    dataclass's `__hash__` has the file `<string>` and the profiler's module)."""
    return profiler_file(frame.filename) or (frame.filename.startswith("<") and
                                            frame.function.startswith("duragraph_pprof."))


def function_name(module: str, qualname: str) -> str:
    return f"{module}.{qualname}" if module else qualname


def absolute(filename: str) -> str:
    # "<frozen ...>", "<string>" and friends have no file to show
    if not filename or filename.startswith("<"):
        return filename
    return os.path.abspath(filename)


def _info(code: CodeType, module: str) -> tuple[str, str, int]:
    key = (code, code.co_filename)
    info = _code_info.get(key)
    if info is None:
        if len(_code_info) >= _MAX_CACHED:
            _code_info.clear()
        from .qualnames import qualname  # 3.10 has no co_qualname: rebuilt, once per file

        info = (function_name(module, qualname(code)), absolute(code.co_filename),
                code.co_firstlineno)
        _code_info[key] = info
    return info


def frame_of(frame: FrameType) -> Frame:
    code = frame.f_code
    line = frame.f_lineno or 0
    cached = _frames.get((code, code.co_filename, line))
    if cached is None:
        module = frame.f_globals.get("__name__", "") if frame.f_globals else ""
        cached = frame_at(code, module if isinstance(module, str) else "", line)
    return cached


def frame_at(code: CodeType, module: str, line: int | None) -> Frame:
    """The `Frame` for a code object at a line, in a module (the native sampler's way in)."""
    line = line if line is not None and line > 0 else 0
    key = (code, code.co_filename, line)
    cached = _frames.get(key)
    if cached is None:
        if len(_frames) >= _MAX_CACHED:
            _frames.clear()
        name, filename, start = _info(code, module)
        cached = _frames[key] = Frame(name, filename, line, start)
    return cached


def stack_of(frame: FrameType | None, limit: int = MAX_DEPTH) -> Stack:
    """The stack from `frame` outwards, leaf first."""
    out = []
    while frame is not None and len(out) < limit:
        out.append(frame_of(frame))
        frame = frame.f_back
    return tuple(out)


# frames whose caller can change between two reads: a generator is resumed by whoever calls next()
_RESUMABLE = inspect.CO_GENERATOR | inspect.CO_COROUTINE | inspect.CO_ASYNC_GENERATOR


class Walk:
    """One thread's stack as last read, kept so that the next read reuses its unchanged outer part.

    A plain function's frame that is still live is still the same call: its caller has been
    suspended in that call all along, and so has every frame above it. So a new read walks only
    the frames that changed, down to the first frame it saw last time at the same line.

    `where` maps a frame's id to its depth counted from the outermost frame, which does not change
    while the frame lives; so the next read updates it for the frames that changed only, and takes
    it over (a Walk that a newer read was built from is spent).
    """

    __slots__ = ("frames", "leaf", "line", "stack", "where")

    def __init__(self, leaf: FrameType, line: int, stack: Stack, frames: list[FrameType],
                 where: dict[int, int] | None = None) -> None:
        self.leaf = leaf
        self.line = line
        self.stack = stack
        self.frames = frames  # the frame objects of `stack`, keeping their ids unique
        if where is None:
            top = len(frames) - 1
            where = {id(f): top - i for i, f in enumerate(frames)}
        self.where = where


def walk(frame: FrameType, previous: Walk | None = None, limit: int = MAX_DEPTH) -> Walk:
    """The stack from `frame` outwards, leaf first, as `stack_of` gives it, reusing `previous`."""
    line = frame.f_lineno or 0
    if previous is not None:
        if previous.leaf is frame and previous.line == line:
            return previous
        if _only_leaf_moved(frame, previous, limit):
            return _replace_leaf(frame, line, previous)
    # a truncated previous stack does not reach the root, so its tail cannot be reused
    tail = previous if previous is not None and len(previous.stack) < limit else None
    where = tail.where if tail is not None else {}
    out: list[Frame] = []
    chain: list[FrameType] = []
    current: FrameType | None = frame
    while current is not None and len(out) < limit:
        depth = where.get(id(current))
        if depth is not None and tail is not None:
            at = _unchanged_at(tail, current, depth)
            if at is not None:
                join = _Join(leaf=frame, line=line, inner=out, chain=chain, previous=tail, at=at)
                return join.walk(limit)
        out.append(frame_of(current))
        chain.append(current)
        current = current.f_back
    return Walk(frame, line, tuple(out), chain)


def _unchanged_at(previous: Walk, frame: FrameType, depth: int) -> int | None:
    """The index in `previous` of `frame`, found at `depth` from the root, when it is still the
    same call at the same line there: then it and every frame outwards of it are unchanged (a
    generator's caller can change, so its frame never counts)."""
    at = len(previous.frames) - 1 - depth
    if (0 <= at and previous.frames[at] is frame and not frame.f_code.co_flags & _RESUMABLE
            and (frame.f_lineno or 0) == previous.stack[at].line):
        return at
    return None


def _only_leaf_moved(frame: FrameType, previous: Walk, limit: int) -> bool:
    """The commonest change between two reads of a busy thread: a new (or moved) innermost call
    under the same caller, still at the same line."""
    frames = previous.frames
    if len(frames) < 2 or frame.f_back is not frames[1] or len(frames) >= limit:
        return False
    caller = frames[1]
    return (not caller.f_code.co_flags & _RESUMABLE
            and (caller.f_lineno or 0) == previous.stack[1].line)


def _replace_leaf(frame: FrameType, line: int, previous: Walk) -> Walk:
    """`previous` with its innermost frame replaced, updated in place (it is spent anyway)."""
    frames, where = previous.frames, previous.where
    del where[id(frames[0])]
    where[id(frame)] = len(frames) - 1
    frames[0] = frame
    leaf = frame_of(frame)
    if leaf is not previous.stack[0]:
        previous.stack = (leaf,) + previous.stack[1:]
    previous.leaf, previous.line = frame, line
    return previous


@dataclass(slots=True)
class _Join:
    """Where a new read meets the previous one: the frames read anew (`inner`, innermost first,
    with their frame objects in `chain`) go on top of `previous` from its index `at` outwards."""

    leaf: FrameType
    line: int
    inner: list[Frame]
    chain: list[FrameType]
    previous: Walk
    at: int

    def walk(self, limit: int) -> Walk:
        previous, at = self.previous, self.at
        stack = tuple(self.inner) + previous.stack[at:]
        frames = self.chain + previous.frames[at:]
        if len(stack) > limit:  # truncated: never reused, so no depth table to keep
            return Walk(self.leaf, self.line, stack[:limit], frames[:limit], {})
        where = previous.where  # taken over: the previous Walk is spent
        for gone in previous.frames[:at]:  # ids of live frames are unique, so remove before adding
            del where[id(gone)]
        top = len(previous.frames) - 1 - at + len(self.chain)  # the depth of the new leaf
        for i, f in enumerate(self.chain):
            where[id(f)] = top - i
        return Walk(self.leaf, self.line, stack, frames, where)
