"""The heap benchmarks' workloads: an allocation-heavy mix, a request-like mix and a large live
heap from many call paths.

Standard library only (bench/workloads.py reads thread clocks through the package), so a peer's
child in its own virtual environment runs them without importing anything of ours.
"""

from __future__ import annotations

import collections
import json


def nest(depth: int, fn, *args):
    """fn(*args), `depth` frames below the caller: an application's stack."""
    return fn(*args) if depth <= 0 else nest(depth - 1, fn, *args)


def alloc_mix(rounds: int) -> list:
    """Dicts, strings and lists built in a loop, a tenth of them kept (until the caller drops the
    list it returns): about 1 KB allocated a round, nothing else done with it."""
    kept = []
    for i in range(rounds):
        name = f"user-{i}"
        record = {"id": i, "name": name, "tags": [name, str(i * 7)], "score": i % 100}
        line = ",".join((name, record["tags"][1], "x" * (i % 32)))
        row = [record, line, [i, i + 1, i + 2, i + 3]]
        if i % 10 == 0:
            kept.append(row)
    return kept


def request_mix(rounds: int) -> None:
    """A request-handling mix: dicts, strings, lists, small objects, a rolling live set."""
    live: collections.deque = collections.deque(maxlen=2000)
    for i in range(rounds):
        request = {"id": i, "path": f"/items/{i % 97}", "headers": {"a": "b" * (i % 13)}}
        items = [(k, str(v)) for k, v in request.items()]
        text = json.dumps(request)
        parsed = json.loads(text)
        live.append((items, parsed["path"].split("/"), Point(i, i + 1)))


class Point:
    __slots__ = ("x", "y")

    def __init__(self, x: int, y: int) -> None:
        self.x, self.y = x, y


def _alloc(keep: list, n: int, site: int) -> None:
    for i in range(n):
        kind = (i + site) % 4
        if kind == 0:
            keep.append(f"item-{site}-{i}")
        elif kind == 1:
            keep.append([i, site])
        elif kind == 2:
            keep.append((i, site, None))
        else:
            keep.append({"i": i})


def live_items(items: int, sites: int = 100) -> list:
    """`items` live objects (strings, lists, tuples, dicts in turn) from `sites` distinct call
    paths, 0 to 19 frames deep."""
    keep: list = []
    for site in range(sites):
        nest(site % 20, _alloc, keep, items // sites, site)
    return keep
