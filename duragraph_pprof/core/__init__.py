"""The one profiling core: the only layer with side effects (threads, clocks, tracemalloc, locks)."""
