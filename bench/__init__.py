"""Benchmarks: overhead, accuracy, heap, goroutines and OTLP, as ratios measured side by side."""
