"""The last profiles the page loaded, per profiling core: their bytes for download (the same bytes
`go tool pprof` reads) and the files their source view may read. Bounded by count and size."""

from __future__ import annotations

import secrets
import threading
import weakref
from collections import OrderedDict
from dataclasses import dataclass

MAX_PROFILES = 16
MAX_BYTES = 64 << 20


@dataclass(frozen=True, slots=True)
class Stored:
    name: str
    body: bytes
    files: frozenset[str]


class Store:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: OrderedDict[str, Stored] = OrderedDict()

    def add(self, item: Stored) -> str:
        key = secrets.token_hex(8)
        with self._lock:
            self._items[key] = item
            while len(self._items) > MAX_PROFILES or (
                    len(self._items) > 1 and sum(len(i.body) for i in self._items.values())
                    > MAX_BYTES):
                self._items.popitem(last=False)
        return key

    def get(self, key: str) -> Stored | None:
        with self._lock:
            return self._items.get(key)


# weak: a stopped profiler's core takes its stored profiles with it
_stores: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_stores_lock = threading.Lock()


def store_for(owner: object) -> Store:
    with _stores_lock:
        store = _stores.get(owner)
        if store is None:
            store = _stores[owner] = Store()
        return store
