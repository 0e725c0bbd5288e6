"""Load generator for the load benchmark, run in its own process so that its CPU is not the
application's GIL: `python load_client.py PORT CLIENTS SECONDS`. Prints one JSON line of counts
by outcome when done. Every client's loop is bounded in time and in count."""

from __future__ import annotations

import http.client
import json
import sys
import threading
import time
from collections import Counter

PATHS = ("/debug/pprof/", "/debug/pprof/cmdline", "/debug/pprof/goroutine?debug=1",
         "/debug/pprof/symbol")
MAX_REQUESTS = 200_000  # per client


def main(argv: list[str]) -> int:
    port, clients, seconds = int(argv[0]), int(argv[1]), float(argv[2])
    counts: Counter[str] = Counter()
    lock = threading.Lock()
    start = threading.Event()

    def client(index: int) -> None:
        mine: Counter[str] = Counter()
        start.wait()
        end = time.monotonic() + seconds
        for n in range(MAX_REQUESTS):
            if time.monotonic() >= end:
                break
            path = PATHS[(n + index) % len(PATHS)]
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                conn.request("GET", path)
                response = conn.getresponse()
                response.read()
                mine[str(response.status)] += 1
                conn.close()
            except (OSError, http.client.HTTPException) as exc:
                mine[type(exc).__name__] += 1
        with lock:
            counts.update(mine)

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(clients)]
    for t in threads:
        t.start()
    print("ready", flush=True)
    start.set()
    for t in threads:
        t.join(timeout=seconds + 30)
    print(json.dumps(dict(counts)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
