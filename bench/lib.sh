# Shell helpers shared by the benchmark scripts (sourced, never run): the
# binaries' paths, the processes a script started and their cleanup, waits
# for a port or a gateway's /readyz, CPU ticks from /proc, one value from
# /metrics, and starting gateways and brokers pinned to CPUs. It owns no
# scenario: each script decides what to run and what to report.
#
# Sourcing it changes to the repository root, turns on `set -euo pipefail`,
# raises the descriptor limit and sets:
#   out         bench-results/ (created)
#   load        $BIN_DIR/ferrygate-load, gateway $BIN_DIR/ferrygate (BIN_DIR
#               defaults to target/$PROFILE; PROFILE=release by default,
#               PROFILE=debug for a smoke run)
#   tmp         a scratch folder (mktemp -d), removed on exit
#   server_cpu  SERVER_CPU (default 0), the CPU list servers are pinned to
#   load_cpu    LOAD_CPU (default 1), the CPU list of the load tool
#   pids        every process started through these helpers, killed on exit
#   port N      port N + PORT_OFFSET (default 0): another benchmark on the same
#               machine may hold the default ports; every start checks that its
#               port is free, so a run never measures someone else's server
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

out=bench-results
mkdir -p "$out"
profile=${PROFILE:-release}
bin=${BIN_DIR:-target/$profile}
load=$bin/ferrygate-load
gateway=$bin/ferrygate
tmp=$(mktemp -d)
server_cpu=${SERVER_CPU:-0}
load_cpu=${LOAD_CPU:-1}
# 20,000 connections need more descriptors than some shells allow (root may raise the hard limit).
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

port_offset=${PORT_OFFSET:-0}
port() { echo $(( $1 + port_offset )); }
nats_port=$(port 14222)
redis_port=$(port 16379)
nats_ws_port=$(port 19222)

pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

# Kills every process started so far and forgets them (between set-ups).
stop_all() { cleanup; pids=(); tmp=$(mktemp -d); }

# Kills the given processes (empty arguments skipped) and waits for them.
stop() { # PID...
  for pid in "$@"; do [[ -n $pid ]] && { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; }; done
  return 0
}

wait_port() { # PORT
  for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return; sleep 0.1; done
  echo "nothing listens on port $1" >&2; exit 1
}

wait_ready() { # HOST:PORT of a gateway [its PID: give up early when it exits] [TRIES of 0.1 s, 300]
  for _ in $(seq "${3:-300}"); do
    [[ -z ${2:-} ]] || kill -0 "$2" 2>/dev/null || break
    curl -sf "http://$1/readyz" >/dev/null && return
    sleep 0.1
  done
  echo "gateway $1 not ready" >&2; exit 1
}

# The version /v1/plugins reports for a .wasm file.
version_of() { sha256sum "$1" | cut -c1-12; }

# Whether the gateway at HOST:PORT serves a plugin of VERSION.
serving() { # HOST:PORT API_KEY VERSION
  curl -sf -H "Authorization: Bearer $2" "http://$1/v1/plugins" | grep -q "\"version\":\"$3\""
}

# CPU time of a process so far, in clock ticks (utime + stime, USER_HZ).
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# One sample's value from a gateway's /metrics (0 when absent).
metric() { curl -s "http://$1/metrics" | awk -v s="$2" '$1 == s {v = $2} END {printf "%d\n", v}'; }

# The 1/5/15-minute load averages, to record beside every figure.
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

# Fails unless nothing listens on PORT yet.
port_free() {
  if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then
    echo "port $1 is in use by another process: set PORT_OFFSET" >&2; exit 1
  fi
}

# A copy of a manifest or server config in $out with the broker and NATS
# ports shifted by PORT_OFFSET and, when WORKERS is set, `workers = $WORKERS`
# in [server]; prints the copy's path.
config_copy() {
  local copy="$out/$(basename "$1" | sed 's/\.[a-z]*$//')${WORKERS:+-workers-$WORKERS}.${1##*.}"
  sed -e "s/:14222/:$nats_port/g" -e "s/:16379/:$redis_port/g" -e "s/:19222/:$nats_ws_port/g" "$1" |
    awk -v w="${WORKERS:-}" '{print} w != "" && /^\[server\]$/ {print "workers = " w}' >"$copy"
  echo "$copy"
}

# Starts a gateway on server_cpu; its pid is ${pids[-1]}, its log $out/NAME.log.
start_gateway() { # NAME MANIFEST LISTEN(host:port)
  port_free "${3##*:}"
  taskset -c "$server_cpu" "$gateway" serve --config "$(config_copy "$2")" --listen "$3" 2>"$out/$1.log" &
  pids+=($!)
  wait_ready "$3" "$!"
}

# Starts a broker for the manifests (bench/cluster-KIND.toml, or a script's
# own with the default ports) on server_cpu: nats-server on $nats_port or
# redis-server on $redis_port, with any further ARGS for the server (e.g.
# `-js -sd DIR`); sets broker_pid. `memory` starts nothing (broker_pid empty).
start_broker() { # nats|redis|memory [ARGS...]
  local kind=$1; shift
  case $kind in
    nats)
      port_free "$nats_port"
      taskset -c "$server_cpu" nats-server -a 127.0.0.1 -p "$nats_port" "$@" 2>"$out/broker-nats.log" &
      broker_pid=$!; pids+=($!); wait_port "$nats_port" ;;
    redis)
      port_free "$redis_port"
      taskset -c "$server_cpu" redis-server --bind 127.0.0.1 --port "$redis_port" --save '' --appendonly no "$@" \
        >"$out/broker-redis.log" 2>&1 &
      broker_pid=$!; pids+=($!); wait_port "$redis_port" ;;
    memory) broker_pid= ;;
    *) echo "unknown broker $kind" >&2; exit 2 ;;
  esac
}

# nats-server with its WebSocket listener (bench/nats-ws.conf: WebSocket on
# $nats_ws_port), the peer of the fan-out benchmarks; its pid is ${pids[-1]}.
start_nats_ws() {
  port_free "$nats_port"; port_free "$nats_ws_port"
  taskset -c "$server_cpu" nats-server -c "$(config_copy bench/nats-ws.conf)" 2>"$out/nats-ws.log" &
  pids+=($!)
  wait_port "$nats_ws_port"
}

# The load tool pinned to load_cpu, with a hard time limit.
run_load() { taskset -c "$load_cpu" "$load" --max-secs 600 "$@"; }
