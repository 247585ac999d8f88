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

# ---- scratch space and cleanup: everything started here is stopped on any exit ----
WORK=$(mktemp -d "${EI_BENCH_DIR:-/tmp}/ei-bench.XXXXXX")
STARTED=()
cleanup() {
    local p
    for p in "${STARTED[@]}"; do
        kill -TERM "$p" 2>/dev/null || true
    done
    for p in "${STARTED[@]}"; do
        wait "$p" 2>/dev/null || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { printf '[bench] %s\n' "$*" >&2; }
die() {
    printf '[bench] error: %s\n' "$*" >&2
    exit 1
}

LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- tools: wrk and the vips CLI from Debian packages ----
apt_install() {
    local sudo=""
    [[ $(id -u) -eq 0 ]] || sudo="sudo"
    log "installing $* (apt-get)"
    $sudo apt-get install -y --no-install-recommends "$@" >/dev/null ||
        { $sudo apt-get update >/dev/null && $sudo apt-get install -y --no-install-recommends "$@" >/dev/null; }
}
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

# the service refuses to run as root unless allowed
if [[ $(id -u) == 0 ]]; then export EI_RELAY_ALLOW_ROOT=true; fi
RELAY=${EI_RELAY_BIN:-}
if [[ ${EI_BENCH_SKIP_RELAY:-0} != 1 && -z $RELAY ]]; then
    log "building ei-relay (Release) in $BUILD"
    cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
    cmake --build "$BUILD" -j"$(nproc)" --target ei-relay >"$WORK/build.log" 2>&1 ||
        { tail -n 30 "$WORK/build.log" >&2; die "ei-relay does not build (EI_BENCH_SKIP_RELAY=1 skips it)"; }
    RELAY=$BUILD/ei-relay
fi

# ---- payloads ----
JSON_BODY=$HERE/result.json
JPEG=$WORK/image.jpg
# 640x480 colour noise at Q75 gives a ~50 KB JPEG that does not compress away (a camera frame).
for c in r g b; do vips gaussnoise "$WORK/$c.v" 640 480 --mean 128 --sigma 12; done
vips bandjoin "$WORK/r.v $WORK/g.v $WORK/b.v" "$WORK/rgb.v"
vips cast "$WORK/rgb.v" "$WORK/u8.v" uchar
vips copy "$WORK/u8.v" "${JPEG}[Q=75,strip]"
rm -f "$WORK"/*.v
JPEG_BYTES=$(stat -c %s "$JPEG")
BOUNDARY=----eirelaybench7d3f9a
MULTIPART=$WORK/multipart.body
{
    printf -- '--%s\r\nContent-Disposition: form-data; name="json"\r\n' "$BOUNDARY"
    printf 'Content-Type: application/json\r\n\r\n'
    tr -d '\n' <"$JSON_BODY"
    printf '\r\n--%s\r\nContent-Disposition: form-data; name="image"; filename="frame.jpg"\r\n' "$BOUNDARY"
    printf 'Content-Type: image/jpeg\r\n\r\n'
    cat "$JPEG"
    printf '\r\n--%s--\r\n' "$BOUNDARY"
} >"$MULTIPART"
JSON_LEN=$(tr -d '\n' <"$JSON_BODY" | wc -c)
tr -d '\n' <"$JSON_BODY" >"$WORK/result.json"

# ---- helpers ----
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
# utime+stime of a process in clock ticks (all its threads).
proc_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# busy and total jiffies of the whole machine.
machine_ticks() { awk '/^cpu /{b=$2+$3+$4+$7+$8; print b, b+$5+$6}' /proc/stat; }
status_kb() { awk -v k="$2:" '$1==k{print $2}' "/proc/$1/status"; }
wait_http() { # url seconds
    local i
    for ((i = 0; i < $2 * 20; i++)); do
        curl -s -o /dev/null "$1" && return 0
        sleep 0.05
    done
    return 1
}
# run_wrk NAME URL BODY CTYPE PID -> sets W_RPS W_ERR W_P50 W_P99 W_CPU (CPU split, in % of one core)
run_wrk() {
    local name=$1 url=$2 body=$3 ctype=$4 pid=$5 out=$WORK/wrk-$1.txt
    local t0 t1 mb0 mt0 mb1 mt1
    t0=$(proc_ticks "$pid")
    read -r mb0 mt0 < <(machine_ticks)
    BENCH_BODY=$body BENCH_CTYPE=$ctype BENCH_TOKEN=$TOKEN \
        /usr/bin/time -o "$WORK/wrk-$name.time" -f '%U %S' wrk -t"$WRK_THREADS" -c"$CONNS" -d"${SECS}s" --timeout 5s -s "$HERE/post.lua" "$url" >"$out" 2>&1 ||
        { cat "$out" >&2; die "wrk failed for $name"; }
    t1=$(proc_ticks "$pid")
    read -r mb1 mt1 < <(machine_ticks)
    local line
    line=$(grep '^BENCH ' "$out") || { cat "$out" >&2; die "no result from wrk for $name"; }
    W_RPS=$(sed -E 's/.* rps=([0-9.]+).*/\1/' <<<"$line")
    W_ERR=$(awk '{for(i=1;i<=NF;i++){split($i,a,"="); if(a[1]=="status_errors"||a[1]=="socket_errors"||a[1]=="timeouts") s+=a[2]}} END{print s+0}' <<<"$line")
    W_P50=$(sed -E 's/.* p50_us=([0-9]+).*/\1/' <<<"$line")
    W_P99=$(sed -E 's/.* p99_us=([0-9]+).*/\1/' <<<"$line")
    local hz
    hz=$(getconf CLK_TCK)
    W_SRV_CPU=$(awk -v a="$t0" -v b="$t1" -v hz="$hz" -v s="$SECS" 'BEGIN{printf "%.0f", (b-a)/hz/s*100}')
    W_ALL_CPU=$(awk -v b0="$mb0" -v b1="$mb1" -v t0="$mt0" -v t1="$mt1" -v n="$(nproc)" \
        'BEGIN{printf "%.0f", (t1>t0)?(b1-b0)/(t1-t0)*100*n:0}')
    W_WRK_CPU=$(awk -v s="$SECS" 'NF==2{printf "%.0f", ($1+$2)/s*100}' "$WORK/wrk-$name.time")
    W_OTHER_CPU=$((W_ALL_CPU - W_SRV_CPU - W_WRK_CPU))
    ((W_OTHER_CPU < 0)) && W_OTHER_CPU=0
    W_CPU="server ${W_SRV_CPU}%, wrk ${W_WRK_CPU}%, other ${W_OTHER_CPU}% CPU"
    log "$name: $line ($W_CPU, machine ${W_ALL_CPU}% of $(($(nproc) * 100))%)"
}
stop_pid() { # pid: SIGTERM and wait, then forget it
    kill -TERM "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
    local keep=() p
    for p in "${STARTED[@]}"; do [[ $p == "$1" ]] || keep+=("$p"); done
    STARTED=("${keep[@]+"${keep[@]}"}")
}

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
start_relay() { # name -> RELAY_PID RELAY_URL
    local dir=$WORK/relay-$1 port wsport
    mkdir -p "$dir"
    port=$(free_port)
    wsport=$(free_port)
    cat >"$dir/config.json" <<EOF
{"http_port": $port, "ws_port": $wsport, "bind": "127.0.0.1",
 "db_path": "$dir/ei-relay.db", "web_root": "$ROOT/web", "log_level": "warn",
 "tokens": [{"token": "$TOKEN", "role": "admin"}]}
EOF
    (cd "$dir" && exec "$RELAY" --config "$dir/config.json") >"$dir/relay.log" 2>&1 &
    RELAY_PID=$!
    STARTED+=("$RELAY_PID")
    RELAY_URL=http://127.0.0.1:$port
    wait_http "$RELAY_URL/api/v1/health" 10 ||
        { tail -n 20 "$dir/relay.log" >&2; die "ei-relay did not answer /api/v1/health"; }
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
probe_ingest() { # url body ctype: one request must give 201
    local code
    code=$(curl -s -o "$WORK/probe.out" -w '%{http_code}' -H "Authorization: Bearer $TOKEN" \
        -H "Content-Type: $3" --data-binary "@$2" "$1")
    [[ $code == 201 ]] || { cat "$WORK/probe.out" >&2; die "ingest probe answered $code, not 201"; }
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
    echo "| JSON + 50 KB JPEG ingest | $(printf '%.0f' "$IMG_RPS")/s | ≥ 2,000/s | $(verdict "$IMG_RPS" 2000 ge) |"
    echo "| RSS idle (after start) | $(awk -v k="$IDLE_KB" 'BEGIN{printf "%.1f", k/1024}') MB | < 16 MB | $(verdict "$IDLE_KB" 16384 lt) |"
    echo "| RSS peak under load (VmHWM) | $(awk -v k="$PEAK_KB" 'BEGIN{printf "%.1f", k/1024}') MB | < 64 MB | $(verdict "$PEAK_KB" 65536 lt) |"
    if ((JSON_ERR + IMG_ERR > 0)); then
        echo
        echo "WARNING: ei-relay answered $((JSON_ERR + IMG_ERR)) requests with an error or timed out; the rates count them."
    fi
fi
