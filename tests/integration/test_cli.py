"""The command: `duragraph-pprof dev|serve [-m MODULE | SCRIPT] [ARGS...]`, run as users run it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

BIN = Path(sys.executable).with_name("duragraph-pprof")

REPORT = """\
import json, sys, threading
print(json.dumps({"argv": sys.argv, "name": __name__,
                  "threads": sorted(t.name for t in threading.enumerate())}))
"""


def run(tmp_path: Path, *args: str, env: dict[str, str] | None = None):
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("DURAGRAPH_", "OTEL_"))}
    return subprocess.run([str(BIN), *args], cwd=tmp_path, capture_output=True, text=True,
                          check=False, timeout=60, env={**environ, **(env or {})})


def test_serve_runs_a_script_in_process_with_argv_main_and_exit_status(tmp_path):
    (tmp_path / "app.py").write_text(REPORT + "sys.exit(3)\n")
    done = run(tmp_path, "serve", "app.py", "arg1", "--flag")
    assert done.returncode == 3, done.stderr
    report = json.loads(done.stdout)
    assert report["argv"] == ["app.py", "arg1", "--flag"]
    assert report["name"] == "__main__"
    # serve with no DURAGRAPH_PPROF_ADDR: no listener at all
    assert not [t for t in report["threads"] if t.startswith("duragraph-pprof")], report


def test_serve_runs_a_module_with_m(tmp_path):
    (tmp_path / "mypkg").mkdir()
    (tmp_path / "mypkg" / "__init__.py").write_text("")
    (tmp_path / "mypkg" / "tool.py").write_text(REPORT + "sys.exit('bad input')\n")
    done = run(tmp_path, "serve", "-m", "mypkg.tool", "a", "b")
    assert done.returncode == 1
    assert done.stderr.strip().endswith("bad input")
    report = json.loads(done.stdout)
    assert report["argv"][1:] == ["a", "b"] and report["argv"][0].endswith("tool.py")
    assert report["name"] == "__main__"


def test_an_uncaught_exception_exits_1_with_the_traceback(tmp_path):
    (tmp_path / "app.py").write_text("raise RuntimeError('boom')\n")
    done = run(tmp_path, "serve", "app.py")
    assert done.returncode == 1
    assert "RuntimeError: boom" in done.stderr


def test_dev_listens_while_the_program_runs(tmp_path):
    # the program finds the running listener and fetches its own cmdline through it
    (tmp_path / "app.py").write_text(REPORT + textwrap.dedent("""
        import gc, urllib.request
        from duragraph_pprof.server.http import HttpListener
        [listener] = [o for o in gc.get_objects() if isinstance(o, HttpListener)]
        with urllib.request.urlopen(listener.url + "cmdline", timeout=10) as response:
            print(json.dumps(response.read().decode()))
    """))
    done = run(tmp_path, "dev", "app.py", "x y",
               env={"DURAGRAPH_PPROF_ADDR": "127.0.0.1:0", "DURAGRAPH_PPROF_GRPC_ADDR": "off"})
    assert done.returncode == 0, done.stderr
    report, cmdline = (json.loads(line) for line in done.stdout.splitlines())
    assert "duragraph-pprof-http-listener" in report["threads"]
    assert not [t for t in report["threads"] if "grpc" in t.lower()]
    assert cmdline == "app.py\x00x y"


def test_a_public_bind_is_refused_before_the_program_runs(tmp_path):
    (tmp_path / "app.py").write_text("open('ran', 'w').close()\n")
    done = run(tmp_path, "serve", "app.py", env={"DURAGRAPH_PPROF_ADDR": "0.0.0.0:0"})
    assert done.returncode == 2
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert "DURAGRAPH_PPROF_ADDR" in lines[0] and "0.0.0.0:0" in lines[0]
    assert "DURAGRAPH_PPROF_ALLOW_PUBLIC" in lines[0]
    assert not (tmp_path / "ran").exists()
    assert done.stdout == ""


def test_the_bypass_lets_a_public_bind_through_with_a_warning(tmp_path):
    (tmp_path / "app.py").write_text(REPORT + "open('ran', 'w').close()\n")
    done = run(tmp_path, "serve", "app.py", env={"DURAGRAPH_PPROF_ADDR": "0.0.0.0:0",
                                                 "DURAGRAPH_PPROF_ALLOW_PUBLIC": "true"})
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "ran").exists()
    assert "duragraph-pprof-http-listener" in json.loads(done.stdout)["threads"]
    assert "WARNING" in done.stderr and "DURAGRAPH_PPROF_ALLOW_PUBLIC=true" in done.stderr


def test_a_bad_value_exits_2_naming_the_variable(tmp_path):
    (tmp_path / "app.py").write_text("open('ran', 'w').close()\n")
    done = run(tmp_path, "serve", "app.py", env={"DURAGRAPH_PPROF_MAX_SECONDS": "lots"})
    assert done.returncode == 2
    assert len(done.stderr.splitlines()) == 1 and "DURAGRAPH_PPROF_MAX_SECONDS" in done.stderr
    assert not (tmp_path / "ran").exists()


def test_the_heap_shows_what_a_script_run_by_the_command_allocates(tmp_path):
    """The command's own frames sit under every allocation of the script's main thread; they
    must not hide the application's allocations as if they were the profiler's."""
    app = tmp_path / "hungry.py"
    app.write_text(textwrap.dedent("""
        import json
        from duragraph_pprof.core.heap import Heap

        def hoard():
            return [bytearray(1024) for _ in range(4000)]

        kept = hoard()
        profile = Heap(True, 16).profile()
        mine = sum(s.values[1] for s in profile.samples
                   if any(f.function.startswith("__main__.hoard") for f in s.stack))
        print(json.dumps({"bytes": mine}))
    """))
    done = run(tmp_path, "serve", str(app), env={"DURAGRAPH_PPROF_HEAP": "true"})
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["bytes"] >= 4000 * 1024
