"""Run the real OpenTelemetry Collector for tests.

The collector is built from ``scripts/otelcol/manifest.yaml`` by ``scripts/build-collector.sh``
(cached outside the repository, so this is fast after the first build). If it can be neither
found nor built, :func:`collector_binary` raises: tests that need the collector fail, they are
never skipped.

Usage::

    with running_collector(tmp_path) as collector:
        send_something(collector.grpc_endpoint)          # "127.0.0.1:PORT"
        collector.wait_for(lambda: collector.profiles())
        collector.stop()                                 # SIGTERM: the file exporter flushes
        collector.start()                                # same ports, same output files

Output is read from the file exporter's ``format: proto`` files: each record is a 4-byte
big-endian length followed by a serialized ``ProfilesData`` / ``MetricsData``.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

from google.protobuf.message import Message
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.metrics.v1.metrics_pb2 import MetricsData
from opentelemetry.proto.profiles.v1development.profiles_pb2 import ProfilesData

from .waiting import wait_for

__all__ = [
    "Collector",
    "CollectorError",
    "attributes_dict",
    "collector_binary",
    "read_records",
    "running_collector",
    "wait_for",
]

REPO_ROOT = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = REPO_ROOT / "scripts" / "build-collector.sh"

FEATURE_GATES = "service.profilesSupport"
READY_LINE = "Everything is ready"
STARTUP_TIMEOUT = 30.0
STOP_TIMEOUT = 30.0
BUILD_TIMEOUT = 1800.0
START_ATTEMPTS = 3
LOG_TAIL_CHARS = 6000

T = TypeVar("T")
M = TypeVar("M", bound=Message)


class CollectorError(RuntimeError):
    """The collector could not be built, started or stopped."""


_binary: Path | None = None


def collector_binary() -> Path:
    """Path of the test collector, building it on first use (cached across runs and clones)."""
    global _binary
    if _binary is not None and os.access(_binary, os.X_OK):
        return _binary
    try:
        result = subprocess.run(
            ["bash", str(BUILD_SCRIPT)],
            cwd=REPO_ROOT,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=BUILD_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise CollectorError(f"could not run {BUILD_SCRIPT}: {exc}") from exc
    if result.returncode != 0:
        raise CollectorError(
            f"{BUILD_SCRIPT} failed with exit status {result.returncode}:\n{_tail(result.stderr)}"
        )
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    if not lines:
        raise CollectorError(f"{BUILD_SCRIPT} printed no binary path:\n{_tail(result.stderr)}")
    path = Path(lines[-1].strip())
    if not (path.is_file() and os.access(path, os.X_OK)):
        raise CollectorError(f"{BUILD_SCRIPT} printed {path}, which is not an executable file")
    _binary = path
    return path


def read_records(path: Path, message_type: type[M]) -> list[M]:
    """Decode a file exporter ``format: proto`` file; an incomplete last record is ignored."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    records: list[M] = []
    pos = 0
    while pos + 4 <= len(data):
        size = int.from_bytes(data[pos : pos + 4], "big")
        end = pos + 4 + size
        if end > len(data):
            break  # still being written
        records.append(message_type.FromString(data[pos + 4 : end]))
        pos = end
    return records


def attributes_dict(
    key_values: Iterable[common_pb2.KeyValue], string_table: Sequence[str] = ()
) -> dict[str, Any]:
    """``KeyValue``s as a plain dict.

    The collector re-encodes profile resource/scope attributes with ``key_strindex`` and
    ``string_value_strindex`` into the dictionary's ``string_table`` instead of inline strings;
    pass that table to resolve them. Arrays and key-value lists stay ``AnyValue`` messages.
    """
    result: dict[str, Any] = {}
    for kv in key_values:
        key = kv.key or string_table[kv.key_strindex]
        value = kv.value
        kind = value.WhichOneof("value")
        if kind == "string_value_strindex":
            result[key] = string_table[value.string_value_strindex]
        elif kind in ("array_value", "kvlist_value"):
            result[key] = getattr(value, kind)
        elif kind is None:
            result[key] = None
        else:
            result[key] = getattr(value, kind)
    return result


class Collector:
    """One collector process on loopback ports; may be stopped and started again."""

    def __init__(self, binary: Path, workdir: Path) -> None:
        self.binary = binary
        self.workdir = workdir
        self.config_path = workdir / "otelcol.yaml"
        self.log_path = workdir / "otelcol.log"
        self.profiles_path = workdir / "profiles.pb"
        self.metrics_path = workdir / "metrics.pb"
        self.grpc_port = 0
        self.http_port = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_offset = 0

    # -- addresses -------------------------------------------------------------------------

    @property
    def grpc_endpoint(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def http_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    # -- output ----------------------------------------------------------------------------

    def profiles(self) -> list[ProfilesData]:
        """Every ``ProfilesData`` the collector has written so far (across restarts)."""
        return read_records(self.profiles_path, ProfilesData)

    def metrics(self) -> list[MetricsData]:
        """Every ``MetricsData`` the collector has written so far (across restarts)."""
        return read_records(self.metrics_path, MetricsData)

    def pushed_pids(self, service: str) -> set[int]:
        """The `process.pid` of every resource of `service.name` `service` that pushed profiles."""
        seen = set()
        for data in self.profiles():
            table = data.dictionary.string_table
            for rp in data.resource_profiles:
                resource = attributes_dict(rp.resource.attributes, table)
                if resource.get("service.name") == service:
                    seen.add(int(resource["process.pid"]))
        return seen

    def log(self) -> str:
        """The collector's combined stdout/stderr, across restarts."""
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def wait_for(
        self,
        predicate: Callable[[], T],
        timeout: float = 10.0,
        interval: float = 0.05,
        description: str | None = None,
    ) -> T:
        """Like :func:`wait_for`, with the collector's log in the error."""
        try:
            return wait_for(predicate, timeout, interval, description)
        except TimeoutError as exc:
            state = "running" if self.running else "not running"
            raise TimeoutError(
                f"{exc} (collector {state}); collector log:\n{_tail(self.log())}"
            ) from None

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Start (again) on the ports already chosen, appending to the same output files."""
        if self.running:
            raise CollectorError("the collector is already running")
        if not self.grpc_port:
            raise CollectorError("start_fresh() has not chosen ports yet")
        self._launch()

    def start_fresh(self) -> None:
        """First start: empty output files, new OS-chosen ports, up to START_ATTEMPTS tries."""
        if self.running:
            raise CollectorError("the collector is already running")
        self.workdir.mkdir(parents=True, exist_ok=True)
        for path in (self.profiles_path, self.metrics_path):
            path.unlink(missing_ok=True)
        errors: list[str] = []
        for attempt in range(1, START_ATTEMPTS + 1):
            self.grpc_port, self.http_port = _free_ports(2)
            self._write_config()
            try:
                self._launch()
                return
            except CollectorError as exc:
                errors.append(
                    f"attempt {attempt} (ports {self.grpc_port}, {self.http_port}): {exc}"
                )
        raise CollectorError("the collector did not start:\n" + "\n\n".join(errors))

    def stop(self, timeout: float = STOP_TIMEOUT) -> int | None:
        """SIGTERM and wait (the file exporters flush on shutdown). Idempotent.

        Returns the exit status, or None when nothing was running.
        """
        proc, self._proc = self._proc, None
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                raise CollectorError(
                    f"the collector ignored SIGTERM for {timeout} s and was killed; log:\n"
                    f"{_tail(self.log())}"
                ) from None
        return proc.returncode

    def _write_config(self) -> None:
        file_exporter = {"format": "proto", "append": True, "flush_interval": "100ms"}
        config = {
            "receivers": {
                "otlp": {
                    "protocols": {
                        "grpc": {"endpoint": self.grpc_endpoint},
                        "http": {"endpoint": f"127.0.0.1:{self.http_port}"},
                    }
                }
            },
            "processors": {"batch": {"timeout": "200ms"}},
            "exporters": {
                "file/profiles": {"path": str(self.profiles_path), **file_exporter},
                "file/metrics": {"path": str(self.metrics_path), **file_exporter},
                "debug": {"verbosity": "basic"},
            },
            "service": {
                "telemetry": {"metrics": {"level": "none"}},
                "pipelines": {
                    "metrics": {
                        "receivers": ["otlp"],
                        "processors": ["batch"],
                        "exporters": ["file/metrics", "debug"],
                    },
                    # No batch processor here: it does not support profiles.
                    "profiles": {
                        "receivers": ["otlp"],
                        "exporters": ["file/profiles", "debug"],
                    },
                },
            },
        }
        # JSON is valid YAML.
        self.config_path.write_text(json.dumps(config, indent=2) + "\n")

    def _launch(self) -> None:
        with open(self.log_path, "ab") as log:
            self._log_offset = log.tell()
            proc = subprocess.Popen(
                [
                    str(self.binary),
                    f"--config={self.config_path}",
                    f"--feature-gates={FEATURE_GATES}",
                ],
                cwd=self.workdir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self._proc = proc
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            if proc.poll() is not None:
                self._proc = None
                raise CollectorError(
                    f"the collector exited with status {proc.returncode} during startup; log:\n"
                    f"{_tail(self._current_log())}"
                )
            if (
                READY_LINE in self._current_log()
                and _accepts(self.grpc_port)
                and _accepts(self.http_port)
            ):
                return
            if time.monotonic() >= deadline:
                self.stop()
                raise CollectorError(
                    f"the collector was not ready within {STARTUP_TIMEOUT} s; log:\n"
                    f"{_tail(self._current_log())}"
                )
            time.sleep(0.05)

    def _current_log(self) -> str:
        """The log written since the last launch."""
        try:
            with open(self.log_path, "rb") as log:
                log.seek(self._log_offset)
                return log.read().decode(errors="replace")
        except FileNotFoundError:
            return ""


@contextlib.contextmanager
def running_collector(workdir: Path) -> Iterator[Collector]:
    """Build (if needed) and start a collector writing into ``workdir``; stop it on exit."""
    collector = Collector(collector_binary(), Path(workdir))
    collector.start_fresh()
    try:
        yield collector
    finally:
        collector.stop()


def _free_ports(count: int) -> list[int]:
    # The collector cannot report the ports it bound, so pick free ones and hand them over.
    # Racy by nature; start_fresh() retries with new ports when the bind fails.
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sockets.append(sock)
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _tail(text: str, limit: int = LOG_TAIL_CHARS) -> str:
    text = text.rstrip()
    if len(text) <= limit:
        return text
    return "...\n" + text[-limit:]
