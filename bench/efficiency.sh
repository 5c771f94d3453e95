#!/usr/bin/env bash
# Efficiency (issue 11): server CPU-seconds per million deliveries at fixed
# publish rates below saturation, for ferrygate and nats-server in one run.
# SUBSCRIBERS (1,000) on one channel, one publisher, 100-byte payloads, RATES
# (25,50,100 msg/s) for STEP_SECS (5) each, then up to GRACE_SECS (5) for
# late deliveries, every set-up back to back:
#   memory   one gateway, in-process broker (bench/ferrygate.toml)
#   nats-ws  nats-server with its WebSocket listener (bench/nats-ws.conf), the
#            peer of bench/fanout.sh
#   nats     two gateways on a nats-server broker, subscribers split evenly,
#            the publisher on gateway A (bench/cluster-nats.toml)
#   redis    the same on redis-server (bench/cluster-redis.toml)
# Every server process (gateways and broker) is pinned to SERVER_CPU (CPU 0),
# the load tool to LOAD_CPU (CPU 1). CPU is each process's utime + stime delta
# over the step (publishing plus the grace until the last delivery), read by
# `ferrygate-load fanout --cpu-pid`; the load tool's own CPU is in the same
# table, to show it is not the limit. A step counts only when the full rate was
# published and every message arrived exactly once, in order. WORKERS=N sets
# the gateways' `[server] workers`. Results: bench-results/efficiency-*.
# Run through `cargo xtask bench-efficiency [memory|nats-ws|nats|redis|all]`.
source "$(dirname "$0")/lib.sh"

what=${1:-all}
subscribers=${SUBSCRIBERS:-1000}
rates=${RATES:-25,50,100} # below saturation on a quiet 2-vCPU VM: docs/benchmarks.md section 12
step_secs=${STEP_SECS:-5}
grace_secs=${GRACE_SECS:-5} # late deliveries still count (a busy machine delays some by seconds)
a=127.0.0.1:$(port 18081)
b=127.0.0.1:$(port 18082)

# run SET-UP LOAD-ARGS...: the fan-out steps with the efficiency table.
measure() {
  local setup=$1; shift
  local result=$out/efficiency-$setup
  echo "$setup: servers on CPU $server_cpu, load tool on CPU $load_cpu, workers ${WORKERS:-default}," \
    "load average before: $(loadavg)" | tee "$result.txt"
  run_load fanout --subscribers "$subscribers" --rates "$rates" --step-secs "$step_secs" \
    --grace-secs "$grace_secs" --sources 127.0.0.1-8 --no-stop --json "$result.json" "$@" | tee -a "$result.txt"
  echo "load average after: $(loadavg)" | tee -a "$result.txt"
  stop_all
}

cluster() { # nats|redis
  start_broker "$1"
  start_gateway "efficiency-$1-a" "bench/cluster-$1.toml" "$a"; local pid_a=${pids[-1]}
  start_gateway "efficiency-$1-b" "bench/cluster-$1.toml" "$b"; local pid_b=${pids[-1]}
  measure "$1" --url "ws://$a/ws" --subscriber-urls "ws://$a/ws,ws://$b/ws" --server-pid "$pid_a" \
    --cpu-pid "gateway-a=$pid_a" --cpu-pid "gateway-b=$pid_b" --cpu-pid "$1-server=$broker_pid"
}

for setup in memory nats-ws nats redis; do
  [[ $what == all || $what == "$setup" ]] || continue
  case $setup in
    memory)
      start_gateway efficiency-memory bench/ferrygate.toml "$a"
      measure memory --url "ws://$a/ws" --server-pid "${pids[-1]}" --cpu-pid "gateway=${pids[-1]}" ;;
    nats-ws)
      start_nats_ws
      measure nats-ws --target nats --url ws://127.0.0.1:$nats_ws_port --server-pid "${pids[-1]}" \
        --cpu-pid "nats-server=${pids[-1]}" ;;
    nats | redis) cluster "$setup" ;;
  esac
done
