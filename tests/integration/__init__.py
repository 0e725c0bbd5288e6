"""The integration layer: real listeners, go tool pprof, the Collector, grpcurl, browsers."""
