#!/usr/bin/env bash
# Cross-instance fan-out (issue 6): the fan-out scenario of bench/fanout.sh with
# the subscribers split over two ferrygate instances on one broker, the
# publisher on instance A. Runs on NATS, on Redis, and single-instance (memory
# broker) as the baseline, back to back. Broker and gateways share CPU 0, the
# load tool gets CPU 1 (this VM has two). Per run: the load tool's table
# (delivered msgs/s, p50/p99), CPU of each process over the run, and broker
# messages per published message (from the gateways' own counters: one out,
# one in per interested instance). Results: bench-results/cluster-*.
# Run through `cargo xtask bench-cluster [nats|redis|single|all]`, which builds first.
set -euo pipefail
cd "$(dirname "$0")/.."

what=${1:-all}
subscribers=${SUBSCRIBERS:-1000}
rates=${RATES:-1000,5000,10000,20000}
step_secs=${STEP_SECS:-5}
server_cpu=${SERVER_CPU:-0}
load_cpu=${LOAD_CPU:-1}
out=bench-results
mkdir -p "$out"
load=target/release/ferrygate-load
gateway=target/release/ferrygate
a=127.0.0.1:18081
b=127.0.0.1:18082
ulimit -n "$(ulimit -Hn)"

pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

wait_port() { for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return; sleep 0.1; done; echo "port $1 never opened" >&2; exit 1; }
wait_ready() { for _ in $(seq 100); do curl -sf "http://$1/readyz" >/dev/null && return; sleep 0.1; done; echo "$1 not ready" >&2; exit 1; }
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
metric() { curl -s "http://$1/metrics" | awk -v s="$2" '$1 == s {v = $2} END {printf "%d\n", v}'; }

start_gateway() { # name manifest listen
  taskset -c "$server_cpu" "$gateway" serve --config "$2" --listen "$3" 2>"$out/cluster-$1.log" &
  pids+=($!)
  wait_ready "$3"
}

run() { # broker-kind
  local kind=$1 manifest broker_pid="" urls
  case $kind in
    nats)
      taskset -c "$server_cpu" nats-server -a 127.0.0.1 -p 14222 2>"$out/cluster-nats-server.log" &
      broker_pid=$!; pids+=($!); wait_port 14222; manifest=bench/cluster-nats.toml ;;
    redis)
      taskset -c "$server_cpu" redis-server --bind 127.0.0.1 --port 16379 --save '' --appendonly no >"$out/cluster-redis-server.log" 2>&1 &
      broker_pid=$!; pids+=($!); wait_port 16379; manifest=bench/cluster-redis.toml ;;
    single) manifest=bench/ferrygate.toml ;;
  esac
  start_gateway "$kind-a" "$manifest" "$a"; local pid_a=${pids[-1]}
  urls="ws://$a/ws"
  local pid_b=""
  if [[ $kind != single ]]; then
    start_gateway "$kind-b" "$manifest" "$b"; pid_b=${pids[-1]}
    urls="ws://$a/ws,ws://$b/ws"
  fi
  local in='ferrygate_broker_messages_in_total{kind="channel"}'
  local outs='ferrygate_broker_messages_out_total{kind="channel"}'
  in_sum() { if [[ -n $pid_b ]]; then echo $(( $(metric "$a" "$in") + $(metric "$b" "$in") )); else echo 0; fi; }
  local out0 in0 t0 ta0 tb0 tk0
  out0=$(metric "$a" "$outs"); in0=$(in_sum)
  t0=$(date +%s.%N); ta0=$(ticks "$pid_a"); tb0=${pid_b:+$(ticks "$pid_b")}; tk0=${broker_pid:+$(ticks "$broker_pid")}
  taskset -c "$load_cpu" "$load" --max-secs 600 fanout --url "ws://$a/ws" --subscriber-urls "$urls" \
    --subscribers "$subscribers" --rates "$rates" --step-secs "$step_secs" --sources 127.0.0.1-8 \
    --server-pid "$pid_a" --no-stop --json "$out/cluster-$kind.json" | tee "$out/cluster-$kind.txt"
  local t1 secs hz
  t1=$(date +%s.%N); secs=$(echo "$t1 - $t0" | bc -l); hz=$(getconf CLK_TCK)
  pct() { echo "scale=1; ($(ticks "$1") - $2) * 100 / $hz / $secs" | bc -l; }
  {
    echo "CPU over the whole run ($secs s, 100 = one core): gateway A $(pct "$pid_a" "$ta0")%" \
      "${pid_b:+gateway B $(pct "$pid_b" "$tb0")%} ${broker_pid:+broker $(pct "$broker_pid" "$tk0")%}"
    if [[ $kind != single ]]; then
      local published received
      published=$(( $(metric "$a" "$outs") - out0 ))
      received=$(( $(in_sum) - in0 ))
      echo "broker messages: $published published, $received delivered to instances:" \
        "$(echo "scale=2; ($published + $received) / $published" | bc -l) broker messages per published message"
    fi
  } | tee -a "$out/cluster-$kind.txt"
  cleanup; pids=()
}

for kind in single nats redis; do
  if [[ $what == all || $what == "$kind" ]]; then run "$kind"; fi
done
