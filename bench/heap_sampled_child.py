"""The sampled heap's child processes: `python heap_sampled_child.py MODE ARGS`, one JSON line.

- `rate CONFIG MIX BLOCK_S WARM_S`: units of MIX (`alloc` or `request`) per CPU second of the
  whole process, under one heap CONFIG started before the warm-up:
  `none`; `sampled` (`duragraph_pprof.start("serve")` with its defaults: the sampled heap at
  512 KiB, the HTTP listener on a loopback port); `exact` (the same with
  DURAGRAPH_PPROF_HEAP=exact: tracemalloc, depth 16); `off` (the same with the heap off: the
  listener alone, the control); `pyroscope` (pyroscope-io's memory sampler
  at its default 512 KiB, in the peer's own virtual environment, importing nothing of ours).
- `pairs MIX ROUNDS BLOCK_S WARM_S`: the same rate in one process, in ROUNDS rounds of three
  blocks in a fresh random order: `none`, `sampled` and `off`, the profiler started before each
  of the last two and stopped after it. Blocks of one process share its heap layout, so a
  round's ratios leave out what differs between processes.
- `take OBJECTS REPS`: the sampled heap with OBJECTS live objects; CPU and wall time of
  SampledHeap.profile() and of GET /debug/pprof/heap, interleaved.
- `count CONFIG MIX UNITS`: UNITS units of MIX and nothing else, for an instruction count taken
  from outside (bench/heap_instructions.py): `none`, or `sampled` (the sampled heap's hooks alone,
  at serve's rate and depth: no sampler thread or listener, whose ticks would pile up on a
  program slowed fifty-fold). Both import the same modules first.
- `probe`: pyroscope-io's version.
"""

from __future__ import annotations

import gc
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.heap_workloads import alloc_mix, live_items, nest, request_mix

UNITS = {"alloc": lambda: alloc_mix(2000), "request": lambda: request_mix(300)}
STACK = 30  # frames of application stack under each unit


def start_ours(heap: str):
    import duragraph_pprof

    environ = {"DURAGRAPH_PPROF_HEAP": heap}
    return duragraph_pprof.start("serve", environ=environ, http_addr="127.0.0.1:0",
                                 grpc_addr=None)


def start_pyroscope() -> dict:
    import pyroscope

    # the memory sampler alone (its CPU profiler off, as ours is between profile requests);
    # uploads go to a closed loopback port, so nothing leaves the machine
    ok = pyroscope.configure(application_name="duragraph-pprof-bench",
                             server_address="http://127.0.0.1:9", mem_enabled=True,
                             cpu_enabled=False)
    return {"configured": bool(ok)}


_running: list = []  # the profiler, running until the process ends


def start(config: str) -> dict:
    if config == "none":
        return {}
    if config == "pyroscope":
        return start_pyroscope()
    profiler = start_ours(config)
    _running.append(profiler)
    heap = profiler.core.heap
    return {"mode": heap.mode, "rate": heap.rate, "tracing": heap.tracing}


def obj_allocator() -> int:
    """The OBJ domain's malloc function: it changes when a hook is set."""
    import ctypes

    class Allocator(ctypes.Structure):
        _fields_ = [(name, ctypes.c_void_p) for name in ("ctx", "malloc", "calloc", "realloc",
                                                         "free")]

    found = Allocator()
    ctypes.pythonapi.PyMem_GetAllocator(ctypes.c_int(2), ctypes.byref(found))  # PYMEM_DOMAIN_OBJ
    return found.malloc or 0


def rate_mode(config: str, mix: str, block_s: float, warm_s: float) -> dict:
    before = obj_allocator()
    info = start(config)
    time.sleep(0.05)  # a peer's agent may finish setting up on its own thread
    info["hooked"] = obj_allocator() != before
    unit = UNITS[mix]

    def run() -> None:
        nest(STACK, unit)

    for seconds in (warm_s, block_s):
        gc.collect()
        c0, t0, n = time.process_time(), time.thread_time(), 0
        while time.process_time() - c0 < seconds:
            run()
            n += 1
        cpu, thread = time.process_time() - c0, time.thread_time() - t0
    return {"config": config, "mix": mix, "units": n, "per_cpu_s": n / cpu,
            "per_thread_s": n / thread, "info": info}


def _units_per_cpu_s(mix: str, seconds: float) -> float:
    unit = UNITS[mix]
    gc.collect()
    c0, n = time.process_time(), 0
    while time.process_time() - c0 < seconds:
        nest(STACK, unit)
        n += 1
    return n / (time.process_time() - c0)


def pairs_mode(mix: str, rounds: int, block_s: float, warm_s: float) -> dict:
    import random

    configs = ["none", "sampled", "off"]
    rng = random.Random(os.getpid())
    out: dict[str, list[float]] = {c: [] for c in configs}
    start_ours("sampled").stop()  # imports and first-time set-up, outside every block
    _units_per_cpu_s(mix, warm_s)
    for _ in range(rounds):
        rng.shuffle(configs)
        for config in configs:
            profiler = start_ours(config) if config != "none" else None
            try:
                _units_per_cpu_s(mix, 0.1)  # the profiler's threads settle in
                out[config].append(_units_per_cpu_s(mix, block_s))
            finally:
                if profiler is not None:
                    profiler.stop()
    return {"mix": mix, "rates": out}


def take_mode(objects: int, reps: int) -> dict:
    import urllib.request

    from duragraph_pprof.core.native import _native

    profiler = start_ours("sampled")
    heap = profiler.core.heap
    keep = live_items(objects)
    gc.collect()
    host, port = profiler.http_address[:2]
    url = f"http://{host}:{port}/debug/pprof/heap"

    def fetch() -> int:
        with urllib.request.urlopen(url, timeout=30) as answer:
            return len(answer.read())

    def timed(fn) -> tuple[float, float]:
        c0, w0 = time.process_time(), time.perf_counter()
        fn()
        return time.process_time() - c0, time.perf_counter() - w0

    first = timed(heap.profile)  # resolves each stack's frames once; later calls reuse them
    out: dict[str, list[float]] = {"profile_cpu": [], "profile_wall": [], "http_cpu": [],
                                   "http_wall": []}
    for i in range(reps):
        for name, fn in sorted((("profile", heap.profile), ("http", fetch)),
                               key=lambda kv: (kv[0] == "http") ^ (i % 2)):
            cpu, wall = timed(fn)
            out[f"{name}_cpu"].append(cpu)
            out[f"{name}_wall"].append(wall)
    profile = heap.profile()
    _, _, rows, stats = _native.heap_snapshot()
    ours = [s for s in profile.samples if any(f.filename.endswith("heap_workloads.py")
                                              for f in s.stack)]
    estimate = sum(s.values[2] for s in ours)
    body = fetch()
    del keep
    return {"objects": objects, "first_cpu": first[0], "first_wall": first[1],
            "live_records": stats["live"], "stacks": len(rows), "samples": len(profile.samples),
            "estimated_objects": estimate, "body_bytes": body, **out}


def count_mode(config: str, mix: str, units: int) -> dict:
    from duragraph_pprof.config import SERVE, load_config
    from duragraph_pprof.core.sampled_heap import SampledHeap

    settings = load_config({}, SERVE)
    heap = SampledHeap(settings.heap_rate, settings.heap_depth)
    if config == "sampled":
        heap.start()
    unit = UNITS[mix]
    for _ in range(units):
        nest(STACK, unit)
    return {"config": config, "mix": mix, "units": units, "on": heap.tracing}


def main(argv: list[str]) -> int:
    mode = argv[0]
    if mode == "probe":
        from importlib.metadata import version

        out = {"version": version("pyroscope-io")}
    elif mode == "rate":
        out = rate_mode(argv[1], argv[2], float(argv[3]), float(argv[4]))
    elif mode == "pairs":
        out = pairs_mode(argv[1], int(argv[2]), float(argv[3]), float(argv[4]))
    elif mode == "count":
        out = count_mode(argv[1], argv[2], int(argv[3]))
    elif mode == "take":
        out = take_mode(int(argv[1]), int(argv[2]))
    else:
        raise SystemExit(f"unknown mode {mode!r}")
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
