"""Benchmarks: overhead (with a GIL hand-off control), the peer profiler, one core for all, load,
accuracy, heap, goroutines and OTLP, as ratios measured side by side."""
