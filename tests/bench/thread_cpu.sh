#!/usr/bin/env bash
# thread_cpu.sh - CPU per stored inference of each ei-relay thread (utime+stime of
# /proc/PID/task/TID, threads of one name summed, divided by the inferences stored) under
# durable JSON ingest: wrk -t2 -c32 with post.lua and result.json, as run.sh's row 2. A figure
# that the load of other processes moves little (unlike req/s). See tests/bench/README.md.
#   EI_RELAY_BIN        the ei-relay binary (required: a Release build)
#   EI_BENCH_SECONDS    measured seconds (default 5, after a 1 s warm-up)
#   EI_BENCH_RUNS       runs, each on a fresh database (default 1)
#   EI_BENCH_LISTEN=1   one live subscriber (/api/v1/live, the black-box tests' client) reads
#                       every message during the runs; without it nobody listens
#   EI_BENCH_SYSCALLS=1 also count each thread's system calls and context switches per stored
#                       inference (perf stat --per-thread: counts, which load does not move);
#                       or a perf event list, e.g. syscalls:sys_enter_epoll_ctl,syscalls:sys_enter_write
#   EI_BENCH_PERF=DIR   record each run's measured seconds with `perf record --call-graph dwarf`
#                       into DIR/perf-RUN.data, with DIR/report-RUN.txt (by thread and symbol)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
# shellcheck source=tests/bench/lib.sh
source "$HERE/lib.sh"
bench_init ei-thread-cpu thread_cpu
TOKEN=bench-token-thread-cpu
# shellcheck disable=SC2034  # read by lib.sh (relay_start)
RELAY=${EI_RELAY_BIN:?set EI_RELAY_BIN to a Release ei-relay}
SECS=${EI_BENCH_SECONDS:-5}
command -v wrk >/dev/null || apt_install wrk
tr -d '\n' <"$HERE/result.json" >"$WORK/result.json"

stored() {
    curl -s -H "Authorization: Bearer $TOKEN" "$RELAY_URL/metrics" |
        awk '$1=="ei_relay_inferences_stored_total"{print $2}'
}
commits() { # the writer's per-commit costs depend on the batch: it is printed with each run
    curl -s -H "Authorization: Bearer $TOKEN" "$RELAY_URL/metrics" |
        awk '$1=="ei_relay_commits_total"{print $2}'
}
for run in $(seq 1 "${EI_BENCH_RUNS:-1}"); do
    relay_start "run$run" "$WORK/relay-$run"
    wait_health 30
    if [[ ${EI_BENCH_LISTEN:-0} == 1 ]]; then
        wsport=$(sed -nE 's/.*"ws_port": ([0-9]+).*/\1/p' "$WORK/relay-$run/config-run$run.json")
        python3 -c '
import sys
sys.path.insert(0, sys.argv[1])
from harness.ws_client import connect_live
ws, hello = connect_live(int(sys.argv[2]), sys.argv[3])
print("subscribed", flush=True)
n = 0
try:
    while True:
        ws.recv_message(30)
        n += 1
except Exception:
    print("subscriber: %d messages" % n, file=sys.stderr)
' "$ROOT/tests/blackbox" "$wsport" "$TOKEN" >"$WORK/sub.out" &
        STARTED+=($!)
        until grep -q subscribed "$WORK/sub.out" 2>/dev/null; do sleep 0.1; done
    fi
    export BENCH_BODY=$WORK/result.json BENCH_CTYPE=application/json BENCH_TOKEN=$TOKEN
    wrk -t2 -c32 -d1s -s "$HERE/post.lua" "$RELAY_URL/api/v1/inferences" >/dev/null
    n0=$(stored)
    c0=$(commits)
    th0=$(thread_ticks "$RELAY_PID")
    perf_pid=""
    if [[ -n ${EI_BENCH_PERF:-} ]]; then
        mkdir -p "$EI_BENCH_PERF"
        perf record -q -F 499 --call-graph dwarf,16384 -p "$RELAY_PID" \
            -o "$EI_BENCH_PERF/perf-$run.data" >"$EI_BENCH_PERF/record-$run.log" 2>&1 &
        perf_pid=$!
        STARTED+=("$perf_pid")
    fi
    stat_pid=""
    if [[ ${EI_BENCH_SYSCALLS:-0} != 0 ]]; then
        events=raw_syscalls:sys_enter,context-switches
        [[ $EI_BENCH_SYSCALLS == 1 ]] || events=$EI_BENCH_SYSCALLS
        perf stat -x, --per-thread -e "$events" -p "$RELAY_PID" \
            -o "$WORK/stat-$run.txt" &
        stat_pid=$!
        STARTED+=("$stat_pid")
    fi
    wrk -t2 -c32 -d"${SECS}s" --timeout 5s -s "$HERE/post.lua" "$RELAY_URL/api/v1/inferences" >"$WORK/wrk.txt"
    th1=$(thread_ticks "$RELAY_PID")
    n1=$(stored)
    c1=$(commits)
    if [[ -n $stat_pid ]]; then
        kill -INT "$stat_pid" 2>/dev/null || true
        wait "$stat_pid" 2>/dev/null || true
        # "comm-tid,count,,event,...": summed per thread name and event, per inference
        awk -F, -v n=$((n1 - n0)) 'NF > 4 && $2 ~ /^[0-9]+$/ {
                name = $1; sub(/-[0-9]+$/, "", name); c[name " " $4] += $2 }
            END { for (k in c) if (c[k] / n >= 0.01) printf "  %s %.2f per inference\n", k, c[k] / n }' \
            "$WORK/stat-$run.txt" | sort
    fi
    if [[ -n $perf_pid ]]; then
        kill -INT "$perf_pid" 2>/dev/null || true
        wait "$perf_pid" 2>/dev/null || true
        perf report -i "$EI_BENCH_PERF/perf-$run.data" --stdio --no-children \
            --sort comm,dso,symbol -g none >"$EI_BENCH_PERF/report-$run.txt" 2>/dev/null || true
    fi
    total=$(awk '{s+=$2} END{print s}' <<<"$th1")
    total0=$(awk '{s+=$2} END{print s}' <<<"$th0")
    printf 'run %d: %d inferences in %d s (%d commits), relay %s µs each; %s\n' "$run" \
        $((n1 - n0)) "$SECS" $((c1 - c0)) \
        "$(us_per $((total - total0)) $((n1 - n0)))" "$(thread_us_per "$th0" "$th1" $((n1 - n0)))"
    stop_pid "$RELAY_PID"
done
