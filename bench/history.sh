#!/usr/bin/env bash
# Benchmarks of issue 10 (history and recovery):
#   fanout  fan-out to SUBSCRIBERS on one channel, history off then on, for the
#           memory, nats (nats-server -js) and redis brokers: delivered rate,
#           latency and server CPU per step (the same channel, the same rates)
#   storm   reconnect storm, nats and redis: two instances A and B; CLIENTS
#           clients on STORM_CHANNELS channels (1 and 100 by default) subscribe
#           on A, leave, MISSED messages are published per channel on B, all
#           reconnect to B with `since` at once (ferrygate-load recover): time
#           until all recovered exactly, broker and gateway CPU, failures; the
#           memory broker has one instance, so its clients come back to it
#   append  publish round trip: APPENDS publishes one after the other over one
#           HTTP keep-alive connection (curl), on a channel without history
#           (`plain`) then on one with it (`bench`), per broker: time each
#   memory  memory per channel of history in the memory broker: CHANNELS
#           channels get one 100-byte message each; the gateway's VmRSS and
#           `ferrygate_history_bytes` before and after
# Servers (gateway and broker) run on CPU 0, the load tool on CPU 1.
# Results: bench-results/history-*. Run through `cargo xtask bench-history
# [fanout|storm|append|memory|all]`, which builds first.
source "$(dirname "$0")/lib.sh"

what=${1:-all}
brokers=${BROKERS:-memory,nats,redis}
subscribers=${SUBSCRIBERS:-1000}
rates=${RATES:-1000,2000,4000}
step_secs=${STEP_SECS:-5}
channels=${CHANNELS:-10000}
clients=${CLIENTS:-1000}
missed=${MISSED:-100}
storm_channels=${STORM_CHANNELS:-1,100}
appends=${APPENDS:-1000}
broker_timeout_ms=${BROKER_TIMEOUT_MS:-} # [broker] timeout_ms; empty: the default (2,000)
# PROFILE=debug: a smoke run with debug binaries (no figures).
gw_a=127.0.0.1:$(port 18080)
gw_b=127.0.0.1:$(port 18082)

# manifest BROKER HISTORY(on|off) > file
manifest() {
  cat bench/ferrygate.toml
  case $1 in
    nats) printf '\n[broker]\nkind = "nats"\nurls = ["nats://127.0.0.1:14222"]\n' ;;
    redis) printf '\n[broker]\nkind = "redis"\nurls = ["redis://127.0.0.1:16379"]\n' ;;
  esac
  if [[ $1 != memory && -n $broker_timeout_ms ]]; then printf 'timeout_ms = %s\n' "$broker_timeout_ms"; fi
  if [[ $2 == on ]]; then
    printf '\n[[routes]]\nchannels = "bench"\nhistory = { size = 1000, ttl_s = 300 }\n'
    printf '\n[[routes]]\nchannels = "h.*"\nhistory = { size = 10, ttl_s = 300 }\n'
    printf '\n[[routes]]\nchannels = "storm.*"\nhistory = { size = 1000, ttl_s = 300 }\n'
  fi
}

# start_history_broker BROKER: nats with JetStream in $tmp/js, redis, or nothing (memory).
start_history_broker() {
  case $1 in
    nats) start_broker nats -js -sd "$tmp/js" ;;
    *) start_broker "$1" ;;
  esac
}

# start_history_gateway BROKER HISTORY(on|off) HOST:PORT; sets gateway_pid.
start_history_gateway() {
  local name=history-ferrygate-${3##*:}
  manifest "$1" "$2" >"$tmp/$name.toml"
  start_gateway "$name" "$tmp/$name.toml" "$3"
  gateway_pid=${pids[-1]}
}

if [[ $what == all || $what == fanout ]]; then
  for broker in ${brokers//,/ }; do
    for history in off on; do
      start_history_broker "$broker"
      start_history_gateway "$broker" "$history" "$gw_a"
      echo "== fan-out, $broker, history $history" >&2
      taskset -c "$load_cpu" "$load" --max-secs 600 fanout --target ferrygate \
        --url "ws://$gw_a/ws" --channel bench --subscribers "$subscribers" \
        --rates "$rates" --step-secs "$step_secs" --no-stop --sources 127.0.0.1-8 \
        --server-pid "$gateway_pid" --json "$out/history-fanout-$broker-$history.json"
      stop "$gateway_pid" "$broker_pid"
      rm -rf "$tmp/js"
    done
  done
fi

if [[ $what == all || $what == storm ]]; then
  for broker in ${brokers//,/ }; do
    for spread in ${storm_channels//,/ }; do
      start_history_broker "$broker"
      start_history_gateway "$broker" on "$gw_a"; pid_a=$gateway_pid; addr_b=$gw_a; pid_b=$pid_a
      if [[ $broker != memory ]]; then
        start_history_gateway "$broker" on "$gw_b"; pid_b=$gateway_pid; addr_b=$gw_b
      fi
      echo "== reconnect storm, $broker: $clients clients on $spread channels, $missed missed each" >&2
      taskset -c "$load_cpu" "$load" --max-secs 600 recover --url "ws://$gw_a/ws" \
        --reconnect-url "ws://$addr_b/ws" --clients "$clients" --missed "$missed" \
        --channel storm --channels "$spread" --server-pid "$pid_b" ${broker_pid:+--broker-pid "$broker_pid"} \
        --json "$out/history-storm-$broker-$spread.json" || true
      stop "$pid_a" "$pid_b" "$broker_pid"
      rm -rf "$tmp/js"
    done
  done
fi

# curl_config CHANNEL_FORMAT COUNT > file: COUNT publishes of 100 bytes of
# JSON, one request per block (curl's options are global otherwise); the
# channel is CHANNEL_FORMAT with the request's number for %d.
curl_config() {
  local payload n
  payload=$(printf '"%098d"' 0)
  for ((n = 0; n < $2; n++)); do
    if ((n > 0)); then echo next; fi
    printf 'url = "http://%s/v1/publish"\nheader = "Authorization: Bearer %s"\nheader = "Content-Type: application/json"\ndata = "{\\"channel\\":\\"%s\\",\\"data\\":%s}"\noutput = "/dev/null"\n' \
      "$gw_a" "${FERRYGATE_API_KEY:-bench-key}" "${1//%d/$n}" "${payload//\"/\\\"}"
  done
}

if [[ $what == all || $what == append ]]; then
  for broker in ${brokers//,/ }; do
    start_history_broker "$broker"
    start_history_gateway "$broker" on "$gw_a"
    for channel in plain bench; do
      curl_config "$channel" "$appends" >"$tmp/curl.cfg"
      start=$(date +%s%N)
      curl -sf --fail-early -K "$tmp/curl.cfg"
      micros=$((($(date +%s%N) - start) / 1000 / appends))
      history=$([[ $channel == bench ]] && echo on || echo off)
      echo "$broker, history $history: $appends publishes one after the other, $micros us each" | tee -a "$out/history-append.txt"
    done
    stop "$gateway_pid" "$broker_pid"
    rm -rf "$tmp/js"
  done
fi

if [[ $what == all || $what == memory ]]; then
  start_history_gateway memory on "$gw_a"
  rss() { awk '/VmRSS/ {print $2}' "/proc/$gateway_pid/status"; }
  kept() { sleep 1.5; curl -s "http://$gw_a/metrics" | awk '$1 == "ferrygate_history_bytes" {print $2}'; }
  before_rss=$(rss); before_kept=$(kept)
  curl_config 'h.%d' "$channels" >"$tmp/curl.cfg"
  curl -sf --fail-early -K "$tmp/curl.cfg" # a refused publish stops the run
  after_rss=$(rss); after_kept=$(kept)
  echo "memory per channel of history ($channels channels, one 100-byte message each):" \
    "VmRSS $(((after_rss - before_rss) * 1024 / channels)) bytes," \
    "ferrygate_history_bytes $(((${after_kept%.*} - ${before_kept%.*}) / channels)) bytes" | tee "$out/history-memory.txt"
  stop "$gateway_pid"
fi
