#!/usr/bin/env bash
# The main job: set up, start `duragraph-pprof dev` on its demo workload, and walk the runbook
# against it with curl, an unmodified `go tool pprof` and grpcurl. Leaves its files in
# .build/demo. Ports: DURAGRAPH_PPROF_ADDR / DURAGRAPH_PPROF_GRPC_ADDR (dev defaults 6060/6061).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
grpcurl=$(bash scripts/install-go-tools.sh | tail -n 1)
addr=${DURAGRAPH_PPROF_ADDR:-127.0.0.1:6060}
grpc_addr=${DURAGRAPH_PPROF_GRPC_ADDR:-127.0.0.1:6061}
url="http://$addr/debug/pprof"
out=.build/demo
mkdir -p "$out"
export PPROF_TMPDIR="$out"

DURAGRAPH_PPROF_ADDR=$addr DURAGRAPH_PPROF_GRPC_ADDR=$grpc_addr \
DURAGRAPH_PPROF_MUTEX_FRACTION=1 DURAGRAPH_PPROF_BLOCK_FRACTION=1 \
  .venv/bin/duragraph-pprof dev >"$out/dev.log" 2>&1 &
pid=$!
trap 'kill -TERM $pid 2>/dev/null || true' EXIT
for _ in $(seq 100); do
  curl -sf "$url/" >/dev/null 2>&1 && break
  kill -0 $pid 2>/dev/null || { cat "$out/dev.log"; exit 1; }
  sleep 0.2
done
cat "$out/dev.log"
sleep 3  # let start-up imports settle, so the heap diff shows the workload
step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }

step "curl -s '$url/goroutine?debug=2' | grep -c '^goroutine'"
curl -s "$url/goroutine?debug=2" | grep -c '^goroutine'

step "curl -o before.pprof $url/heap; sleep 5; curl -o after.pprof $url/heap"
curl -sf -o "$out/before.pprof" "$url/heap"
sleep 5
curl -sf -o "$out/after.pprof" "$url/heap"
step "go tool pprof -top -base=before.pprof after.pprof"
go tool pprof -top -nodecount=8 -base="$out/before.pprof" "$out/after.pprof"

step "go tool pprof -top '$url/profile?seconds=5'"
go tool pprof -top -nodecount=8 "$url/profile?seconds=5"

step "go tool pprof -top '$url/mutex'"
go tool pprof -top -nodecount=5 "$url/mutex"

step "curl -o trace.json '$url/trace?seconds=1'   # open in ui.perfetto.dev"
curl -sf -o "$out/trace.json" "$url/trace?seconds=1"
.venv/bin/python -c "import json,sys; d=json.load(open(sys.argv[1])); print(len(d['traceEvents']), 'trace events')" "$out/trace.json"

step "grpcurl -plaintext $grpc_addr list"
"$grpcurl" -plaintext "$grpc_addr" list

kill -TERM $pid  # a background job ignores SIGINT; the demo stops cleanly on SIGTERM
wait $pid
trap - EXIT
printf '\ndemo done: profiles and logs are in %s\n' "$out"
