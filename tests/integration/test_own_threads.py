"""Every thread the profiler or its gRPC server starts is named as ours, so the sampler leaves
it out and the goroutine dump says whose it is."""

from __future__ import annotations

import re
import threading
import urllib.request

import duragraph_pprof


def test_grpc_threads_are_named_as_ours_in_the_process_and_in_the_dump():
    before = {t.ident for t in threading.enumerate()}
    profiler = duragraph_pprof.start("serve", environ={}, http_addr="127.0.0.1:0",
                                     grpc_addr="127.0.0.1:0")
    try:
        started = [t.name for t in threading.enumerate() if t.ident not in before]
        host, port = profiler.http_address[:2]
        url = f"http://{host}:{port}/debug/pprof/goroutine?debug=2"
        with urllib.request.urlopen(url, timeout=10) as response:
            dump = response.read().decode()
    finally:
        profiler.stop()
    assert "duragraph-pprof-grpc-serve" in started, started
    assert all(name.startswith("duragraph-pprof") for name in started), started
    named = re.findall(r'^goroutine \d+ \[[^]]*, thread "([^"]*)"\]:', dump, re.MULTILINE)
    assert "duragraph-pprof-grpc-serve" in named, named
    assert not [n for n in named if "_serve" in n and not n.startswith("duragraph-pprof")]
