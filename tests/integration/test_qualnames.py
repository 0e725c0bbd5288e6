"""Qualified names rebuilt from the source (for CPython 3.10, which has no co_qualname) are the
compiler's own, and every frame is named `module.qualname` on every supported Python."""

from __future__ import annotations

import sys
import textwrap
import threading
from types import CodeType, FunctionType

import pytest

from duragraph_pprof.core import goroutines, qualnames
from duragraph_pprof.core.frames import stack_of

SOURCE = textwrap.dedent('''
    import functools

    def top():
        def inner():
            return [x for x in range(3)]
        return inner

    class Outer:
        class Inner:
            def method(self):
                return lambda: {k: v for k, v in {}.items()}

        @functools.lru_cache
        def decorated(self):
            return (y for y in [[z for z in range(2)] for _ in range(2)])

        @staticmethod
        async def coroutine():
            pass

    def factory():
        class Made:
            def made(self):
                pass
        return Made
''')
EXPECTED = {
    "top": "top", "inner": "top.<locals>.inner", "Outer": "Outer", "Inner": "Outer.Inner",
    "method": "Outer.Inner.method", "decorated": "Outer.decorated", "coroutine":
    "Outer.coroutine", "factory": "factory", "Made": "factory.<locals>.Made",
    "made": "factory.<locals>.Made.made",
}


def codes(code: CodeType):
    yield code
    for const in code.co_consts:
        if isinstance(const, CodeType):
            yield from codes(const)


@pytest.fixture
def module(tmp_path):
    path = tmp_path / "shapes.py"
    path.write_text(SOURCE)
    return compile(SOURCE, str(path), "exec")


def test_names_rebuilt_from_the_source_are_the_compilers(module):
    found = {c.co_name: qualnames.from_source(c) for c in codes(module)
             if c.co_name in EXPECTED}
    assert found == EXPECTED
    nested = sorted(qualnames.from_source(c) for c in codes(module) if c.co_name.startswith("<")
                    and c.co_name != "<module>")
    if sys.version_info < (3, 12):  # later versions inline list and dict comprehensions
        assert "top.<locals>.inner.<locals>.<listcomp>" in nested
        assert "Outer.Inner.method.<locals>.<lambda>.<locals>.<dictcomp>" in nested
    assert "Outer.decorated.<locals>.<genexpr>" in nested
    if hasattr(module, "co_qualname"):  # where the compiler says, it agrees
        for c in codes(module):
            if c.co_name != "<module>" and c.co_name in EXPECTED:
                assert qualnames.from_source(c) == c.co_qualname


def functions_of(module):
    """Every plain function and method defined in `module`, with the qualname Python gave it."""
    for value in vars(module).values():
        if isinstance(value, type) and value.__module__ == module.__name__:
            yield from (v for v in vars(value).values() if isinstance(v, FunctionType))
        elif isinstance(value, FunctionType) and value.__module__ == module.__name__:
            yield value


def test_standard_library_names_match_the_functions_own_qualnames():
    import asyncio.base_events
    import queue
    import selectors

    checked, wrong = 0, []
    for mod in (threading, queue, selectors, asyncio.base_events):
        for function in functions_of(mod):
            if function.__code__.co_filename != mod.__file__:
                continue  # e.g. a namedtuple's methods, compiled elsewhere and renamed
            checked += 1
            if qualnames.from_source(function.__code__) != function.__qualname__:
                wrong.append((mod.__name__, function.__qualname__))
    assert checked > 200 and not wrong, wrong


def test_a_thread_waiting_on_an_event_is_named_and_classified_on_every_python():
    release = threading.Event()
    waiter = threading.Thread(target=release.wait, name="waiter")
    waiter.start()
    try:
        for _ in range(100):
            frame = sys._current_frames().get(waiter.ident)
            if frame is not None and "wait" in frame.f_code.co_name:
                break
            threading.Event().wait(0.01)
        names = [f.function for f in stack_of(sys._current_frames()[waiter.ident])]
        status = goroutines._thread_status(sys._current_frames()[waiter.ident])
    finally:
        release.set()
        waiter.join()
    assert "threading.Event.wait" in names, names
    assert "threading.Condition.wait" in names, names
    assert status == "sync.Cond.Wait"


def test_a_heap_line_shared_with_a_comprehension_is_named_after_its_function(tmp_path):
    import importlib.util

    from duragraph_pprof.core.source import resolve

    path = tmp_path / "shared_line_module.py"
    path.write_text("class Keeper:\n    def keep(self):\n"
                    "        return [bytearray(8) for _ in range(3)]\n")
    spec = importlib.util.spec_from_file_location("shared_line_module", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
        frame = resolve(str(path), 3)
    finally:
        del sys.modules[spec.name]
    assert (frame.function, frame.start_line) == ("shared_line_module.Keeper.keep", 2)
