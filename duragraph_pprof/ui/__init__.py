"""The flame-graph page at /debug/pprof/ui/: a static page (shipped in `static/`, no network
needed) that draws any profile the listener serves, from the very pprof bytes it serves."""

from .routes import UI_PATH, Reply, route

__all__ = ["UI_PATH", "Reply", "route"]
