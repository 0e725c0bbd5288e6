"""`duragraph-pprof dev|serve [-m MODULE | SCRIPT] [ARGS...]`: run a program in this process with
the profiler on. Exit status: the program's own; 2 for a configuration error."""

from __future__ import annotations

import atexit
import os
import runpy
import sys
import traceback

from .config import DEV, SERVE
from .errors import ConfigError

USAGE = """usage: duragraph-pprof dev|serve [-m MODULE | SCRIPT] [ARGS...]

  dev     HTTP pprof on 127.0.0.1:6060, gRPC on 127.0.0.1:6061, heap tracing on;
          with no program, runs a demo workload and prints what to try
  serve   the same, but each listener is off unless DURAGRAPH_PPROF_ADDR /
          DURAGRAPH_PPROF_GRPC_ADDR is set

The README lists every DURAGRAPH_PPROF_* and OTEL_* variable.
"""


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help"):
        sys.stdout.write(USAGE)
        return 0 if args else 2
    mode, rest = args[0], args[1:]
    if mode not in (DEV, SERVE):
        sys.stderr.write(f"duragraph-pprof: unknown command {mode!r}\n{USAGE}")
        return 2
    module = None
    if rest[:1] == ["-m"]:
        if len(rest) < 2:
            sys.stderr.write("duragraph-pprof: -m needs a module name\n")
            return 2
        module, rest = rest[1], rest[2:]
    elif not rest and mode == SERVE:
        sys.stderr.write("duragraph-pprof: serve needs a program: SCRIPT or -m MODULE\n")
        return 2
    script, program_args = (rest[0], rest[1:]) if rest and module is None else (None, rest)

    from . import start

    try:
        profiler = start(mode)
    except ConfigError as exc:
        sys.stderr.write(f"duragraph-pprof: {exc}\n")
        return 2
    # stop after the program's non-daemon threads finish, so the last push is complete
    atexit.register(profiler.stop)
    if module is None and script is None:
        from .demo import run_demo

        return run_demo(profiler)
    return _run_program(module, script, program_args)


def _run_program(module: str | None, script: str | None, args: list[str]) -> int:
    try:
        if module is not None:
            sys.argv = [module, *args]
            sys.path[0] = os.getcwd()
            runpy.run_module(module, run_name="__main__", alter_sys=True)
        else:
            assert script is not None
            sys.argv = [script, *args]
            sys.path[0] = os.path.dirname(os.path.abspath(script))
            runpy.run_path(script, run_name="__main__")
    except SystemExit as exc:
        return _exit_code(exc.code)
    except KeyboardInterrupt:
        return 130
    except Exception:  # noqa: BLE001 - like python itself: print it, exit 1
        traceback.print_exc()
        return 1
    return 0


def _exit_code(code: object) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    sys.stderr.write(f"{code}\n")
    return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
