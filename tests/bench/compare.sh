#!/usr/bin/env bash
# compare.sh - what a user gains by switching (issue 13, item 5), side by side, in one run on
# this machine:
#   1. the old approach as a user has it (the guid-file writer of run.sh: <guid>.json and
#      <guid>.img, each write + fsync) against ei-relay's durable HTTP ingest of the same
#      document (and the same 48 KB JPEG): rate, CPU per inference, memory, disk bytes per
#      inference;
#   2. for the eim source: the real edge-impulse-linux-runner + ei-relay against ei-relay alone
#      on the same model and camera (tests/bench/eim.py, run as it is; needs EI_RUNNER_DIR).
# Prints the table for tests/bench/README.md. It reports: exit 0 whenever it measured, whatever
# the numbers (not part of ctest). Loopback only; every process it starts is stopped on exit and
# its scratch dir removed.
#
# Usage: [EI_RUNNER_DIR=<dir holding node_modules/edge-impulse-linux>] tests/bench/compare.sh
#   (about 3 minutes; without EI_RUNNER_DIR the runner rows are skipped and say so)
# Environment (all optional):
#   EI_BENCH_SECONDS   each ingest measurement, 1..10 (default 10)
#   EI_EIM_SECONDS     eim.py's window per setup (default 30; its warm-up is EI_BENCH_WARMUP, 5)
#   EI_BENCH_BUILD     build dir (default <repo>/build-bench, Release)
#   EI_RELAY_BIN       use this ei-relay binary, skip the build
#   EI_BENCH_DIR       parent of the scratch dir (default /tmp): the guid files and databases
#                      are written there, so point it at the disk to measure
#   EI_RUNNER_DIR      where npm edge-impulse-linux is installed (see eim.py)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
# shellcheck source=tests/bench/lib.sh
. "$HERE/lib.sh"

BUILD=${EI_BENCH_BUILD:-$ROOT/build-bench}
SECS=${EI_BENCH_SECONDS:-10}
EIM_SECS=${EI_EIM_SECONDS:-30}
CONNS=32
WRK_THREADS=2
TOKEN=bench-admin-token-0123456789
if ! [[ $SECS =~ ^[0-9]+$ ]] || ((SECS < 1 || SECS > 10)); then
    echo "compare.sh: EI_BENCH_SECONDS must be 1..10" >&2
    exit 2
fi
if ! [[ $EIM_SECS =~ ^[0-9]+$ ]] || ((EIM_SECS < 5)); then
    echo "compare.sh: EI_EIM_SECONDS must be >= 5" >&2
    exit 2
fi

bench_init ei-comparebench comparebench
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
REV=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet HEAD 2>/dev/null || echo ' (+ uncommitted changes)')
T_BEGIN=$(now_ms)
need_cmd wrk wrk
need_cmd curl curl
[[ -x /usr/bin/time ]] || apt_install time

RELAY=${EI_RELAY_BIN:-}
if [[ -z $RELAY ]]; then
    bench_build_relay "$BUILD"
    RELAY=$BUILD/ei-relay
fi
TOOLS=$WORK/bin
mkdir -p "$TOOLS"
cc -std=c11 -O2 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
    -Wmissing-prototypes -Wvla "$HERE/guidfiles_old.c" -o "$TOOLS/guidfiles_old"

# ---- payloads: run.sh's document and JPEG, the same multipart body ----
tr -d '\n' <"$HERE/result.json" >"$WORK/result.json"
JSON_LEN=$(stat -c %s "$WORK/result.json")
JPEG=$WORK/image.jpg
bench_jpeg "$JPEG"
JPEG_BYTES=$(stat -c %s "$JPEG")
MULTIPART=$WORK/multipart.body
bench_multipart "$WORK/result.json" "$JPEG" "$MULTIPART"

# ---- 1a. the old approach: one writer, write + fsync per file, for SECS ----
# old MODE -> O_RATE O_CPU_US (per inference) O_RSS_KB (peak) O_BPI (disk bytes per inference,
# allocated blocks) O_APP_BPI (the files' own bytes)
old() {
    local dir=$WORK/guid-$1 out n u s m
    mkdir -p "$dir"
    if [[ $1 == images ]]; then
        out=$(/usr/bin/time -o "$WORK/old.time" -f '%U %S %M' "$TOOLS/guidfiles_old" "$dir" "$SECS" "$WORK/result.json" "$JPEG")
    else
        out=$(/usr/bin/time -o "$WORK/old.time" -f '%U %S %M' "$TOOLS/guidfiles_old" "$dir" "$SECS" "$WORK/result.json")
    fi
    n=$(awk '{print $2}' <<<"$out")
    O_RATE=$(awk '{printf "%.0f", $6}' <<<"$out")
    read -r u s m <"$WORK/old.time"
    O_CPU_US=$(awk -v u="$u" -v s="$s" -v n="$n" 'BEGIN{printf "%.1f", (n > 0 ? (u+s)/n*1e6 : 0)}')
    O_RSS_KB=$m
    O_BPI=$(($(du -sB1 "$dir" | awk '{print $1}') / n))
    O_APP_BPI=$(($(du -sB1 --apparent-size "$dir" | awk '{print $1}') / n))
    log "old $1: $out; CPU $O_CPU_US µs per inference, peak RSS $O_RSS_KB kB, $O_BPI B on disk per inference"
    rm -rf "$dir"
}

# ---- 1b. ei-relay: fresh database, defaults (durable), wrk for SECS ----
# relay NAME BODY CTYPE -> R_RATE R_CPU_US R_RSS_KB (peak) R_BPI (database + WAL bytes per row,
# after the stop's checkpoint) R_P99
relay() {
    local dir=$WORK/relay-$1 rows stored b
    relay_start "$1" "$dir"
    wait_health 10
    probe_ingest "$RELAY_URL/api/v1/inferences" "$2" "$3"
    run_wrk "relay-$1" "$RELAY_URL/api/v1/inferences" "$2" "$3" "$RELAY_PID"
    R_RATE=$(printf '%.0f' "$W_RPS")
    R_P99=$W_P99
    stored=$(curl -s -H "Authorization: Bearer $TOKEN" "$RELAY_URL/metrics" | awk '$1=="ei_relay_inferences_stored_total"{print $2}')
    R_CPU_US=$(us_per "$W_SRV_TICKS" "${stored:-0}")
    R_RSS_KB=$(status_kb "$RELAY_PID" VmHWM)
    rows=$(curl -s "$RELAY_URL/api/v1/health" | json_num rows)
    stop_pid "$RELAY_PID"
    b=$(db_bytes "$dir")
    R_BPI=$((rows > 0 ? b / rows : 0))
    log "relay $1: $R_RATE req/s, CPU $R_CPU_US µs per inference ($stored stored), peak RSS $R_RSS_KB kB, $R_BPI B per row ($rows rows, $b B)"
    rm -rf "$dir"
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.1f×", (b > 0 ? a/b : 0)}'; }
TABLE=()
compare_rows() { # what
    TABLE+=("| $1: inferences/s | $O_RATE | $R_RATE | $(ratio "$R_RATE" "$O_RATE") the rate |")
    TABLE+=("| $1: CPU per inference | $O_CPU_US µs | $R_CPU_US µs | $(ratio "$O_CPU_US" "$R_CPU_US") less CPU |")
    TABLE+=("| $1: memory (peak RSS) | $(mb "$O_RSS_KB") MB (the C stand-in; a user's writer is a Node.js process) | $(mb "$R_RSS_KB") MB | - |")
    TABLE+=("| $1: disk bytes per inference | $O_BPI B ($O_APP_BPI B in the files) | $R_BPI B | $(ratio "$O_BPI" "$R_BPI") less disk |")
}
old json
relay json "$WORK/result.json" application/json
compare_rows "${JSON_LEN} B JSON"
JSON_P99=$R_P99
old images
relay images "$MULTIPART" "multipart/form-data; boundary=$BOUNDARY"
compare_rows "JSON + $((JPEG_BYTES / 1024)) KB JPEG"
IMG_P99=$R_P99

# ---- 2. the eim source: runner + relay (B) against the relay alone (A), eim.py as it is ----
EIM_OUT=$WORK/eim.txt
EIM_NOTE=""
log "eim: ei-relay alone, then the runner + ei-relay ($EIM_SECS s each; about $((2 * EIM_SECS + 30)) s)"
if EI_RELAY_BIN=$RELAY EI_BENCH_SECONDS=$EIM_SECS EI_BENCH_DIR=$WORK python3 "$HERE/eim.py" --no-build \
    >"$EIM_OUT" 2>"$WORK/eim.err"; then
    # eim.py's rows: | A | **total without the model** | **rate** | cpu % | ms/inf | rss | pss | hwm |
    eim_cell() { # tag with|without column
        grep -F "| $1 | **total $2 the model** |" "$EIM_OUT" | awk -F'|' -v c="$3" '{gsub(/[* ]/, "", $c); print $c}'
    }
    if grep -qF '| B | **total' "$EIM_OUT"; then
        for w in without with; do
            ra=$(eim_cell A $w 4) rb=$(eim_cell B $w 4)
            ca=$(eim_cell A $w 6) cb=$(eim_cell B $w 6)
            ma=$(eim_cell A $w 7) mb_=$(eim_cell B $w 7)
            pa=$(eim_cell A $w 8) pb=$(eim_cell B $w 8)
            TABLE+=("| eim source, $w the model process: inferences/s | $rb | $ra | $(ratio "$ra" "$rb") the rate |")
            TABLE+=("| eim source, $w the model process: CPU per inference | $cb ms | $ca ms | $(ratio "$cb" "$ca") less CPU |")
            TABLE+=("| eim source, $w the model process: RSS at the end | $mb_ MB | $ma MB | $(ratio "$mb_" "$ma") less memory |")
            TABLE+=("| eim source, $w the model process: PSS at the end | $pb MB | $pa MB | $(ratio "$pb" "$pa") less memory |")
        done
    else
        EIM_NOTE="eim: $(grep '^skipped:' "$EIM_OUT" | head -n 2 | tr '\n' ' ')"
    fi
else
    EIM_NOTE="eim: eim.py failed: $(tail -n 2 "$WORK/eim.err" | tr '\n' ' ')"
fi

# ---- report ----
echo
echo "ei-relay compared with what it replaces — $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPU ($(awk -F': ' '/model name/{print $2; exit}' /proc/cpuinfo)), kernel $(uname -r), scripts at $REV, relay $RELAY"
echo "load average before the run: $LOAD0; ingest: wrk -t$WRK_THREADS -c$CONNS -d${SECS}s keep-alive, db_synchronous=full (relay p99 ${JSON_P99} µs JSON, ${IMG_P99} µs with the JPEG); old: one thread, write + fsync per file, ${SECS} s"
echo
echo "| | before: what users run | ei-relay | gain |"
echo "|---|---|---|---|"
printf '%s\n' "${TABLE[@]}"
[[ -z $EIM_NOTE ]] || { echo; echo "$EIM_NOTE"; }
if [[ -f $EIM_OUT ]] && grep -q '^| setup' "$EIM_OUT"; then
    echo
    echo "eim.py's own table (A: ei-relay alone; B: the runner + ei-relay):"
    sed -n '/^| setup/,/^$/p' "$EIM_OUT"
fi
echo
echo "total run time $((($(now_ms) - T_BEGIN) / 1000)) s"
