#!/usr/bin/env bash
# scale.sh - how each cost grows with the work (issue 13, item 4), in one run on this machine:
# durable JSON ingest with the cache pre-filled to 0 / 100,000 / 1,000,000 rows; API reads at the
# largest cache (newest 50 with a label filter, a cursor page deep in history); the forwarder's
# drain of 10,000 / 100,000 / 1,000,000 queued rows to a local TLS mosquitto; start-up time and
# RSS with 0 and the largest backlog queued; live delivery p99 with 10 / 100 / 500 subscribers at
# 200 inferences/s; database bytes per inference, JSON only and with a 48 KB JPEG. Prints one
# table for tests/bench/README.md. It reports: exit 0 whenever it measured, whatever the numbers
# (not part of ctest). Loopback only; every process it starts is stopped on exit and its scratch
# dir removed. The caches are filled through the store API (store_fill.c), never with SQL: the
# backlogs with their outbox rows; a drained backlog is the cache of the ingest row of its size
# (a relay that has forwarded everything), so 1,000,000 rows are filled once.
#
# Usage: tests/bench/scale.sh   (about 7 minutes at the default sizes on a quiet machine, estimated;
#                                 17 on a saturated one)
# Environment (all optional):
#   EI_SCALE_ROWS      cache sizes for the ingest rows (default "0 100000 1000000"); the reads
#                      are measured at the largest; a size not in EI_SCALE_QUEUED is filled
#   EI_SCALE_QUEUED    backlogs for the drain rows (default "10000 100000 1000000"); start-up is
#                      measured with 0 and the largest
#   EI_SCALE_CLIENTS   live subscribers (default "10 100 500"; "" skips the live rows)
#   EI_SCALE_QUERIES   requests per read query (default 300)
#   EI_SCALE_IMAGE_ROWS  rows of the JSON + JPEG database for bytes per inference (default 2000)
#   EI_SCALE_DRAIN_MAX_S  longest wait for one drain (default 240); a drain cut there is
#                      reported with the rows it did
#   EI_BENCH_SECONDS   each ingest measurement, 1..10 (default 10)
#   EI_LIVE_SECONDS    the live measurement per subscriber count (default 10)
#   EI_BENCH_BUILD     build dir (default <repo>/build-bench, Release: ei-relay + eirelay_core)
#   EI_RELAY_BIN       use this ei-relay binary; the store library is taken from its directory
#                      (libeirelay_core.a) when there, else built in EI_BENCH_BUILD
#   EI_BENCH_DIR       parent of the scratch dir (default /tmp; about 2 GB is written there)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
# shellcheck source=tests/bench/lib.sh
. "$HERE/lib.sh"

BUILD=${EI_BENCH_BUILD:-$ROOT/build-bench}
SECS=${EI_BENCH_SECONDS:-10}
CONNS=32
WRK_THREADS=2
TOKEN=bench-admin-token-0123456789
read -r -a SIZES <<<"${EI_SCALE_ROWS-0 100000 1000000}"
read -r -a QUEUED <<<"${EI_SCALE_QUEUED-10000 100000 1000000}"
read -r -a CLIENTS <<<"${EI_SCALE_CLIENTS-10 100 500}"
QUERIES=${EI_SCALE_QUERIES:-300}
IMG_ROWS=${EI_SCALE_IMAGE_ROWS:-2000}
DRAIN_MAX_S=${EI_SCALE_DRAIN_MAX_S:-240}
LIVE_SECS=${EI_LIVE_SECONDS:-10}
for v in "${SIZES[@]}" "${QUEUED[@]}" "${CLIENTS[@]}" "$QUERIES" "$IMG_ROWS" "$DRAIN_MAX_S" "$SECS"; do
    [[ $v =~ ^[0-9]+$ ]] || { echo "scale.sh: '$v' is not a number" >&2; exit 2; }
done
((SECS >= 1 && SECS <= 10)) || { echo "scale.sh: EI_BENCH_SECONDS must be 1..10" >&2; exit 2; }
((${#SIZES[@]} > 0 && ${#QUEUED[@]} > 0)) || { echo "scale.sh: EI_SCALE_ROWS and EI_SCALE_QUEUED need a size" >&2; exit 2; }

bench_init ei-scalebench scalebench
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
REV=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet HEAD 2>/dev/null || echo ' (+ uncommitted changes)')
T_BEGIN=$(now_ms)

# ---- tools ----
need_cmd wrk wrk
need_cmd curl curl
need_cmd openssl openssl
[[ -x /usr/bin/time ]] || apt_install time
[[ -f /usr/include/MQTTAsync.h ]] || apt_install libpaho-mqtt-dev

RELAY=${EI_RELAY_BIN:-}
CORE_LIB=""
[[ -n $RELAY && -f $(dirname "$RELAY")/libeirelay_core.a ]] && CORE_LIB=$(dirname "$RELAY")/libeirelay_core.a
if [[ -z $RELAY || -z $CORE_LIB ]]; then
    bench_build_relay "$BUILD" eirelay_core
    CORE_LIB=$BUILD/libeirelay_core.a
    RELAY=${RELAY:-$BUILD/ei-relay}
fi
TOOLS=$WORK/bin
mkdir -p "$TOOLS"
CFLAGS_BENCH=(-std=c11 -O2 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes
    -Wmissing-prototypes -Wvla)
# shellcheck disable=SC2046
cc "${CFLAGS_BENCH[@]}" -I "$ROOT/server" "$HERE/store_fill.c" "$CORE_LIB" -o "$TOOLS/store_fill" \
    $(pkg-config --cflags --libs libmicrohttpd sqlite3 libcjson vips) -lpthread -lm
cc "${CFLAGS_BENCH[@]}" "$HERE/paho_pub.c" -o "$TOOLS/paho_pub" -lpaho-mqtt3as -lpthread
PAHO_PUB=$TOOLS/paho_pub
tr -d '\n' <"$HERE/result.json" >"$WORK/result.json"
JSON_LEN=$(stat -c %s "$WORK/result.json")

ROWS=()
row() { ROWS+=("$(printf '| %s | %s | %s | %s |' "$1" "$2" "$3" "$4")"); }
# fill DIR ROWS OUTBOX [IMAGE W H]: a database of ROWS inferences made through the store API
fill() {
    local dir=$1 n=$2 t0 out
    mkdir -p "$dir"
    ((n > 0)) || return 0
    t0=$(now_ms)
    out=$("$TOOLS/store_fill" "$dir/ei-relay.db" "$n" "$3" "${@:4}" 2>"$dir/fill.log") ||
        { tail -n 5 "$dir/fill.log" >&2; die "store_fill of $n rows failed"; }
    log "$out ($(($(now_ms) - t0)) ms with start and stop; db $(($(db_bytes "$dir") / 1048576)) MB)"
}
# bpi_row WHAT DIR ROWS: database bytes per inference
bpi_row() {
    local b
    b=$(db_bytes "$2")
    row "database bytes per inference, $1" "$(awk -v b="$b" -v n="$3" 'BEGIN{printf "%.0f B", b/n}')" \
        "$3 rows: $((b / 1048576)) MB (database file + WAL after the checkpoint at close)" "-"
}
# Retention raised above every size here so no row is trimmed (the defaults hold 1,000,000 rows
# and 1 GiB); the ages of filled rows are minutes, under the 30 d default.
LIMITS='"cache_max_rows": 100000000, "cache_max_bytes": "64GiB", "outbox_max_rows": 100000000, "outbox_max_bytes": "64GiB"'
DEAD_PORT=$(free_port) # nothing listens here: a forwarder pointed at it keeps its backlog
is_size() { local s; for s in "${SIZES[@]}"; do [[ $s == "$1" ]] && return 0; done; return 1; }

# ---- 1. database bytes per inference with the JPEG (the JSON-only rows come with the fills) ----
if ((IMG_ROWS > 0)); then
    bench_jpeg "$WORK/image.jpg"
    JPEG_BYTES=$(stat -c %s "$WORK/image.jpg")
    fill "$WORK/images" "$IMG_ROWS" 0 "$WORK/image.jpg" 640 480
    bpi_row "JSON + $((JPEG_BYTES / 1024)) KB JPEG ($JPEG_BYTES B), forwarding off" "$WORK/images" "$IMG_ROWS"
    rm -rf "$WORK/images"
fi

# ---- 2. start-up and drain with each backlog; a drained database is kept for the ingest rows ----
bench_broker
# start_row NAME DIR: start-up with the database in DIR, the forwarder at the dead port
start_row() {
    measure_start "$1" "$2" "$DEAD_PORT" 10 "$LIMITS"
    row "start-up, $1 queued" "$START_MEDIAN ms (median of $START_RUNS: ${START_MS[*]})" \
        "spawn to the first 200 of /api/v1/health; RSS then $(mb "$RSS_NOW") MB, 1 s later $(mb "$RSS_1S") MB; queue_depth $QDEPTH" "-"
}
mkdir -p "$WORK/empty"
start_relay init "$WORK/empty" "$DEAD_PORT" 10 "$LIMITS" # creates the schema; measured on the next starts
wait_health 30
stop_pid "$RELAY_PID"
start_row 0 "$WORK/empty"
rm -rf "$WORK/empty"
QLAST=${QUEUED[${#QUEUED[@]} - 1]}
for q in "${QUEUED[@]}"; do
    dir=$WORK/drain-$q
    fill "$dir" "$q" 1
    if [[ $q == "$QLAST" ]]; then
        bpi_row "$JSON_LEN B JSON, queued for forwarding (with its outbox row)" "$dir" "$q"
        start_row "$q" "$dir"
    fi
    log "draining $q rows (mqtt_inflight 10, pacing off, at most $DRAIN_MAX_S s)"
    start_relay drain "$dir" "$MQTT_PORT" 10 "$LIMITS"
    t0=$T_SPAWN
    wait_drained "$t0" "$DRAIN_MAX_S"
    t1=$DRAIN_T1 doc=$FWD_DOC
    ticks=$(proc_ticks "$RELAY_PID")
    HWM=$(status_kb "$RELAY_PID" VmHWM)
    commits=$(metric ei_relay_commits_total)
    left=$(json_num queue_depth <<<"$doc")
    acked=$(json_num acked <<<"$doc")
    since=$(json_num connected_since <<<"$doc")
    stop_pid "$RELAY_PID"
    drained=$((q - ${left:-$q}))
    ms=$((t1 - t0))
    rate=$(awk -v n="$drained" -v ms="$ms" 'BEGIN{printf "%.0f", (ms > 0 ? n/(ms/1000) : 0)}')
    note="$ms ms from spawn to queue_depth 0"
    ((DRAIN_DONE)) || note="CUT at $DRAIN_MAX_S s with ${left:-?} rows left"
    if [[ -n $since ]] && ((since > t0 && t1 > since)); then
        note+=" ($(awk -v n="$drained" -v ms=$((t1 - since)) 'BEGIN{printf "%.0f", n/(ms/1000)}') msgs/s counted from CONNACK, $((since - t0)) ms after spawn)"
    fi
    log "drain $q: $drained rows in $ms ms = $rate msgs/s; acked ${acked:-?}; $(pct "$ticks" "$ms")% CPU"
    row "drain to TLS mosquitto, QoS 1, window 10, $q queued" "$rate msgs/s" \
        "$note; $drained drained, acked ${acked:-?}, ${commits:-?} store commits; relay CPU $(us_per "$ticks" "$drained") µs per message (start-up included); peak RSS $(mb "$HWM") MB" \
        "relay $(pct "$ticks" "$ms")% CPU"
    if [[ $q == "$QLAST" ]]; then
        bpi_row "$JSON_LEN B JSON, forwarded (outbox rows deleted, pages kept by the file)" "$dir" "$q"
    fi
    if is_size "$q"; then
        mv "$dir" "$WORK/ingest-$q" # the cache the ingest row at this size starts with
    else
        rm -rf "$dir"
    fi
done
stop_pid "$MOSQ_PID"

# ---- 3. ingest with the cache at each size (the drained backlog when there is one, else a
# fill); the reads at the largest ----
INGEST0=""
LAST=${SIZES[${#SIZES[@]} - 1]}
for n in "${SIZES[@]}"; do
    dir=$WORK/ingest-$n
    how="fresh database"
    if [[ -d $dir ]]; then
        how="the forwarded backlog of row 2"
    elif ((n > 0)); then
        fill "$dir" "$n" 0
        how="filled, forwarding off"
    fi
    start_relay ingest "$dir" none 10 "$LIMITS"
    wait_health 60
    probe_ingest "$RELAY_URL/api/v1/inferences" "$WORK/result.json" application/json
    if [[ $n == "$LAST" ]]; then
        # keep-alive reads, one at a time, with the cache at n rows (+ the probe)
        python3 "$HERE/query_lat.py" "$RELAY_HOSTPORT" "$TOKEN" "$QUERIES" \
            "newest 50, label=wave@/api/v1/inferences?label=wave&limit=50" \
            "newest 50, label=wave, min_score=0.9 (1 row in 40)@/api/v1/inferences?label=wave&min_score=0.9&limit=50" \
            "50 at a cursor in the oldest 10 %@/api/v1/inferences?limit=50&cursor={deep}" \
            "50 at a cursor in the oldest 10 %, label=wave@/api/v1/inferences?label=wave&limit=50&cursor={deep}" \
            >"$WORK/queries.txt" || die "the read queries failed"
        while read -r line; do
            log "$line"
            name=$(sed -E 's/^QUERY (.*) n=[0-9]+ p50_ms=.*/\1/' <<<"$line")
            row "reads at $((n + 1)) rows: $name" \
                "$(sed -E 's/.* p50_ms=([0-9.]+) p99_ms=([0-9.]+) max_ms=([0-9.]+).*/p50 \1 ms, p99 \2 ms/' <<<"$line")" \
                "$(sed -E 's/.* n=([0-9]+) .* max_ms=([0-9.]+) items=([0-9]+) bytes=([0-9]+).*/\1 requests, max \2 ms; \3 items, \4 B per answer/' <<<"$line")" \
                "p99 < 5 ms: $(awk -v p="$(sed -E 's/.* p99_ms=([0-9.]+).*/\1/' <<<"$line")" 'BEGIN{print (p < 5 ? "PASS" : "BELOW")}')"
        done <"$WORK/queries.txt"
    fi
    th0=$(thread_ticks "$RELAY_PID")
    stored0=$(metric ei_relay_inferences_stored_total)
    run_wrk "ingest-$n" "$RELAY_URL/api/v1/inferences" "$WORK/result.json" application/json "$RELAY_PID"
    stored=$(metric ei_relay_inferences_stored_total)
    by_thread=$(thread_us_per "$th0" "$(thread_ticks "$RELAY_PID")" $((${stored:-0} - ${stored0:-0})))
    commits=$(metric ei_relay_commits_total)
    HWM=$(status_kb "$RELAY_PID" VmHWM)
    cached=$(curl -s --max-time 2 "$RELAY_URL/api/v1/health" | json_num rows)
    stop_pid "$RELAY_PID"
    if [[ $n == 0 && ${cached:-0} -gt 0 ]]; then # the rows this run wrote, forwarding off
        bpi_row "$JSON_LEN B JSON, forwarding off (the rows the ingest at 0 wrote)" "$dir" "$cached"
    fi
    if [[ -z $INGEST0 ]]; then
        INGEST0=$W_RPS
        CPU0=$(us_per "$W_SRV_TICKS" "${stored:-0}")
    fi
    INGEST_LAST=$W_RPS
    CPU_LAST=$(us_per "$W_SRV_TICKS" "${stored:-0}")
    rel=$(awk -v a="$W_RPS" -v b="$INGEST0" 'BEGIN{printf "%.0f", (b > 0 ? a/b*100 : 0)}')
    row "ingest, ${JSON_LEN} B JSON, durable, cache at $n rows ($how)" \
        "$(printf '%.0f req/s (%s %% of the first row)' "$W_RPS" "$rel")" \
        "p50 ${W_P50} µs, p99 ${W_P99} µs, errors ${W_ERR}; relay CPU $(us_per "$W_SRV_TICKS" "${stored:-0}") µs per inference (by thread: $by_thread); ${stored:-?} stored in ${commits:-?} commits; peak RSS $(mb "$HWM") MB" \
        "$W_CPU"
    rm -rf "$dir"
done
# ---- 4. live delivery with each number of subscribers ----
for c in "${CLIENTS[@]}"; do
    procs=$((c < 100 ? 2 : c / 50)) # about 50 Python subscribers per process
    ((procs > 16)) && procs=16
    log "live: $c subscribers in $procs processes at 200/s for $LIVE_SECS s"
    if EI_RELAY_BIN=$RELAY EI_LIVE_CLIENTS=$c EI_LIVE_PROCS=$procs EI_LIVE_SECONDS=$LIVE_SECS \
        EI_LIVE_ALONE=0 EI_BENCH_DIR=$WORK \
        python3 "$HERE/live_ws.py" >"$WORK/live-$c.txt" 2>"$WORK/live-$c.err"; then
        lat=$(grep -F '| commit -> arrival at the client socket' "$WORK/live-$c.txt" | awk -F'|' '{print $3}' | xargs)
        full=$(grep -F '| clients with every inference' "$WORK/live-$c.txt" | awk -F'|' '{print $3}' | xargs)
        ing=$(grep -F '| 2. ingest with' "$WORK/live-$c.txt" | awk -F'|' '{print $3}' | xargs)
        cpu=$(grep -F '| 2. ingest with' "$WORK/live-$c.txt" | awk -F'|' '{print $5}' | xargs)
        missed=$(grep -F '| missed (announced) total' "$WORK/live-$c.txt" | awk -F'|' '{print $3}' | xargs)
        eof=$(grep -F '| connections ended early' "$WORK/live-$c.txt" | awk -F'|' '{print $3}' | xargs)
        p99=$(awk -F' / ' '{print $3}' <<<"$lat")
        row "live delivery, $c subscribers, 200 inferences/s" "p99 $p99 ms" \
            "commit -> client socket p50/p90/p99/p99.9/max $lat; clients with every inference $full (missed, announced: $missed; ended early: $eof); ingest $ing" "$cpu"
    else
        tail -n 5 "$WORK/live-$c.err" >&2
        row "live delivery, $c subscribers, 200 inferences/s" "failed" "$(tail -n 1 "$WORK/live-$c.err")" "-"
    fi
done

# ---- report ----
echo
echo "ei-relay scaling benchmark — $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPU ($(awk -F': ' '/model name/{print $2; exit}' /proc/cpuinfo)), kernel $(uname -r), scripts at $REV, relay $RELAY"
echo "load average before the run: $LOAD0; ingest: wrk -t$WRK_THREADS -c$CONNS -d${SECS}s keep-alive, db_synchronous=full; caches filled through the store API"
echo
echo "| row | measured | detail | CPU / verdict |"
echo "|---|---|---|---|"
printf '%s\n' "${ROWS[@]}"
if ((${#SIZES[@]} > 1)); then
    echo
    echo "| target | measured | goal | verdict |"
    echo "|---|---|---|---|"
    r=$(awk -v a="$INGEST_LAST" -v b="$INGEST0" 'BEGIN{printf "%.1f", (b > 0 ? a/b*100 : 0)}')
    echo "| ingest at $LAST rows / at ${SIZES[0]} rows | $r % | ≥ 90 % | $(awk -v r="$r" 'BEGIN{print (r >= 90 ? "PASS" : "BELOW")}') |"
    r=$(awk -v a="$CPU_LAST" -v b="$CPU0" 'BEGIN{printf "%.1f", (a > 0 ? b/a*100 : 0)}')
    echo "| the same in relay CPU per inference (less noisy: $CPU0 vs $CPU_LAST µs) | $r % | ≥ 90 % | $(awk -v r="$r" 'BEGIN{print (r >= 90 ? "PASS" : "BELOW")}') |"
fi
echo
echo "total run time $((($(now_ms) - T_BEGIN) / 1000)) s"
