"""Fork: the child runs, nothing deadlocks, and a listening socket is never served by two
processes; a worker that wants profiling starts its own profiler."""

from __future__ import annotations

import multiprocessing
import os
import urllib.request

import duragraph_pprof


def _get(address, path: str = "cmdline") -> int:
    url = f"http://{address[0]}:{address[1]}/debug/pprof/{path}"
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status


def _child_work(queue) -> None:
    profiler = duragraph_pprof.start("serve", environ={}, http_addr="127.0.0.1:0")
    try:
        queue.put((os.getpid(), _get(profiler.http_address)))
    finally:
        profiler.stop()


def test_os_fork_child_runs_and_parent_keeps_serving():
    profiler = duragraph_pprof.start("serve", environ={}, http_addr="127.0.0.1:0",
                                     grpc_addr="127.0.0.1:0")
    window = profiler.core.sampler.open_window()  # the sampler is running at fork time
    try:
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child reports through the pipe
            code = 1
            try:
                inherited = (profiler.http, profiler.push, profiler.core.sampler.stats())
                ok = inherited[0] is None and inherited[1] is None and inherited[2].running_threads == 0
                own = duragraph_pprof.start("serve", environ={}, http_addr="127.0.0.1:0")
                ok = ok and _get(own.http_address) == 200
                own.stop()
                code = 0 if ok else 3
            finally:
                os.write(write, bytes([code]))
                os._exit(code)
        os.close(write)
        _, status = os.waitpid(pid, 0)
        assert os.read(read, 1) == b"\x00" and os.waitstatus_to_exitcode(status) == 0
        os.close(read)
        assert _get(profiler.http_address) == 200
    finally:
        window.close()
        profiler.stop()


def test_multiprocessing_fork_workers_profile_themselves():
    profiler = duragraph_pprof.start("serve", environ={}, http_addr="127.0.0.1:0")
    try:
        context = multiprocessing.get_context("fork")
        queue = context.Queue()
        workers = [context.Process(target=_child_work, args=(queue,)) for _ in range(2)]
        for worker in workers:
            worker.start()
        results = [queue.get(timeout=30) for _ in workers]
        for worker in workers:
            worker.join(timeout=30)
            assert worker.exitcode == 0
        assert {status for _, status in results} == {200}
        assert len({pid for pid, _ in results}) == 2
        assert _get(profiler.http_address) == 200
        queue.close()
        queue.join_thread()
    finally:
        profiler.stop()
