"""Qualified names for code objects that carry none (CPython 3.10 has no `co_qualname`), rebuilt
from the source the way the compiler builds them (PEP 3155): `Class.method`,
`outer.<locals>.inner`, `f.<locals>.<listcomp>`, `<lambda>`. Without them `threading.Event.wait`
would read `threading.wait`.

Each file is parsed once; a code object is found by its first line and name. Where the source
cannot be read or parsed, the bare name stays.
"""

from __future__ import annotations

import ast
import linecache
from types import CodeType

_MAX_FILES = 10_000  # bounds the table when files keep appearing (generated code)
_by_file: dict[str, dict[tuple[int, str], str]] = {}
_COMPREHENSIONS = {ast.ListComp: "<listcomp>", ast.SetComp: "<setcomp>",
                   ast.DictComp: "<dictcomp>", ast.GeneratorExp: "<genexpr>"}
COMPREHENSION_NAMES = frozenset(_COMPREHENSIONS.values())


def qualname(code: CodeType) -> str:
    """The code object's qualified name: its own where it has one (3.11+), else rebuilt."""
    own = getattr(code, "co_qualname", None)
    return own if own is not None else from_source(code)


def from_source(code: CodeType) -> str:
    names = _by_file.get(code.co_filename)
    if names is None:
        if len(_by_file) >= _MAX_FILES:
            _by_file.clear()
        names = _by_file[code.co_filename] = _scan(code.co_filename)
    return names.get((code.co_firstlineno, code.co_name), code.co_name)


def _scan(filename: str) -> dict[tuple[int, str], str]:
    source = "".join(linecache.getlines(filename))
    if not source:
        return {}
    try:
        tree = ast.parse(source, filename)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return {}
    found: dict[tuple[int, str], str] = {}
    _Names(found).visit_body(tree.body, "", False)
    return found


class _Names:
    """Walks a module, carrying the enclosing scope's qualified name and whether it is a
    function (whose children get `.<locals>.`) or a class (whose children get `.`)."""

    def __init__(self, found: dict[tuple[int, str], str]) -> None:
        self.found = found

    def visit_body(self, nodes, prefix: str, in_function: bool) -> None:
        for node in nodes:
            self.visit(node, prefix, in_function)

    def visit(self, node: ast.AST, prefix: str, in_function: bool) -> None:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            return self._definition(node, prefix, in_function)
        if isinstance(node, ast.Lambda):
            for default in [*node.args.defaults, *node.args.kw_defaults]:
                if default is not None:
                    self.visit(default, prefix, in_function)
            inner = self._record(node.lineno, "<lambda>", prefix, in_function)
            return self.visit(node.body, inner, True)
        name = _COMPREHENSIONS.get(type(node))
        if name is not None:
            return self._comprehension(node, name, prefix, in_function)
        for child in ast.iter_child_nodes(node):
            self.visit(child, prefix, in_function)
        return None

    def _definition(self, node, prefix: str, in_function: bool) -> None:
        # decorators, defaults, annotations and bases run in the enclosing scope
        outer = [*node.decorator_list]
        if isinstance(node, ast.ClassDef):
            outer += [*node.bases, *(k.value for k in node.keywords)]
        else:
            outer += [d for d in (*node.args.defaults, *node.args.kw_defaults) if d is not None]
        for child in outer:
            self.visit(child, prefix, in_function)
        first = min([node.lineno] + [d.lineno for d in node.decorator_list])
        inner = self._record(first, node.name, prefix, in_function)
        self.visit_body(node.body, inner, not isinstance(node, ast.ClassDef))

    def _comprehension(self, node, name: str, prefix: str, in_function: bool) -> None:
        generators = node.generators
        self.visit(generators[0].iter, prefix, in_function)  # evaluated outside, as an argument
        inner = self._record(node.lineno, name, prefix, in_function)
        parts = [generators[0].target, *generators[0].ifs]
        for generator in generators[1:]:
            parts += [generator.target, generator.iter, *generator.ifs]
        parts += [node.key, node.value] if isinstance(node, ast.DictComp) else [node.elt]
        for part in parts:  # the compiler joins a comprehension's children with ".", no <locals>
            self.visit(part, inner, False)

    def _record(self, line: int, name: str, prefix: str, in_function: bool) -> str:
        qualname = f"{prefix}{'.<locals>.' if in_function else '.'}{name}" if prefix else name
        self.found.setdefault((line, name), qualname)
        return qualname
