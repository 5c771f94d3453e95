#!/usr/bin/env bash
# Soak (issue 15): hot reloads and connection churn at the same time on one
# release gateway, sampling its memory throughout. Run through `cargo xtask
# soak`, which builds the plugins and the release binaries first.
#   - RELOADS (default 1000) hot reloads: the stamp transform's .wasm is
#     renamed over, v1 and v2 in turn, and each swap is waited for until
#     GET /v1/plugins shows the new version serving (the watcher's path).
#   - CYCLES (default 200000) client cycles by `ferrygate-load churn`:
#     connect, subscribe, publish through the stamp transform (so instances of
#     every version serve calls), receive the push, disconnect.
#   - once a second: VmRSS, mapped regions (/proc/PID/maps lines: every loaded
#     component's code is a mapping, so old versions that stay loaded show up
#     here), open fds and threads of the gateway.
# A warm-up (WARMUP_CYCLES cycles, 20 reloads) comes first; the baseline is
# taken after it. Exits 1 when a cycle or reload failed, when RSS grew by more
# than MAX_GROWTH_MIB from the baseline to the end, or mapped regions by more
# than MAX_MAPS_GROWTH over the second half of the phase.
# Server on CPU 0, load tool and reloader on CPU 1. Results: bench-results/.
source "$(dirname "$0")/lib.sh"

reloads=${RELOADS:-1000}
cycles=${CYCLES:-200000}
warmup_cycles=${WARMUP_CYCLES:-5000}
concurrency=${CONCURRENCY:-32}
max_growth_mib=${MAX_GROWTH_MIB:-16}
max_maps_growth=${MAX_MAPS_GROWTH:-50}
root=$PWD
dir=$tmp
dist=$root/plugins/dist
key=soak-key
gw_port=$(port 18097)

cp "$dist/stamp_v1.wasm" "$dir/stamp.wasm"
cat >"$dir/ferrygate.toml" <<TOML
[server]
listen = "127.0.0.1:$gw_port"
api_key = "$key"
allow_anonymous = true
publish_rate = { per_second = 1000000, burst = 1000000 }
request_rate = { per_second = 1000000, burst = 1000000 }

[wasm]
cache_dir = "$dir/cache"

[plugins.stamp]
kind = "transform"
path = "stamp.wasm"
limits = { time_ms = 1000 }

[[routes]]
channels = "soak.*"
inbound = ["stamp"]
TOML

log=$out/soak-ferrygate.log
: >"$log"
port_free "$gw_port"
taskset -c "$server_cpu" "$gateway" serve --config "$dir/ferrygate.toml" 2>>"$log" &
server_pid=$!; pids+=("$server_pid")
wait_ready "127.0.0.1:$gw_port" "$server_pid"

reloads_ok() { metric "127.0.0.1:$gw_port" 'ferrygate_plugin_reloads_total{outcome="ok"}'; }
sample() {
  local rss maps fds threads
  rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$server_pid/status")
  threads=$(awk '/^Threads:/ {print $2}' "/proc/$server_pid/status")
  maps=$(wc -l <"/proc/$server_pid/maps")
  fds=$(ls "/proc/$server_pid/fd" | wc -l)
  echo "$(date +%s.%N | cut -c1-14) $rss $maps $fds $threads"
}
samples=$out/soak-samples.txt
echo "# unix_time rss_kib maps fds threads" >"$samples"
( while kill -0 "$server_pid" 2>/dev/null; do sample >>"$samples" 2>/dev/null || true; sleep 1; done ) &
pids+=($!)

v1=$(version_of "$dist/stamp_v1.wasm"); v2=$(version_of "$dist/stamp_v2.wasm")
# Swaps the stamp .wasm $1 times, v2 and v1 in turn, each until it serves.
swaps() {
  for i in $(seq "$1"); do
    if (( i % 2 )); then cp "$dist/stamp_v2.wasm" "$dir/next.tmp"; want=$v2; else cp "$dist/stamp_v1.wasm" "$dir/next.tmp"; want=$v1; fi
    mv "$dir/next.tmp" "$dir/stamp.wasm"
    local t0=$SECONDS
    until serving "127.0.0.1:$gw_port" "$key" "$want"; do
      (( SECONDS - t0 < 30 )) || { echo "swap $i: version $want not serving after 30 s" >&2; return 1; }
      sleep 0.005
    done
  done
}
churn() {
  taskset -c "$load_cpu" "$load" --max-secs 1800 churn --url "ws://127.0.0.1:$gw_port/ws" \
    --sources 127.0.0.1-127.0.0.8 --cycles "$1" --concurrency "$concurrency" \
    --channel soak --channels 64 --server-pid "$server_pid" --sample-every "$2" --json "$3"
}
mib() { awk -v k="$1" 'BEGIN {printf "%.1f", k / 1024}'; }

echo "== soak: warm-up ($warmup_cycles cycles, 20 reloads)" | tee "$out/soak.txt"
# A failed cycle is reported by the main phase's verdict; here it only warms.
churn "$warmup_cycles" "$warmup_cycles" "$out/soak-warmup.json" >"$out/soak-warmup.txt" 2>&1 \
  || { echo "warm-up: $(grep -m1 'failed' "$out/soak-warmup.txt")"; cat "$out/soak-warmup.txt"; } | tee -a "$out/soak.txt"
swaps 20
sleep 2
read -r _ base_rss base_maps base_fds base_threads < <(sample)
base_reloads=$(reloads_ok)
echo "baseline: RSS $(mib "$base_rss") MiB, $base_maps maps, $base_fds fds, $base_threads threads" | tee -a "$out/soak.txt"

echo "== soak: $reloads reloads and $cycles cycles at once" | tee -a "$out/soak.txt"
t0=$(date +%s.%N)
churn "$cycles" $(( cycles / 10 )) "$out/soak-churn.json" >"$out/soak-churn.txt" &
churn_pid=$!; pids+=("$churn_pid")
( taskset -cp "$load_cpu" $BASHPID >/dev/null; swaps "$reloads" ) &
swap_pid=$!; pids+=("$swap_pid")
swap_status=0; wait "$swap_pid" || swap_status=$?
swaps_done=$(date +%s.%N)
churn_status=0; wait "$churn_pid" || churn_status=$?
t1=$(date +%s.%N)
tee -a "$out/soak.txt" <"$out/soak-churn.txt"
sleep 5
read -r _ end_rss end_maps end_fds end_threads < <(sample)
done_reloads=$(( $(reloads_ok) - base_reloads ))
failed_reloads=$(metric "127.0.0.1:$gw_port" 'ferrygate_plugin_reloads_total{outcome="failed"}')
awk -v a="$t0" -v b="$swaps_done" -v c="$t1" -v n="$reloads" 'BEGIN {printf "reloads took %.1f s (%.1f ms each, cached artifacts), whole phase %.1f s\n", b - a, (b - a) * 1000 / n, c - a}' | tee -a "$out/soak.txt"
echo "reloads counted by the gateway (outcome=ok) during the phase: $done_reloads; failed: ${failed_reloads:-0}" | tee -a "$out/soak.txt"
echo "RSS over the phase (1 s samples):" | tee -a "$out/soak.txt"
awk -v t0="$t0" -v t1="$t1" '!/^#/ && $1 >= t0 && $1 <= t1 {n++; r[n]=$2; m[n]=$3; if ($2 > max) max = $2}
  END {for (q = 0; q <= 10; q++) {i = int(q * (n - 1) / 10) + 1; printf "  %3d%%  RSS %.1f MiB  maps %d\n", q * 10, r[i] / 1024, m[i]}
       printf "  max RSS %.1f MiB over %d samples\n", max / 1024, n}' "$samples" | tee -a "$out/soak.txt"
growth=$(( end_rss - base_rss )); maps_growth=$(( end_maps - base_maps ))
# A leak per reload or per cycle grows all along; what settles in the first
# half (pool slots first touched, a blocking thread, allocator arenas) does
# not. So mapped regions are judged from the phase's midpoint to its end.
read -r mid_maps last_maps < <(awk -v t0="$t0" -v t1="$t1" '!/^#/ && $1 >= t0 && $1 <= t1 {n++; m[n]=$3}
  END {print m[int((n + 1) / 2)], m[n]}' "$samples")
late_maps_growth=$(( last_maps - mid_maps ))
echo "mapped regions, second half of the phase: $mid_maps -> $last_maps ($late_maps_growth)" | tee -a "$out/soak.txt"
echo "end (5 s after): RSS $(mib "$end_rss") MiB ($(mib "$growth") MiB from baseline), $end_maps maps ($maps_growth), $end_fds fds, $end_threads threads" | tee -a "$out/soak.txt"
status=0
(( swap_status == 0 )) || { echo "FAIL: the reloads did not all serve" | tee -a "$out/soak.txt"; status=1; }
(( churn_status == 0 )) || { echo "FAIL: churn cycles failed" | tee -a "$out/soak.txt"; status=1; }
(( done_reloads >= reloads )) || { echo "FAIL: the gateway counted $done_reloads reloads, fewer than $reloads" | tee -a "$out/soak.txt"; status=1; }
(( growth <= max_growth_mib * 1024 )) || { echo "FAIL: RSS grew by more than $max_growth_mib MiB" | tee -a "$out/soak.txt"; status=1; }
(( late_maps_growth <= max_maps_growth )) || { echo "FAIL: mapped regions grew by more than $max_maps_growth in the second half" | tee -a "$out/soak.txt"; status=1; }
(( status == 0 )) && echo "PASS: memory flat" | tee -a "$out/soak.txt"
exit "$status"
