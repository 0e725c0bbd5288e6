"""The native extension built with AddressSanitizer and UndefinedBehaviorSanitizer, running the
native sampler's and the sampled heap's tests in a child interpreter: any invalid read, write,
overflow or undefined behaviour in the C code ends that child with a sanitizer report."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FLAGS = "-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -g"


def _runtime(name: str) -> str:
    return subprocess.run(["gcc", f"-print-file-name={name}"], capture_output=True, text=True,
                          check=True).stdout.strip()


def test_native_sampler_tests_run_clean_under_asan_and_ubsan(tmp_path):
    env = dict(os.environ, DURAGRAPH_PPROF_NATIVE_CFLAGS=FLAGS,
               DURAGRAPH_PPROF_NATIVE_LDFLAGS="-fsanitize=address,undefined",
               DURAGRAPH_PPROF_NATIVE_REQUIRED="1")
    subprocess.run([sys.executable, "setup.py", "-q", "build_ext", "--build-temp",
                    str(tmp_path / "temp"), "--build-lib", str(tmp_path / "lib")],
                   cwd=ROOT, env=env, check=True, capture_output=True)
    suffix = sysconfig.get_config_var("EXT_SUFFIX")
    built = tmp_path / "lib" / "duragraph_pprof" / f"_native{suffix}"
    assert built.exists()
    # the sanitized build stands in for the installed one before anything imports it
    driver = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('duragraph_pprof._native', {str(built)!r})\n"
        "module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module)\n"
        "sys.modules['duragraph_pprof._native'] = module\n"
        "import duragraph_pprof.core.native as n\n"
        f"assert n._native.__file__ == {str(built)!r}, n._native.__file__\n"
        "import pytest\n"
        "sys.exit(pytest.main(['-q', '-p', 'no:cacheprovider', '-x', 'tests/integration/test_native.py',"
        " 'tests/integration/test_sampled_heap.py',"
        " 'tests/integration/test_runbook.py::test_cpu_profile_with_go_tool_pprof_and_wall_shows_the_sleeper']))\n"
    )
    child_env = dict(
        os.environ,
        LD_PRELOAD=f"{_runtime('libasan.so')} {_runtime('libubsan.so')}",
        # CPython frees little at exit by design: leaks are not what this looks for
        ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:halt_on_error=1",
        UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1",
        PYTHONPATH=str(ROOT),
    )
    result = subprocess.run([sys.executable, "-c", driver], cwd=ROOT, env=child_env,
                            capture_output=True, text=True, timeout=280, check=False)
    report = result.stdout[-3000:] + result.stderr[-6000:]
    assert result.returncode == 0, report
    assert "ERROR: AddressSanitizer" not in report and "runtime error" not in report, report
