#!/usr/bin/env bash
# Connection setup rate with and without the jwt-auth plugin: COUNT upgrades
# (TCP + HTTP + auth + welcome) against each manifest, alternately, ROUNDS
# times. Server on CPU 0, load tool on CPU 1. Every connection presents the
# same valid HS256 token, so each upgrade runs one full verification.
# usage: bench/auth.sh [COUNT] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
count=${1:-5000} rounds=${2:-3}
ulimit -n "$(ulimit -Hn)"
token=$(python3 - <<'PY'
import base64, hashlib, hmac, json, time
b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
body = b64(json.dumps({"sub": "bench-user", "iss": "bench", "exp": int(time.time()) + 3600}).encode())
sig = b64(hmac.new(b"bench-secret-0123456789abcdef", f"{head}.{body}".encode(), hashlib.sha256).digest())
print(f"{head}.{body}.{sig}")
PY
)
run() { # manifest label
  taskset -c 0 target/release/ferrygate serve --config "$1" 2>/dev/null &
  local server=$!
  for _ in $(seq 100); do curl -sf http://127.0.0.1:18080/readyz >/dev/null && break; sleep 0.1; done
  printf '%-10s ' "$2"
  taskset -c 1 target/release/ferrygate-load conns --url "ws://127.0.0.1:18080/ws?token=$token" \
    --count "$count" --settle-secs 1 --sources 127.0.0.1-8 --server-pid "$server" 2>&1 \
    | grep -iE 'conn.*/s|rate|setup' | head -2 | tr '\n' ' '
  echo
  kill "$server"; wait "$server" 2>/dev/null || true
}
for _ in $(seq "$rounds"); do
  run bench/ferrygate.toml no-auth
  run bench/ferrygate-auth.toml jwt-auth
done
