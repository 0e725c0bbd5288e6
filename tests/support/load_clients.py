"""Load clients, run in their own process so their CPU is not the application's:
``python -m support.load_clients HOST PORT SECONDS CLIENTS`` prints one JSON line with the
status counts, failures and latency percentiles. Each request is a fresh connection, as curl and
`go tool pprof` make them."""

from __future__ import annotations

import http.client
import json
import sys
import threading
import time
from collections import Counter

PATHS = ["/debug/pprof/", "/debug/pprof/cmdline", "/debug/pprof/goroutine?debug=1",
         "/debug/pprof/symbol"]


def run(host: str, port: int, seconds: float, clients: int) -> dict:
    statuses: Counter[str] = Counter()
    failures: Counter[str] = Counter()
    latencies: list[float] = []
    lock = threading.Lock()
    end = time.monotonic() + seconds

    def client(index: int) -> None:
        n = index
        while time.monotonic() < end:
            path = PATHS[n % len(PATHS)]
            n += 1
            began = time.monotonic()
            connection = http.client.HTTPConnection(host, port, timeout=30)
            try:
                connection.request("GET", path)
                response = connection.getresponse()
                body = response.read()
                key = str(response.status)
                if response.status == 200 and not body and "symbol" not in path:
                    key = "200-empty"
            except Exception as exc:  # noqa: BLE001 - every failure is counted, by type
                with lock:
                    failures[type(exc).__name__] += 1
                continue
            finally:
                connection.close()
            with lock:
                statuses[key] += 1
                latencies.append(time.monotonic() - began)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(seconds + 60)
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] if latencies else 0.0

    return {"statuses": dict(statuses), "failures": dict(failures), "requests": len(latencies),
            "p50_ms": pct(0.5) * 1000, "p99_ms": pct(0.99) * 1000, "max_ms": pct(1.0) * 1000}


if __name__ == "__main__":
    host, port, seconds, clients = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(
        sys.argv[4])
    print(json.dumps(run(host, port, seconds, clients)))
