#!/usr/bin/env bash
# Issue 14: the same transform in Rust, JavaScript and Python
# (plugins/testing/seen-by*), on the binaries in BIN_DIR (default
# target/release):
#   1. `ferrygate check` time on a manifest naming the plugin, cold (empty
#      artifact cache) and warm;
#   2. new-version serving time, the .wasm renamed over and polled until
#      GET /v1/plugins shows the new version, each round: (a) the function
#      cache emptied, a copy of v1 made unique by a trailing custom section
#      (so that no artifact is cached): every function compiled; (b) v2, the
#      same program with one string changed ("seen_by" -> "seen_by_v2", built
#      here with the same tool; for Rust a unique copy of v1), also made
#      unique: the function cache holds v1's functions; (c) the previous file
#      back (a rollback: a cached artifact);
#      plus `check` of v2 after `check` of v1 (function cache warm);
#   3. disk used by the artifact cache after it all;
#   4. per-call cost with a warm instance: `ferrygate plugin test` over CALLS
#      (default 20,000) publishes of a 100-byte object, minus a one-line run
#      (load, instantiate, init), divided by CALLS; the best of 3. It includes
#      the replay's own work per line (parse the line, print the decision);
#   5. memory per instance: the smallest `--memory-mib` with which the plugin
#      loads and transforms (a bisection, 1 to 128 MiB).
# No grants anywhere: the manifests are what a new user writes.
# Usage: cargo xtask build-plugins && bash bench/langs.sh   (ROUNDS=3, LANGS=rust,js,python;
# QUICK=1 skips 4 and 5)
source "$(dirname "$0")/lib.sh"
root=$PWD
rounds=${ROUNDS:-3}
dist=$root/plugins/dist
key=bench-key
gw_port=$(port 18096)
dir=$tmp

manifest() { # lang file kind config
  cat >"$dir/$1.toml" <<TOML
[server]
listen = "127.0.0.1:$gw_port"
api_key = "$key"
allow_anonymous = true
[wasm]
cache_dir = "$dir/cache-$1"
[plugins.p]
kind = "$3"
path = "$1.wasm"
limits = { memory_mib = 64, time_ms = 500 }
config = $4
TOML
  cp "$dist/$2.wasm" "$dir/$1.wasm"
}
unique() { { cat "$1"; printf '\x00\x0e\x05bench'; head -c 8 /dev/urandom; } >"$2"; }
swap_ms() { # lang newfile
  local want t0; want=$(version_of "$2"); t0=$(date +%s%N)
  mv "$2" "$dir/$1.wasm"
  until serving "127.0.0.1:$gw_port" "$key" "$want"; do
    (( $(date +%s%N) - t0 < 600000000000 )) || { echo "not serving after 600 s" >&2; exit 1; }
    sleep 0.02
  done
  echo $(( ($(date +%s%N) - t0) / 1000000 ))
}
secs() { local t0; t0=$(date +%s%N); "$@" >"$dir/out"; echo "$(( ($(date +%s%N) - t0) / 1000000 )) ms"; }
# secs, plus the command's peak RSS when /usr/bin/time is there; stdout in $dir/out
timed() {
  [[ -x /usr/bin/time ]] || { secs "$@"; return; }
  local t0; t0=$(date +%s%N)
  /usr/bin/time -f '%M' -o "$dir/peak" "$@" >"$dir/out"
  echo "$(( ($(date +%s%N) - t0) / 1000000 )) ms (peak RSS $(( $(tail -1 "$dir/peak") / 1024 )) MiB)"
}
rss_mib() { echo $(( $(awk '/VmRSS/ {print $2}' "/proc/$1/status") / 1024 )); }

# v2 of a plugin: the same source with "seen_by" -> "seen_by_v2", built with
# the toolchain `cargo xtask build-plugins` installed; Rust: a unique copy.
tools=$root/target/toolchains
v2() { # lang out
  local src=$dir/v2-$1; mkdir -p "$src"
  case $1 in
    rust) unique "$dist/seen_by_rust.wasm" "$2" ;;
    js) sed 's/payload.seen_by = .seen_by.;/payload.seen_by = "seen_by_v2";/' plugins/testing/seen-by-js/seen_by.js >"$src/seen_by.js"
        grep -q seen_by_v2 "$src/seen_by.js"
        "$tools"/componentize-js-*/node_modules/.bin/componentize-js --wit wit --world-name transform -o "$2" "$src/seen_by.js" >/dev/null ;;
    python) sed 's/payload\["seen_by"\] = "seen_by"/payload["seen_by"] = "seen_by_v2"/' plugins/testing/seen-by-py/app.py >"$src/app.py"
        grep -q seen_by_v2 "$src/app.py"
        local py; py=$(echo "$tools"/componentize-py-*)
        (cd "$src" && PYTHONPATH=$py python3 "$py/bin/componentize-py" -d "$root/wit" -w transform componentize app -p . -p "$root/sdk/python" -o "$2" >/dev/null) ;;
  esac
}

calls=${CALLS:-20000}
line='{"op":"publish","channel":"chat.lobby","data":{"text":"'$(printf 'x%.0s' $(seq 72))'","n":42,"ok":true}}'
echo "$line" >"$dir/one.jsonl"
for _ in $(seq "$calls"); do echo "$line"; done | cat "$dir/one.jsonl" - >"$dir/many.jsonl"
replay() { # wasm input memory_mib: the decisions, one per line
  XDG_CACHE_HOME=$dir/xdg "$gateway" plugin test "$1" --kind transform --input "$2" \
    --config '{"drop_word":"forbidden"}' --memory-mib "$3" --time-ms 1000 2>/dev/null
}
elapsed_ns() { local t0; t0=$(date +%s%N); "$@" >/dev/null; echo $(( $(date +%s%N) - t0 )); }
per_call() { # wasm
  replay "$1" "$dir/one.jsonl" 64 | grep -q seen_by || { echo "no seen_by from $1" >&2; exit 1; }
  [[ $(replay "$1" "$dir/many.jsonl" 64 | grep -c seen_by) == $((calls + 1)) ]] || { echo "$1: not every call kept" >&2; exit 1; }
  local best=""
  for _ in 1 2 3; do
    local us=$(( ($(elapsed_ns replay "$1" "$dir/many.jsonl" 64) - $(elapsed_ns replay "$1" "$dir/one.jsonl" 64)) / calls / 100 ))
    [[ -z $best || $us -lt $best ]] && best=$us
  done
  printf '%d.%d' $((best / 10)) $((best % 10))
}
memory() { # wasm: smallest memory_mib that loads and transforms
  local low=0 high=128 mid
  while (( high - low > 1 )); do
    mid=$(( (low + high) / 2 ))
    if replay "$1" "$dir/one.jsonl" "$mid" | grep -q seen_by; then high=$mid; else low=$mid; fi
  done
  echo "$high"
}

# The same transform in each language (plugins/testing/seen-by*); LANGS picks.
specs=("rust seen_by_rust transform { drop_word = \"forbidden\" }"
       "js seen_by_js transform { drop_word = \"forbidden\" }"
       "python seen_by_python transform { drop_word = \"forbidden\" }")
for spec in "${specs[@]}"; do
  [[ ",${LANGS:-rust,js,python}," == *",${spec%% *},"* ]] || continue
  read -r lang file kind config <<<"$spec"
  manifest "$lang" "$file" "$kind" "$config"
  echo "$lang ($file, $(du -h "$dist/$file.wasm" | cut -f1)): check cold $(timed "$gateway" check --config "$dir/$lang.toml"), warm $(timed "$gateway" check --config "$dir/$lang.toml")"
  v2 "$lang" "$dir/$lang-v2.wasm"
  cp "$dir/$lang.wasm" "$dir/v1.wasm"; unique "$dir/$lang-v2.wasm" "$dir/$lang.wasm"
  echo "  check of v2 after v1 (function cache warm): $(timed "$gateway" check --config "$dir/$lang.toml"); $(grep '^compiled' "$dir/out" || echo 'no compile line')"
  mv "$dir/v1.wasm" "$dir/$lang.wasm"
  port_free "$gw_port"
  "$gateway" serve --config "$dir/$lang.toml" 2>>"$dir/serve.log" & pids+=($!); server=$!
  wait_ready "127.0.0.1:$gw_port" "$server" 600
  for i in $(seq "$rounds"); do
    # The gateway's writer may still be writing the last compile's entries.
    until rm -rf "$dir/cache-$lang/functions" 2>/dev/null; do sleep 1; done
    unique "$dist/$file.wasm" "$dir/new.wasm"
    cold=$(swap_ms "$lang" "$dir/new.wasm")
    cp "$dir/$lang.wasm" "$dir/prev.wasm"
    unique "$dir/$lang-v2.wasm" "$dir/new.wasm"
    warm=$(swap_ms "$lang" "$dir/new.wasm")
    back=$(swap_ms "$lang" "$dir/prev.wasm")
    echo "  round $i: new version serving after: v1 copy, function cache empty $cold ms; v2, function cache warm $warm ms; rollback to the previous file $back ms (cached); gateway RSS $(rss_mib "$server") MiB"
  done
  grep -o 'reusing [0-9]* of [0-9]* functions' "$dir/serve.log" | sed 's/^/  gateway log: /' | tail -n $((2 * rounds))
  : >"$dir/serve.log"
  kill "$server"; wait "$server" 2>/dev/null || true
  echo "  cache on disk: artifacts $(du -sh "$dir/cache-$lang/artifacts" | cut -f1), functions $(du -sh "$dir/cache-$lang/functions" | cut -f1) ($(find "$dir/cache-$lang/functions" -type f | wc -l) files)"
  [[ -n ${QUICK:-} ]] && continue
  echo "  per call: $(per_call "$dist/$file.wasm") us (plugin test, $calls calls); memory per instance: $(memory "$dist/$file.wasm") MiB"
done
