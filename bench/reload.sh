#!/usr/bin/env bash
# Benchmarks of issue 5 (hot reload), on the release build:
#   1. time from a file change (rename over the .wasm) to the new version
#      serving, as seen by polling GET /v1/plugins: cached artifacts, and cold
#      compiles (each file made unique by a trailing custom section) of the
#      small stamp transform and of the largest plugin we have (jwt-auth).
#   2. p99 delivery latency to 200 subscribers through the stamp transform at
#      RATE msg/s, without swaps and with the .wasm swapped every 500 ms.
# Server on CPU 0, load tool and swapper on CPU 1. Results: bench-results/.
# Run through `cargo xtask bench-reload`, which builds the plugins and binaries first.
source "$(dirname "$0")/lib.sh"

rounds=${ROUNDS:-20}
rate=${RATE:-1000}
step_secs=${STEP_SECS:-10}
root=$PWD
dir=$tmp
dist=$root/plugins/dist
key=bench-key
gw_port=$(port 18095)

cp "$dist/stamp_v1.wasm" "$dir/stamp.wasm"
cp "$dist/jwt_auth.wasm" "$dir/big.wasm"
cat >"$dir/ferrygate.toml" <<TOML
[server]
listen = "127.0.0.1:$gw_port"
api_key = "$key"
allow_anonymous = true
publish_rate = { per_second = 1000000, burst = 1000000 }
request_rate = { per_second = 1000000, burst = 1000000 }

[wasm]
cache_dir = "$dir/cache"

# A generous time limit: a call that waits for the pinned core past the
# default 10 ms fails as a deadline, which would be measured as a loss here.
[plugins.stamp]
kind = "transform"
path = "stamp.wasm"
limits = { time_ms = 1000 }

[[routes]]
channels = "bench"
inbound = ["stamp"]
TOML
# Phase 1 adds jwt-auth as a second plugin (no clients connect then).
cp "$dir/ferrygate.toml" "$dir/stream.toml"
cat >>"$dir/ferrygate.toml" <<TOML

[plugins.big]
kind = "auth"
path = "big.wasm"
config = { hs256_secret = "0123456789abcdef0123456789abcdef", issuer = "bench", audience = "bench" }
TOML

start() {
  port_free "$gw_port"
  taskset -c "$server_cpu" "$gateway" serve --config "$1" 2>>"$out/reload-ferrygate.log" &
  pids+=($!); server_pid=$!
  wait_ready "127.0.0.1:$gw_port" "$server_pid"
}

# Renames $2 over $dir/$1 and prints the milliseconds until its version serves.
swap_ms() {
  local want; want=$(version_of "$2")
  local t0; t0=$(date +%s%N)
  mv "$2" "$dir/$1"
  until serving "127.0.0.1:$gw_port" "$key" "$want"; do
    (( $(date +%s%N) - t0 < 30000000000 )) || { echo "version $want not serving after 30 s" >&2; exit 1; }
  done
  echo $(( ($(date +%s%N) - t0) / 1000000 ))
}

# A copy of $1 with a unique trailing custom section: same code, new hash,
# so no cached artifact matches and it compiles cold.
# Section: id 0, size 14 = name length (1) + "bench" (5) + 8 random bytes.
unique() { { cat "$1"; printf '\x00\x0e\x05bench'; head -c 8 /dev/urandom; } >"$2"; }

stats() { sort -n | awk '{a[NR]=$1} END {printf "n=%d min=%d p50=%d p90=%d max=%d ms\n", NR, a[1], a[int(NR*0.5+0.5)], a[int(NR*0.9+0.5)], a[NR]}'; }

echo "== 1. file change -> new version serving ($rounds rounds each)" | tee "$out/reload.txt"
start "$dir/ferrygate.toml"
cp "$dist/stamp_v2.wasm" "$dir/v2.tmp"; swap_ms stamp.wasm "$dir/v2.tmp" >/dev/null  # warm the cache for v2
for i in $(seq "$rounds"); do
  if (( i % 2 )); then cp "$dist/stamp_v1.wasm" "$dir/next.tmp"; else cp "$dist/stamp_v2.wasm" "$dir/next.tmp"; fi
  swap_ms stamp.wasm "$dir/next.tmp"; sleep 0.2
done | stats | sed 's/^/cached stamp (106 KB): /' | tee -a "$out/reload.txt"
for i in $(seq "$rounds"); do
  unique "$dist/stamp_v1.wasm" "$dir/next.tmp"; swap_ms stamp.wasm "$dir/next.tmp"; sleep 0.2
done | stats | sed 's/^/cold stamp (106 KB): /' | tee -a "$out/reload.txt"
for i in $(seq "$rounds"); do
  unique "$dist/jwt_auth.wasm" "$dir/next.tmp"; swap_ms big.wasm "$dir/next.tmp"; sleep 0.2
done | stats | sed 's/^/cold jwt-auth (219 KB): /' | tee -a "$out/reload.txt"
grep -o 'took_ms=[0-9.]*' "$out/reload-ferrygate.log" | cut -d= -f2 | sort -n \
  | awk '{a[NR]=$1} END {printf "reload itself (log took_ms, all rounds): n=%d p50=%.1f max=%.1f ms\n", NR, a[int(NR/2)+1], a[NR]}' | tee -a "$out/reload.txt"
stop "$server_pid"

echo "== 2. delivery latency, 200 subscribers, $rate msg/s for ${step_secs}s" | tee -a "$out/reload.txt"
cp "$dist/stamp_v1.wasm" "$dir/stamp.wasm"
start "$dir/stream.toml"
run_load() { taskset -c "$load_cpu" "$load" --max-secs 600 fanout --target ferrygate --url "ws://127.0.0.1:$gw_port/ws" \
  --subscribers 200 --channel bench --payload-bytes 100 --rates "$rate" --step-secs "$step_secs" \
  --server-pid "$server_pid" --no-stop; }
echo "-- without swaps" | tee -a "$out/reload.txt"
run_load | tee -a "$out/reload.txt"
echo "-- with the .wasm swapped (v1 <-> v2) every 500 ms" | tee -a "$out/reload.txt"
(
  sleep 3
  for i in $(seq $(( step_secs * 2 + 4 ))); do
    if (( i % 2 )); then cp "$dist/stamp_v2.wasm" "$dir/next.tmp"; else cp "$dist/stamp_v1.wasm" "$dir/next.tmp"; fi
    mv "$dir/next.tmp" "$dir/stamp.wasm"; sleep 0.5
  done
) &
swapper=$!
taskset -cp "$load_cpu" "$swapper" >/dev/null
run_load | tee -a "$out/reload.txt"
wait "$swapper" || true
echo "swaps done: $(curl -s "http://127.0.0.1:$gw_port/metrics" | grep 'plugin_reloads_total{outcome="ok"}')" | tee -a "$out/reload.txt"
stop "$server_pid"
