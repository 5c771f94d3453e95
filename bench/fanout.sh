#!/usr/bin/env bash
# Benchmarks of issue 3, ferrygate beside nats-server in the same run:
#   conns       idle memory per connection (15,000 connections, the server's VmRSS),
#               unsubscribed and subscribed to one channel
#   fanout      fan-out to 1,000 subscribers on one channel, publish rate stepped up
#   disconnect  (issue 11, not in `all`) DISCONNECT_SUBSCRIBERS (20,000) subscribers
#               of one channel killed at once (the load tool is SIGKILLed, so the
#               kernel closes every socket): time until the gateway's
#               `ferrygate_connections` gauge reads 0, and its CPU meanwhile
# Servers run on CPU 0, the load tool on CPU 1 (taskset). Results: bench-results/.
# Run through `cargo xtask bench-fanout [conns|fanout|disconnect|all]`, which builds first.
source "$(dirname "$0")/lib.sh"

what=${1:-all}
conns=${CONNS:-15000}
subscribers=${SUBSCRIBERS:-1000}
rates=${RATES:-1000,2000,5000,10000,20000,50000,100000}
step_secs=${STEP_SECS:-5}
disconnect_subscribers=${DISCONNECT_SUBSCRIBERS:-20000}
ferrygate=127.0.0.1:$(port 18080)

if ! command -v nats-server >/dev/null; then
  echo "installing nats-server (Debian package)" >&2
  apt-get update -qq && apt-get install -y -qq nats-server >/dev/null
fi

start_ferrygate() { start_gateway ferrygate bench/ferrygate.toml "$ferrygate"; server_pid=${pids[-1]}; }
start_nats() { start_nats_ws; server_pid=${pids[-1]}; }

if [[ $what == all || $what == conns ]]; then
  # Each server twice: connections left unsubscribed, then each subscribed to
  # one channel (one NATS subject), a fresh server for every run.
  for sub in "" idle; do
    suffix=${sub:+-subscribed}
    start_ferrygate
    run_load conns --target ferrygate --url "ws://$ferrygate/ws" --count "$conns" \
      ${sub:+--subscribe "$sub"} --sources 127.0.0.1-8 --server-pid "$server_pid" \
      --json "$out/conns-ferrygate$suffix.json"
    stop_all
    start_nats
    run_load conns --target nats --url "ws://127.0.0.1:$nats_ws_port" --count "$conns" \
      ${sub:+--subscribe "$sub"} --sources 127.0.0.1-8 --server-pid "$server_pid" \
      --json "$out/conns-nats$suffix.json"
    stop_all
  done
fi

if [[ $what == all || $what == fanout ]]; then
  start_ferrygate
  run_load fanout --target ferrygate --url "ws://$ferrygate/ws" --subscribers "$subscribers" \
    --rates "$rates" --step-secs "$step_secs" --sources 127.0.0.1-8 --server-pid "$server_pid" \
    --json "$out/fanout-ferrygate.json"
  stop_all
  start_nats
  run_load fanout --target nats --url ws://127.0.0.1:$nats_ws_port --subscribers "$subscribers" \
    --rates "$rates" --step-secs "$step_secs" --sources 127.0.0.1-8 --server-pid "$server_pid" \
    --json "$out/fanout-nats.json"
  stop_all
fi

if [[ $what == disconnect ]]; then
  start_ferrygate
  n=$disconnect_subscribers
  # The load tool needs a descriptor per subscriber, plus the publisher's and its own.
  if (( n > $(ulimit -n) - 50 )); then
    n=$(( $(ulimit -n) - 50 ))
    echo "open-file limit $(ulimit -n): $n subscribers instead of $disconnect_subscribers" >&2
  fi
  log=$out/disconnect-load.txt
  # One publish a second keeps the subscribers' channel in use; the step
  # outlasts the measurement.
  # Not through run_load: $! must be the load tool itself, for the SIGKILL.
  taskset -c "$load_cpu" "$load" --max-secs 600 fanout --url "ws://$ferrygate/ws" --subscribers "$n" \
    --rates 1 --step-secs 300 --sources 127.0.0.1-8 >"$log" 2>&1 &
  load_pid=$!; pids+=($!)
  for _ in $(seq 1200); do grep -q 'pub/s' "$log" && break; sleep 0.1; done
  grep -q 'pub/s' "$log" || { echo "subscribers never all joined:" >&2; cat "$log" >&2; exit 1; }
  sleep 2
  before=$(metric "$ferrygate" ferrygate_connections)
  ticks0=$(ticks "$server_pid")
  t0=$(date +%s%N)
  kill -KILL "$load_pid"
  while (( $(metric "$ferrygate" ferrygate_connections) > 0 )); do
    (( $(date +%s%N) - t0 < 60000000000 )) || { echo "connections not released in 60 s" >&2; exit 1; }
    sleep 0.01
  done
  t1=$(date +%s%N)
  wait "$load_pid" 2>/dev/null || true
  echo "$(grep '^subscribers:' "$log")" | tee "$out/disconnect.txt"
  echo "disconnect: $before connections (subscribers of one channel + the publisher) released in" \
    "$(( (t1 - t0) / 1000000 )) ms (gauge polled every 10 ms; curl adds a few ms)," \
    "gateway CPU $(( ($(ticks "$server_pid") - ticks0) * 10 )) ms; load average $(loadavg)" | tee -a "$out/disconnect.txt"
  stop_all
fi
