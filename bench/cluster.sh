#!/usr/bin/env bash
# Cross-instance fan-out (issue 6): the fan-out scenario of bench/fanout.sh with
# the subscribers split over two ferrygate instances on one broker, the
# publisher on instance A. Runs on NATS, on Redis, and single-instance (memory
# broker) as the baseline, back to back. Broker and gateways share SERVER_CPU
# (default CPU 0), the load tool gets LOAD_CPU (default CPU 1; this VM has
# two). WORKERS=N sets `[server] workers` in every gateway's manifest (issue
# 11: the worker counts compared; empty: the manifest's default, one per CPU
# the gateway may use). Per run: the load tool's table (delivered msgs/s,
# p50/p99), CPU of each process over the run, and broker messages per
# published message (from the gateways' own counters: one out, one in per
# interested instance). Results: bench-results/cluster-*[-wN].
# Run through `cargo xtask bench-cluster [nats|redis|single|all]`, which builds first.
source "$(dirname "$0")/lib.sh"

what=${1:-all}
subscribers=${SUBSCRIBERS:-1000}
rates=${RATES:-1000,5000,10000,20000}
step_secs=${STEP_SECS:-5}
a=127.0.0.1:$(port 18081)
b=127.0.0.1:$(port 18082)
suffix=${WORKERS:+-w$WORKERS}

run() { # broker-kind
  local kind=$1 manifest broker_pid="" urls
  case $kind in
    nats | redis) start_broker "$kind"; manifest=bench/cluster-$kind.toml ;;
    single) manifest=bench/ferrygate.toml ;;
  esac
  start_gateway "cluster-$kind-a" "$manifest" "$a"; local pid_a=${pids[-1]}
  urls="ws://$a/ws"
  local pid_b=""
  if [[ $kind != single ]]; then
    start_gateway "cluster-$kind-b" "$manifest" "$b"; pid_b=${pids[-1]}
    urls="ws://$a/ws,ws://$b/ws"
  fi
  local in='ferrygate_broker_messages_in_total{kind="channel"}'
  local outs='ferrygate_broker_messages_out_total{kind="channel"}'
  in_sum() { if [[ -n $pid_b ]]; then echo $(( $(metric "$a" "$in") + $(metric "$b" "$in") )); else echo 0; fi; }
  local out0 in0 t0 ta0 tb0 tk0 result=$out/cluster-$kind$suffix
  out0=$(metric "$a" "$outs"); in0=$(in_sum)
  echo "workers ${WORKERS:-default}, servers on CPU $server_cpu, load tool on CPU $load_cpu, load average before: $(loadavg)" | tee "$result.txt"
  t0=$(date +%s.%N); ta0=$(ticks "$pid_a"); tb0=${pid_b:+$(ticks "$pid_b")}; tk0=${broker_pid:+$(ticks "$broker_pid")}
  run_load fanout --url "ws://$a/ws" --subscriber-urls "$urls" \
    --subscribers "$subscribers" --rates "$rates" --step-secs "$step_secs" --sources 127.0.0.1-8 \
    --server-pid "$pid_a" --no-stop --json "$result.json" | tee -a "$result.txt"
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
    echo "load average after: $(loadavg)"
  } | tee -a "$result.txt"
  stop_all
}

for kind in single nats redis; do
  if [[ $what == all || $what == "$kind" ]]; then run "$kind"; fi
done
