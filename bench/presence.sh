#!/usr/bin/env bash
# Benchmarks of issue 12 (presence), each broker with presence off and on
# (otherwise identical routes), runs interleaved off, on, off, on... so that
# a shared machine's drift hits both alike:
#   join    MEMBERS connections, each its own user (jwt-auth, HS256 tokens
#           from the load tool), connect and subscribe to one channel
#           (`ferrygate-load presence`): connect+subscribe rate, gateway and
#           broker CPU per join, broker operations per join (Redis
#           `INFO commandstats`, NATS `/varz` in_msgs and `/jsz` API calls),
#           per heartbeat over IDLE_SECS, query times with all MEMBERS in
#           (op and HTTP, first page and every page), then all leave
#   fanout  SUBSCRIBERS users subscribed to one channel, one publisher,
#           RATES msg/s stepped (`ferrygate-load fanout`): delivered rate,
#           latency and gateway CPU per step
# MODES=off,on (add `join_leave`: presence and join/leave pushes, which cost
# one push to every member per join: O(MEMBERS^2) frames, use small MEMBERS).
# Gateway and broker on CPU 0, the load tool on CPU 1. Results:
# bench-results/presence-*. Run through `cargo xtask bench-presence
# [join|fanout|all]`, which builds first (BIN_DIR picks other binaries).
source "$(dirname "$0")/lib.sh"

what=${1:-all}
brokers=${BROKERS:-memory,redis,nats}
modes=${MODES:-off,on}
rounds=${ROUNDS:-2}
members=${MEMBERS:-10000}
idle_secs=${IDLE_SECS:-16}
queries=${QUERIES:-20}
subscribers=${SUBSCRIBERS:-1000}
rates=${RATES:-1000,4000}
step_secs=${STEP_SECS:-5}
# Ports of their own (other benchmarks use 18080, 14222, 16379), all
# loopback, shifted by PORT_OFFSET like every benchmark's (lib.sh).
gw_port=$(port 18380)
nats_port=$(port 14322)
nats_monitor=$(port 18322)
redis_port=$(port 16479)
key=${FERRYGATE_API_KEY:-bench-key}
secret=bench-presence-secret-0123456789
export FERRYGATE_API_KEY=$key FERRYGATE_LOAD_JWT_SECRET=$secret
[[ -f plugins/dist/jwt_auth.wasm ]] || { echo "plugins/dist/jwt_auth.wasm missing: cargo xtask build-plugins" >&2; exit 1; }

# manifest BROKER MODE > file: bench/ferrygate.toml with jwt-auth, the broker,
# and one route for `presence.*` that differs between modes only in presence.
manifest() {
  grep -v allow_anonymous bench/ferrygate.toml | sed "s/127.0.0.1:18080/127.0.0.1:$gw_port/"
  printf '\n[plugins.auth]\nkind = "auth"\npath = "%s"\n' "$PWD/plugins/dist/jwt_auth.wasm"
  # A time limit far above an HS256 check (~4 us), so that a stall of the
  # shared core never cuts a join: the benchmark measures presence.
  printf 'limits = { memory_mib = 16, time_ms = 1000 }\nconfig = { hs256_secret = "%s" }\n' "$secret"
  case $1 in
    nats) printf '\n[broker]\nkind = "nats"\nurls = ["nats://127.0.0.1:%s"]\n' "$nats_port" ;;
    redis) printf '\n[broker]\nkind = "redis"\nurls = ["redis://127.0.0.1:%s"]\n' "$redis_port" ;;
  esac
  case $2 in
    off) printf '\n[[routes]]\nchannels = "presence.*"\npresence = false\n' ;;
    on) printf '\n[[routes]]\nchannels = "presence.*"\npresence = true\n' ;;
    join_leave) printf '\n[[routes]]\nchannels = "presence.*"\npresence = true\njoin_leave = true\n' ;;
  esac
}

# start_presence_broker BROKER: nats (JetStream, monitoring port), redis or
# nothing (memory); sets broker_flags, what the load tool reads the broker by.
start_presence_broker() {
  broker_flags=()
  case $1 in
    nats)
      port_free "$nats_monitor"
      start_broker nats -m "$nats_monitor" -js -sd "$tmp/js"; wait_port "$nats_monitor"
      broker_flags=(--nats-monitor "127.0.0.1:$nats_monitor" --broker-pid "$broker_pid") ;;
    redis)
      start_broker redis
      broker_flags=(--redis "127.0.0.1:$redis_port" --broker-pid "$broker_pid") ;;
    *) start_broker memory ;;
  esac
}

# start_presence_gateway BROKER MODE; sets gateway_pid.
start_presence_gateway() {
  manifest "$1" "$2" >"$tmp/presence-ferrygate.toml"
  start_gateway presence-ferrygate "$tmp/presence-ferrygate.toml" "127.0.0.1:$gw_port"
  gateway_pid=${pids[-1]}
}

for round in $(seq "$rounds"); do
  for broker in ${brokers//,/ }; do
    for mode in ${modes//,/ }; do
      tag=$broker-$mode-$round
      if [[ $what == all || $what == join ]]; then
        start_presence_broker "$broker"; start_presence_gateway "$broker" "$mode"
        echo "== join, $broker, presence $mode, round $round" >&2
        idle=0; [[ $mode != off ]] && idle=$idle_secs
        taskset -c "$load_cpu" "$load" --max-secs 900 presence --url ws://127.0.0.1:$gw_port/ws \
          --channel presence.bench --members "$members" --queries "$queries" --idle-secs "$idle" \
          --sources 127.0.0.1-8 --server-pid "$gateway_pid" "${broker_flags[@]}" \
          --json "$out/presence-join-$tag.json" | tee "$out/presence-join-$tag.txt"
        stop "$gateway_pid" "$broker_pid"; rm -rf "$tmp/js"
      fi
      if [[ $what == all || $what == fanout ]]; then
        start_presence_broker "$broker"; start_presence_gateway "$broker" "$mode"
        echo "== fan-out, $broker, presence $mode, round $round" >&2
        taskset -c "$load_cpu" "$load" --max-secs 600 fanout --url ws://127.0.0.1:$gw_port/ws \
          --channel presence.fanout --subscribers "$subscribers" --rates "$rates" \
          --step-secs "$step_secs" --no-stop --sources 127.0.0.1-8 --server-pid "$gateway_pid" \
          --json "$out/presence-fanout-$tag.json" | tee "$out/presence-fanout-$tag.txt"
        stop "$gateway_pid" "$broker_pid"; rm -rf "$tmp/js"
      fi
    done
  done
done
