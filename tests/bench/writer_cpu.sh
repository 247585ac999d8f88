#!/usr/bin/env bash
# writer_cpu.sh - CPU per inference of the relay's threads during JSON ingest: what noise on a
# shared machine moves least. Starts the given ei-relay (fresh database in a temp dir, default
# settings as in run.sh's row 2), POSTs tests/bench/result.json with wrk (-t2 -c32, keep-alive,
# EI_BENCH_SECONDS, default 5) and prints the rate, the inferences stored, and the CPU
# (utime + stime from /proc/PID/task/TID/stat) per stored inference of the store writer thread
# (eir-writer) and of the whole process. Reports only; not part of ctest.
#   tests/bench/writer_cpu.sh build-rel/ei-relay
set -euo pipefail
RELAY=$(realpath "${1:?usage: writer_cpu.sh EI_RELAY_BINARY}")
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
SECS=${EI_BENCH_SECONDS:-5}
TOKEN=bench-admin-token-0123456789
WORK=$(mktemp -d "${EI_BENCH_DIR:-/tmp}/ei-writer-cpu.XXXXXX")
PID=""
# the service refuses to run as root unless allowed
if [[ $(id -u) == 0 ]]; then export EI_RELAY_ALLOW_ROOT=true; fi
cleanup() {
    [[ -n $PID ]] && kill -TERM "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PORT=$(free_port)
cat >"$WORK/config.json" <<EOF
{"http_port": $PORT, "ws_port": $(free_port), "bind": "127.0.0.1",
 "db_path": "$WORK/ei-relay.db", "web_root": "$ROOT/web", "log_level": "warn",
 "tokens": [{"token": "$TOKEN", "role": "admin"}]}
EOF
(cd "$WORK" && exec "$RELAY" --config "$WORK/config.json") >"$WORK/relay.log" 2>&1 &
PID=$!
URL=http://127.0.0.1:$PORT
for _ in $(seq 200); do curl -sf "$URL/api/v1/health" >/dev/null && break; sleep 0.05; done
curl -sf "$URL/api/v1/health" >/dev/null || { cat "$WORK/relay.log" >&2; exit 1; }
# ticks of the thread named $1 (all threads: "all")
ticks() {
    local total=0 t c
    for t in /proc/"$PID"/task/*; do
        c=$(cat "$t/comm" 2>/dev/null) || continue
        [[ $1 == all || $c == "$1" ]] || continue
        total=$((total + $(awk '{sub(/.*\) /, ""); print $12 + $13}' "$t/stat")))
    done
    echo "$total"
}
stored() {
    curl -s -H "Authorization: Bearer $TOKEN" "$URL/metrics" |
        awk '$1=="ei_relay_inferences_stored_total"{print $2}'
}
s0=$(stored) w0=$(ticks eir-writer) a0=$(ticks all)
BENCH_BODY=$HERE/result.json BENCH_CTYPE=application/json BENCH_TOKEN=$TOKEN \
    wrk -t2 -c32 -d"${SECS}s" --timeout 5s -s "$HERE/post.lua" "$URL/api/v1/inferences" >"$WORK/wrk.txt" 2>&1
s1=$(stored) w1=$(ticks eir-writer) a1=$(ticks all)
hz=$(getconf CLK_TCK)
n=$((s1 - s0))
awk -v n="$n" -v w="$((w1 - w0))" -v a="$((a1 - a0))" -v hz="$hz" -v s="$SECS" \
    -v line="$(grep '^BENCH ' "$WORK/wrk.txt")" 'BEGIN{
    match(line, /rps=[0-9.]+/); rps = substr(line, RSTART + 4, RLENGTH - 4);
    printf "rate %.0f req/s, %d stored; writer %.1f us/inference (%.0f%% of a core), relay %.1f us/inference\n",
        rps, n, w / hz / n * 1e6, w / hz / s * 100, a / hz / n * 1e6 }'
