#!/usr/bin/env bash
# run.sh - the ingest benchmark: measures, in one run on one machine, the libmicrohttpd
# empty-handler ceiling, ei-relay's durable ingest rate (JSON, and JSON + 50 KB JPEG), the old
# guid-file approach, and ei-relay's RSS; prints a table with PASS/BELOW against the targets in
# DESIGN.md. It reports only: the exit status is 0 whenever the measurements ran, whatever the
# numbers (it is not part of ctest). See tests/bench/README.md.
#
# Usage: tests/bench/run.sh
# Environment (all optional):
#   EI_BENCH_SECONDS   length of each measurement, 1..10 (default 10)
#   EI_BENCH_CONNS     wrk connections (default 32)     EI_BENCH_THREADS  wrk threads (default 2)
#   EI_BENCH_BUILD     CMake build dir (default <repo>/build-bench, Release)
#   EI_RELAY_BIN       use this ei-relay binary instead of building one
#   EI_BENCH_DIR       parent of the scratch directory (default /tmp): put it on the disk to test
#   EI_BENCH_SKIP_RELAY=1  only the ceiling and the guid-file rows (before ei-relay links)
#   EI_BENCH_LOOP=1    also row 5, an experiment: the relay's normalize and store behind an event
#                      loop of its own (ingest_loop.c) instead of libmicrohttpd, an upper bound
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BUILD=${EI_BENCH_BUILD:-$ROOT/build-bench}
SECS=${EI_BENCH_SECONDS:-10}
CONNS=${EI_BENCH_CONNS:-32}
WRK_THREADS=${EI_BENCH_THREADS:-2}
TOKEN=bench-admin-token-0123456789
if ! [[ $SECS =~ ^[0-9]+$ ]] || ((SECS < 1 || SECS > 10)); then
    echo "run.sh: EI_BENCH_SECONDS must be 1..10" >&2
    exit 2
fi

# ---- scratch space and cleanup (lib.sh): everything started here is stopped on any exit ----
# shellcheck source=tests/bench/lib.sh
. "$HERE/lib.sh"
bench_init ei-bench bench

LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- tools: wrk and the vips CLI from Debian packages ----
command -v wrk >/dev/null || apt_install wrk
command -v vips >/dev/null || apt_install libvips-tools
command -v curl >/dev/null || apt_install curl
[[ -x /usr/bin/time ]] || apt_install time

# ---- build: the helpers directly with cc, ei-relay with CMake (Release) ----
TOOLS=$WORK/bin
mkdir -p "$TOOLS"
CFLAGS_BENCH=(-std=c11 -O2 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes
    -Wmissing-prototypes -Wvla)
# shellcheck disable=SC2046
cc "${CFLAGS_BENCH[@]}" "$HERE/mhd_empty.c" -o "$TOOLS/mhd_empty" \
    $(pkg-config --cflags --libs libmicrohttpd) -lpthread
cc "${CFLAGS_BENCH[@]}" "$HERE/guidfiles_old.c" -o "$TOOLS/guidfiles_old"

RELAY=${EI_RELAY_BIN:-}
if [[ ${EI_BENCH_SKIP_RELAY:-0} != 1 && -z $RELAY ]]; then
    bench_build_relay "$BUILD"
    RELAY=$BUILD/ei-relay
fi

# ---- payloads ----
JSON_BODY=$HERE/result.json
JPEG=$WORK/image.jpg
bench_jpeg "$JPEG" # 640x480 colour noise at Q75: ~50 KB that does not compress away
JPEG_BYTES=$(stat -c %s "$JPEG")
MULTIPART=$WORK/multipart.body
bench_multipart "$JSON_BODY" "$JPEG" "$MULTIPART"
JSON_LEN=$(tr -d '\n' <"$JSON_BODY" | wc -c)
tr -d '\n' <"$JSON_BODY" >"$WORK/result.json"

# ---- helpers: free_port, proc_ticks, status_kb, wait_http, run_wrk, stop_pid in lib.sh ----
ROWS=()
row() { ROWS+=("$(printf '| %s | %s | %s | %s |' "$1" "$2" "$3" "$4")"); }

# ---- 1. libmicrohttpd empty-handler ceiling (measured again after the ei-relay runs) ----
measure_ceiling() { # label -> appends CEILS
    local port pid
    port=$(free_port)
    "$TOOLS/mhd_empty" "$port" 2 >"$WORK/mhd_empty.out" 2>&1 &
    pid=$!
    STARTED+=("$pid")
    wait_http "http://127.0.0.1:$port/" 5 || die "mhd_empty did not start"
    run_wrk "ceiling-$1" "http://127.0.0.1:$port/api/v1/inferences" "$WORK/result.json" \
        application/json "$pid"
    CEILS+=("$W_RPS")
    row "1$1. libmicrohttpd empty handler (ceiling), ${JSON_LEN} B JSON" \
        "$(printf '%.0f req/s' "$W_RPS")" "p50 ${W_P50} µs, p99 ${W_P99} µs, errors ${W_ERR}" \
        "$W_CPU"
    stop_pid "$pid"
}
CEILS=()
measure_ceiling a

# ---- 2./3. ei-relay: fresh database each, durable commit (synchronous=FULL default) ----
IDLE_KB="" PEAK_KB=0
start_relay() { # name -> RELAY_PID RELAY_URL (lib.sh)
    relay_start "$1" "$WORK/relay-$1"
    wait_health 10
}
relay_rows() { # "S stored, C commits (avg batch B)" from /metrics
    local m stored commits deleted
    m=$(curl -s -H "Authorization: Bearer $TOKEN" "$RELAY_URL/metrics")
    stored=$(awk '$1=="ei_relay_inferences_stored_total"{print $2}' <<<"$m")
    commits=$(awk '$1=="ei_relay_commits_total"{print $2}' <<<"$m")
    deleted=$(awk '$1=="ei_relay_retention_deleted_total"{print $2}' <<<"$m")
    if [[ ${stored:-x} =~ ^[0-9]+$ && ${commits:-x} =~ ^[0-9]+$ && $commits -gt 0 ]]; then
        printf '%s stored in %s commits (avg batch %s)' "$stored" "$commits" "$((stored / commits))"
        [[ ${deleted:-0} =~ ^[0-9]+$ && ${deleted:-0} -gt 0 ]] && printf ', %s removed by retention' "$deleted"
        echo
    else
        echo "stored: ?"
    fi
}

if [[ ${EI_BENCH_SKIP_RELAY:-0} != 1 ]]; then
    start_relay json
    sleep 1 # let start-up work (migrations, first retention pass) settle before reading RSS
    IDLE_KB=$(status_kb "$RELAY_PID" VmRSS)
    probe_ingest "$RELAY_URL/api/v1/inferences" "$WORK/result.json" application/json
    run_wrk relay-json "$RELAY_URL/api/v1/inferences" "$WORK/result.json" application/json "$RELAY_PID"
    JSON_RPS=$W_RPS
    HWM=$(status_kb "$RELAY_PID" VmHWM)
    ((HWM > PEAK_KB)) && PEAK_KB=$HWM
    row "2. ei-relay ingest, ${JSON_LEN} B JSON, durable" "$(printf '%.0f req/s' "$W_RPS")" \
        "p50 ${W_P50} µs, p99 ${W_P99} µs, errors ${W_ERR}, $(relay_rows)" \
        "$W_CPU; peak RSS $((HWM / 1024)) MB"
    JSON_ERR=$W_ERR
    stop_pid "$RELAY_PID"

    start_relay images
    probe_ingest "$RELAY_URL/api/v1/inferences" "$MULTIPART" "multipart/form-data; boundary=$BOUNDARY"
    run_wrk relay-images "$RELAY_URL/api/v1/inferences" "$MULTIPART" \
        "multipart/form-data; boundary=$BOUNDARY" "$RELAY_PID"
    IMG_RPS=$W_RPS
    HWM=$(status_kb "$RELAY_PID" VmHWM)
    ((HWM > PEAK_KB)) && PEAK_KB=$HWM
    row "3. ei-relay ingest, JSON + $((JPEG_BYTES / 1024)) KB JPEG (multipart), durable" \
        "$(printf '%.0f req/s' "$W_RPS")" \
        "p50 ${W_P50} µs, p99 ${W_P99} µs, errors ${W_ERR}, $(relay_rows)" \
        "$W_CPU; peak RSS $((HWM / 1024)) MB"
    IMG_ERR=$W_ERR
    stop_pid "$RELAY_PID"
fi

# ---- 5. (EI_BENCH_LOOP=1) the experiment: the relay's normalize and store behind an event loop
# of its own instead of libmicrohttpd (ingest_loop.c; an upper bound, not a rate the relay has) ----
LOOP_RPS=""
if [[ ${EI_BENCH_LOOP:-0} == 1 && ${EI_BENCH_SKIP_RELAY:-0} != 1 ]]; then
    CORE_LIB=$(dirname "$RELAY")/libeirelay_core.a
    if [[ ! -f $CORE_LIB ]]; then
        bench_build_relay "$BUILD" eirelay_core
        CORE_LIB=$BUILD/libeirelay_core.a
    fi
    # shellcheck disable=SC2046
    cc "${CFLAGS_BENCH[@]}" -I "$ROOT/server" "$HERE/ingest_loop.c" "$CORE_LIB" \
        -o "$TOOLS/ingest_loop" $(pkg-config --cflags --libs libmicrohttpd sqlite3 libcjson vips) \
        -lpthread -lm
    mkdir -p "$WORK/loop"
    LOOP_PORT=$(free_port)
    "$TOOLS/ingest_loop" "$WORK/loop/ei-relay.db" "$LOOP_PORT" "$TOKEN" >"$WORK/loop.out" 2>"$WORK/loop.err" &
    LOOP_PID=$!
    STARTED+=("$LOOP_PID")
    wait_http "http://127.0.0.1:$LOOP_PORT/" 10 || die "ingest_loop did not start"
    probe_ingest "http://127.0.0.1:$LOOP_PORT/api/v1/inferences" "$WORK/result.json" application/json
    run_wrk loop-json "http://127.0.0.1:$LOOP_PORT/api/v1/inferences" "$WORK/result.json" \
        application/json "$LOOP_PID"
    LOOP_RPS=$W_RPS
    stop_pid "$LOOP_PID"
    row "5. experiment: normalize + store behind an event loop of its own (ingest_loop.c), ${JSON_LEN} B JSON, durable" \
        "$(printf '%.0f req/s' "$W_RPS")" \
        "p50 ${W_P50} µs, p99 ${W_P99} µs, errors ${W_ERR}; $(sed -n 's/^ingest_loop: //p' "$WORK/loop.out")" \
        "$W_CPU"
fi

[[ ${EI_BENCH_SKIP_RELAY:-0} == 1 ]] || measure_ceiling b
CEIL_RPS=$(printf '%s\n' "${CEILS[@]}" | awk '{s+=$1} END{printf "%.1f", s/NR}')

# ---- 4. the old guid-file approach: <guid>.json (+ <guid>.img), write + fsync each ----
for mode in images json; do
    mkdir -p "$WORK/guid-$mode"
    if [[ $mode == images ]]; then
        out=$("$TOOLS/guidfiles_old" "$WORK/guid-$mode" "$SECS" "$WORK/result.json" "$JPEG")
        what="4a. old guid files, .json + $((JPEG_BYTES / 1024)) KB .img, write+fsync each"
    else
        out=$("$TOOLS/guidfiles_old" "$WORK/guid-$mode" "$SECS" "$WORK/result.json")
        what="4b. old guid files, .json only, write+fsync"
    fi
    rate=$(awk '{print $6}' <<<"$out")
    log "guidfiles $mode: $out"
    row "$what" "$(printf '%.0f inferences/s' "$rate")" "one writer thread, sequential" "-"
    rm -rf "$WORK/guid-$mode"
done

# ---- report ----
verdict() { awk -v v="$1" -v t="$2" -v dir="$3" 'BEGIN{ok = dir == "ge" ? v >= t : v < t; print ok ? "PASS" : "BELOW"}'; }
echo
echo "ei-relay ingest benchmark — $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPU ($(awk -F': ' '/model name/{print $2; exit}' /proc/cpuinfo)), kernel $(uname -r)"
echo "load average before the run: $LOAD0 (other work on the machine skews the rates)"
echo "wrk -t$WRK_THREADS -c$CONNS -d${SECS}s keep-alive on loopback; wrk and the server share the same $(nproc) cores"
echo
echo "| run | rate | latency / errors | CPU, memory |"
echo "|---|---|---|---|"
printf '%s\n' "${ROWS[@]}"
echo
if [[ ${EI_BENCH_SKIP_RELAY:-0} != 1 ]]; then
    RATIO=$(awk -v a="$JSON_RPS" -v b="$CEIL_RPS" 'BEGIN{printf "%.1f", a/b*100}')
    echo "| target | measured | goal | verdict |"
    echo "|---|---|---|---|"
    echo "| JSON ingest / empty-handler ceiling (mean of 1a, 1b) | ${RATIO} % | ≥ 50 % | $(verdict "$RATIO" 50 ge) |"
    if [[ -n $LOOP_RPS ]]; then
        echo "| (experiment, row 5) event loop of its own / empty-handler ceiling | $(awk -v a="$LOOP_RPS" -v b="$CEIL_RPS" 'BEGIN{printf "%.1f", a/b*100}') % | - | - |"
    fi
    echo "| JSON + 50 KB JPEG ingest | $(printf '%.0f' "$IMG_RPS")/s | ≥ 2,000/s | $(verdict "$IMG_RPS" 2000 ge) |"
    echo "| RSS idle (after start) | $(awk -v k="$IDLE_KB" 'BEGIN{printf "%.1f", k/1024}') MB | < 16 MB | $(verdict "$IDLE_KB" 16384 lt) |"
    echo "| RSS peak under load (VmHWM) | $(awk -v k="$PEAK_KB" 'BEGIN{printf "%.1f", k/1024}') MB | < 64 MB | $(verdict "$PEAK_KB" 65536 lt) |"
    if ((JSON_ERR + IMG_ERR > 0)); then
        echo
        echo "WARNING: ei-relay answered $((JSON_ERR + IMG_ERR)) requests with an error or timed out; the rates count them."
    fi
fi
