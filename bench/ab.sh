#!/usr/bin/env bash
# One fan-out step against a given ferrygate binary, for A/B comparisons of two
# builds: run `bench/ab.sh A RATE; bench/ab.sh B RATE` alternately several
# times, so that the machine's drift hits both alike (single runs on a shared
# VM vary by up to 30%). Prints p50/p99, the load tool's CPU and frames per
# socket write. Server on CPU 0, load tool on CPU 1; 1,000 subscribers.
# usage: [CONFIG=bench/ferrygate-transform.toml] bench/ab.sh BINARY RATE [SUBSCRIBERS]
set -euo pipefail
cd "$(dirname "$0")/.."
binary=$1 rate=$2 subscribers=${3:-1000}
ulimit -n "$(ulimit -Hn)"
taskset -c 0 "$binary" serve --config "${CONFIG:-bench/ferrygate.toml}" 2>/dev/null &
server=$!
trap 'kill $server 2>/dev/null || true; wait $server 2>/dev/null || true' EXIT
for _ in $(seq 100); do curl -sf http://127.0.0.1:18080/readyz >/dev/null && break; sleep 0.1; done
taskset -c 1 target/release/ferrygate-load fanout --url ws://127.0.0.1:18080/ws \
  --subscribers "$subscribers" --rates "$rate" --step-secs 5 --sources 127.0.0.1-8 \
  --server-pid "$server" 2>&1 | awk '/^ +[0-9]+ /{printf "deliv/s %s  loss %s  p50 %s ms  p99 %s ms  srv %s%%  load %s%%  ", $3, $7, $4, $5, $11, $12}'
curl -s http://127.0.0.1:18080/metrics \
  | awk '/^ferrygate_frames_delivered_total/{f=$2} /^ferrygate_write_batches_total/{b=$2} END{printf "frames/write %.1f\n", f/b}'
