#!/usr/bin/env bash
# Benchmarks of issue 3, ferrygate beside nats-server in the same run:
#   1. idle memory per connection (15,000 connections, the server's VmRSS),
#      unsubscribed and subscribed to one channel
#   2. fan-out to 1,000 subscribers on one channel, publish rate stepped up
# Servers run on CPU 0, the load tool on CPU 1 (taskset). Results: bench-results/.
# Run through `cargo xtask bench-fanout [conns|fanout|all]`, which builds first.
set -euo pipefail
cd "$(dirname "$0")/.."

what=${1:-all}
conns=${CONNS:-15000}
subscribers=${SUBSCRIBERS:-1000}
rates=${RATES:-1000,2000,5000,10000,20000,50000,100000}
step_secs=${STEP_SECS:-5}
server_cpu=${SERVER_CPU:-0}
load_cpu=${LOAD_CPU:-1}
out=bench-results
mkdir -p "$out"
load=target/release/ferrygate-load
gateway=target/release/ferrygate

if ! command -v nats-server >/dev/null; then
  echo "installing nats-server (Debian package)" >&2
  apt-get update -qq && apt-get install -y -qq nats-server >/dev/null
fi
ulimit -n "$(ulimit -Hn)"

pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

start_ferrygate() {
  taskset -c "$server_cpu" "$gateway" serve --config bench/ferrygate.toml 2>"$out/ferrygate.log" &
  pids+=($!); server_pid=$!
  for _ in $(seq 100); do curl -sf http://127.0.0.1:18080/readyz >/dev/null && return; sleep 0.1; done
  echo "ferrygate did not start" >&2; exit 1
}

start_nats() {
  taskset -c "$server_cpu" nats-server -c bench/nats-ws.conf 2>"$out/nats.log" &
  pids+=($!); server_pid=$!
  for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/19222) 2>/dev/null && return; sleep 0.1; done
  echo "nats-server did not start" >&2; exit 1
}

stop_server() { kill "$server_pid"; wait "$server_pid" 2>/dev/null || true; }

run_load() { taskset -c "$load_cpu" "$load" --max-secs 600 "$@"; }

if [[ $what == all || $what == conns ]]; then
  # Each server twice: connections left unsubscribed, then each subscribed to
  # one channel (one NATS subject), a fresh server for every run.
  for sub in "" idle; do
    suffix=${sub:+-subscribed}
    start_ferrygate
    run_load conns --target ferrygate --url ws://127.0.0.1:18080/ws --count "$conns" \
      ${sub:+--subscribe "$sub"} --sources 127.0.0.1-8 --server-pid "$server_pid" \
      --json "$out/conns-ferrygate$suffix.json"
    stop_server
    start_nats
    run_load conns --target nats --url ws://127.0.0.1:19222 --count "$conns" \
      ${sub:+--subscribe "$sub"} --sources 127.0.0.1-8 --server-pid "$server_pid" \
      --json "$out/conns-nats$suffix.json"
    stop_server
  done
fi

if [[ $what == all || $what == fanout ]]; then
  start_ferrygate
  run_load fanout --target ferrygate --url ws://127.0.0.1:18080/ws --subscribers "$subscribers" \
    --rates "$rates" --step-secs "$step_secs" --sources 127.0.0.1-8 --server-pid "$server_pid" \
    --json "$out/fanout-ferrygate.json"
  stop_server
  start_nats
  run_load fanout --target nats --url ws://127.0.0.1:19222 --subscribers "$subscribers" \
    --rates "$rates" --step-secs "$step_secs" --sources 127.0.0.1-8 --server-pid "$server_pid" \
    --json "$out/fanout-nats.json"
  stop_server
fi
