"""Resolving (file, line) to the enclosing function, for tracebacks that carry no code object.

tracemalloc records only file names and line numbers; pprof wants `module.qualname` and the
function's first line so `go tool pprof -list` can show source. For an imported module we read
the line tables of its functions' code objects (the same names the sampler shows, and no parsing);
only a file that is no module's is parsed, once.
"""

from __future__ import annotations

import ast
import linecache
import os
import sys
from functools import lru_cache
from types import CodeType, FunctionType, ModuleType

from .frames import absolute, function_name
from .qualnames import COMPREHENSION_NAMES
from .qualnames import qualname as qualname_of
from .snapshot import Frame

MODULE_CODE = "<module>"


@lru_cache(maxsize=65536)
def resolve(filename: str, line: int) -> Frame:
    path = absolute(filename)
    qualname, start = _line_table(path).get(line, (MODULE_CODE, 1))
    return Frame(function_name(module_name(path), qualname), path, line, start)


@lru_cache(maxsize=2048)
def _line_table(path: str) -> dict[int, tuple[str, int]]:
    """line -> (qualname, first line) of the innermost function around it."""
    module = sys.modules.get(module_name(path))
    if module is not None and _file_of(module) == path:
        return _from_code(module, path)
    return _from_source(path)


def _file_of(module: ModuleType) -> str | None:
    file = getattr(module, "__file__", None)
    return os.path.abspath(file) if isinstance(file, str) else None


def _from_code(module: ModuleType, path: str) -> dict[int, tuple[str, int]]:
    codes: list[CodeType] = []
    seen: set[int] = set()
    pending = list(vars(module).values())
    while pending:
        obj = pending.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, type) and getattr(obj, "__module__", None) == module.__name__:
            pending.extend(vars(obj).values())
        elif isinstance(obj, (staticmethod, classmethod)):
            pending.append(obj.__func__)
        elif isinstance(obj, property):
            pending.extend((obj.fget, obj.fset, obj.fdel))
        elif isinstance(obj, FunctionType):
            if absolute(obj.__code__.co_filename) == path:
                _add_code(obj.__code__, codes)
            pending.append(getattr(obj, "__wrapped__", None))
    table: dict[int, tuple[str, int]] = {}
    for code in codes:  # parents before the functions nested in them, so the innermost wins
        entry = (qualname_of(code), code.co_firstlineno)
        # a comprehension shares its lines with the function around it (3.12 inlines it):
        # a block allocated on such a line is named after the function
        claim = table.setdefault if code.co_name in COMPREHENSION_NAMES else table.__setitem__
        for _start, _end, line in code.co_lines():
            if line is not None:
                claim(line, entry)
    return table


def _add_code(code: CodeType, out: list[CodeType]) -> None:
    out.append(code)
    for const in code.co_consts:
        if isinstance(const, CodeType):
            _add_code(const, out)


def _from_source(path: str) -> dict[int, tuple[str, int]]:
    source = "".join(linecache.getlines(path))
    try:
        tree = ast.parse(source, path)
    except (SyntaxError, ValueError):
        return {}
    table: dict[int, tuple[str, int]] = {}
    _walk(tree, "", table)
    return table


def _walk(node: ast.AST, prefix: str, table: dict[int, tuple[str, int]]) -> None:
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            qualname = prefix + child.name
            if not isinstance(child, ast.ClassDef):
                # like co_firstlineno: the first decorator's line when there is one
                start = min([child.lineno] + [d.lineno for d in child.decorator_list])
                for line in range(start, (child.end_lineno or child.lineno) + 1):
                    table[line] = (qualname, start)
                _walk(child, qualname + ".<locals>.", table)
            else:
                _walk(child, qualname + ".", table)
        else:
            _walk(child, prefix, table)


def module_name(path: str) -> str:
    if path.startswith("<frozen ") and path.endswith(">"):
        return path[len("<frozen "):-1]  # e.g. importlib._bootstrap
    name = _modules_by_file(len(sys.modules)).get(path)  # rebuilt when modules were imported
    return name or os.path.splitext(os.path.basename(path))[0]


@lru_cache(maxsize=1)
def _modules_by_file(_count: int) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, module in list(sys.modules.items()):
        file = getattr(module, "__file__", None)
        if isinstance(file, str):
            out.setdefault(os.path.abspath(file), name)
    return out
