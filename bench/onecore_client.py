"""A profile client in its own process for the one-core benchmark:
`python -m bench.onecore_client http URL` or `python -m bench.onecore_client grpc HOST:PORT SECONDS`.
Exits non-zero with a message when the profile does not arrive."""

from __future__ import annotations

import sys
import urllib.request


def main(argv: list[str]) -> int:
    kind, target = argv[0], argv[1]
    if kind == "http":
        with urllib.request.urlopen(target, timeout=600) as response:
            if response.status != 200 or not response.read():
                print(f"HTTP {response.status}", file=sys.stderr)
                return 1
        return 0
    import grpc

    from duragraph_pprof._gen.duragraph.pprof.v1 import profiler_pb2 as pb
    from duragraph_pprof._gen.duragraph.pprof.v1 import profiler_pb2_grpc as pb_grpc

    seconds = int(argv[2])
    with grpc.insecure_channel(target) as channel:
        stub = pb_grpc.ProfilerServiceStub(channel)
        body = b"".join(m.data for m in stub.GetProfile(
            pb.GetProfileRequest(name="profile", seconds=seconds), timeout=seconds + 30))
    if not body:
        print("empty gRPC profile", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
