#!/usr/bin/env bash
# forward.sh - forwarder benchmark: in one run on this machine, a bare paho publisher's QoS 1 rate
# to a local TLS mosquitto (client certificates required), ei-relay's drain rate of a 100,000-row
# outbox backlog to the same broker (IoT Core pacing lifted), and ei-relay's start-up time and
# RSS with 1,000,000 rows queued versus an empty database. Prints a table and the verdict for
# each target of the design brief; it reports and does not fail (exit 0 whenever it measured).
# Loopback only; every process it starts is stopped on exit and its scratch dir removed.
#
# Usage: tests/bench/forward.sh        (about 2-3 minutes; see tests/bench/README.md)
# Environment:
#   EI_FWD_ROWS        backlog rows for the drain (default 100000)
#   EI_FWD_START_ROWS  queued rows for the start-up measurement (default 1000000)
#   EI_FWD_INFLIGHT    ei-relay's mqtt_inflight and the baseline's window (default 10)
#   EI_BENCH_BUILD     build dir (default build-fwdbench, Release)
#   EI_RELAY_BIN       use this ei-relay binary, skip the build
#   EI_BENCH_DIR       parent of the scratch dir (default /tmp; databases are written there)
#   EI_FWD_EXTRA       extra JSON members for the draining relay's config, for experiments
#                      (e.g. '"db_synchronous": "normal"'); the table says when it was set
#   EI_FWD_PERF        a directory: record the relay with `perf record --call-graph dwarf` during the drain and
#                      write perf.data and a text report (top symbols) there
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BUILD=${EI_BENCH_BUILD:-$ROOT/build-fwdbench}
ROWS_DRAIN=${EI_FWD_ROWS:-100000}
ROWS_START=${EI_FWD_START_ROWS:-1000000}
INFLIGHT=${EI_FWD_INFLIGHT:-10}
TOKEN=bench-admin-token-0123456789
DEVICE=bench
TOPIC=/edgeimpulse/device/$DEVICE/inference/output
for v in ROWS_DRAIN ROWS_START INFLIGHT; do
    [[ ${!v} =~ ^[0-9]+$ ]] || { echo "forward.sh: $v must be a number" >&2; exit 2; }
done
((ROWS_DRAIN >= 1000 && ROWS_DRAIN <= 1000000)) || { echo "forward.sh: EI_FWD_ROWS must be 1000..1000000" >&2; exit 2; }
((ROWS_START >= ROWS_DRAIN && ROWS_START <= 5000000)) || { echo "forward.sh: EI_FWD_START_ROWS must be EI_FWD_ROWS..5000000" >&2; exit 2; }
((INFLIGHT >= 1 && INFLIGHT <= 100)) || { echo "forward.sh: EI_FWD_INFLIGHT must be 1..100" >&2; exit 2; }

# ---- scratch space and cleanup (lib.sh): everything started here is stopped on any exit ----
# shellcheck source=tests/bench/lib.sh
. "$HERE/lib.sh"
bench_init ei-fwdbench fwdbench
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
T_BEGIN=$(now_ms)

# ---- tools (Debian packages) ----
command -v mosquitto_sub >/dev/null || apt_install mosquitto-clients
command -v openssl >/dev/null || apt_install openssl
command -v wrk >/dev/null || apt_install wrk
command -v sqlite3 >/dev/null || apt_install sqlite3
command -v curl >/dev/null || apt_install curl
[[ -x /usr/bin/time ]] || apt_install time
[[ -f /usr/include/MQTTAsync.h ]] || apt_install libpaho-mqtt-dev

# ---- build: the baseline publisher with cc, ei-relay with CMake (Release) ----
TOOLS=$WORK/bin
mkdir -p "$TOOLS"
cc -std=c11 -O2 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
    -Wmissing-prototypes -Wvla "$HERE/paho_pub.c" -o "$TOOLS/paho_pub" -lpaho-mqtt3as -lpthread
PAHO_PUB=$TOOLS/paho_pub
RELAY=${EI_RELAY_BIN:-}
if [[ -z $RELAY ]]; then
    bench_build_relay "$BUILD"
    RELAY=$BUILD/ei-relay
fi

# ---- PKI and broker (lib.sh): Debian's mosquitto, TLS, client certificate required, IoT Core
# payload limit ----
bench_broker

# ---- ei-relay instances (lib.sh's start_relay: the databases are DIR/ei-relay.db) ----
DEAD_PORT=$(free_port) # nothing listens here: the forwarder keeps failing to connect
CONNS_MAX='"http_max_connections_per_ip": 64' # the fill's 32 wrk connections

# ---- 1. backlog: ingest ROWS_DRAIN inferences over HTTP with the broker unreachable ----
tr -d '\n' <"$HERE/result.json" >"$WORK/result.json"
start_relay fill "$WORK/drain" "$DEAD_PORT" "$INFLIGHT" "$CONNS_MAX"
wait_health 10
code=$(curl -s -o "$WORK/probe.out" -w '%{http_code}' -H "Authorization: Bearer $TOKEN" \
    -H "Content-Type: application/json" --data-binary "@$WORK/result.json" "$RELAY_URL/api/v1/inferences")
[[ $code == 201 ]] || { cat "$WORK/probe.out" >&2; die "ingest probe answered $code, not 201"; }
log "filling the outbox: $ROWS_DRAIN inferences over HTTP (wrk, forwarder pointed at a dead port)"
T_FILL0=$(now_ms)
BENCH_BODY=$WORK/result.json BENCH_CTYPE=application/json BENCH_TOKEN=$TOKEN \
    BENCH_PER_THREAD=$(((ROWS_DRAIN + 1) / 2)) \
    wrk -t2 -c32 -d120s --timeout 5s -s "$HERE/post_count.lua" "$RELAY_URL/api/v1/inferences" \
    >"$WORK/wrk-fill.txt" 2>&1 &
WRK_PID=$!
STARTED+=("$WRK_PID")
depth=0
while :; do # until the relay holds enough rows, wrk's threads stopped, or 120 s
    depth=$(fwd | json_num queue_depth)
    depth=${depth:-0}
    ((depth >= ROWS_DRAIN)) && break
    kill -0 "$WRK_PID" 2>/dev/null || break
    (($(now_ms) - T_FILL0 < 125000)) || break
    sleep 0.1
done
kill -INT "$WRK_PID" 2>/dev/null || true
wait "$WRK_PID" 2>/dev/null || true
stop_pid "$WRK_PID"
T_FILL1=$(now_ms)
doc=$(fwd)
DRAIN_ROWS=$(json_num queue_depth <<<"$doc")
grep -q '^BENCH ' "$WORK/wrk-fill.txt" && log "fill: $(grep '^BENCH ' "$WORK/wrk-fill.txt")"
((DRAIN_ROWS >= ROWS_DRAIN)) || { cat "$WORK/wrk-fill.txt" >&2; die "only ${DRAIN_ROWS:-0} rows queued (wanted $ROWS_DRAIN)"; }
log "backlog: $DRAIN_ROWS rows in $(((T_FILL1 - T_FILL0) / 1000)) s; state $(sed -nE 's/.*"state":"([a-z]+)".*/\1/p' <<<"$doc")"
stop_pid "$RELAY_PID"
# the same backlog, kept for the start-up database (copied while no process has it open)
mkdir -p "$WORK/start"
cp "$WORK/drain/"ei-relay.db* "$WORK/start/"
DB_KB=$(du -skc "$WORK/drain/"ei-relay.db* | awk 'END{print $1}')

# ---- 2. drain: ei-relay restarted against the broker, unpaced; time until queue_depth is 0 ----
# A subscriber takes one inference message (the baseline publishes the same bytes), then leaves.
SAMPLE=$WORK/sample.json
mosquitto_sub -h localhost -p "$MQTT_PORT" --cafile "$PKI/ca.crt" --cert "$PKI/tester.crt" \
    --key "$PKI/tester.key" -i ei-bench-sample -q 1 -t "$TOPIC" -C 1 -N -W 120 >"$SAMPLE" 2>"$WORK/sub.err" &
SUB_PID=$!
STARTED+=("$SUB_PID")
for ((i = 0; i < 100; i++)); do
    grep -q "ei-bench-sample 1 $TOPIC" "$MOSQ_LOG" 2>/dev/null && break
    sleep 0.05
done
grep -q "ei-bench-sample 1 $TOPIC" "$MOSQ_LOG" || die "the sample subscriber did not subscribe"

log "draining $DRAIN_ROWS rows to mosquitto (mqtt_inflight $INFLIGHT, pacing off)"
MQ0=$(proc_ticks "$MOSQ_PID")
start_relay drain "$WORK/drain" "$MQTT_PORT" "$INFLIGHT" "$CONNS_MAX${EI_FWD_EXTRA:+, $EI_FWD_EXTRA}"
DRAIN_T0=$T_SPAWN
PERF_PID=""
if [[ -n ${EI_FWD_PERF:-} ]]; then
    # attach once every thread exists (paho's are made at connect), so all are followed
    wait_health 10
    for ((i = 0; i < 50; i++)); do
        tasks=("/proc/$RELAY_PID/task/"*)
        ((${#tasks[@]} >= 7)) && break
        sleep 0.02
    done
    mkdir -p "$EI_FWD_PERF"
    perf record -q -F 299 --call-graph dwarf,16384 -p "$RELAY_PID" -o "$EI_FWD_PERF/perf.data" >"$EI_FWD_PERF/record.log" 2>&1 &
    PERF_PID=$!
    STARTED+=("$PERF_PID")
fi
wait_drained "$DRAIN_T0" 180
doc=$FWD_DOC
RELAY_T=$(proc_ticks "$RELAY_PID")
# CPU per thread (utime+stime ticks by thread name), for the CPU per message of each
THREAD_CPU=$(for t in /proc/"$RELAY_PID"/task/*; do
    printf '%s %s\n' "$(tr ' ' '_' <"$t/comm")" "$(awk '{print $14 + $15}' "$t/stat")"
done 2>/dev/null | awk '{c[$1] += $2} END{for (k in c) if (c[k] > 0) printf "%s %d\n", k, c[k]}' | sort -k2 -nr)
# context switches per thread (voluntary + involuntary): how often each thread slept or lost
# its CPU, per drained message below
THREAD_CSW=$(for t in /proc/"$RELAY_PID"/task/*; do
    printf '%s %s\n' "$(tr ' ' '_' <"$t/comm")" \
        "$(awk '/^voluntary_ctxt_switches/{v=$2} /^nonvoluntary_ctxt_switches/{n=$2} END{print v, n}' "$t/status")"
done 2>/dev/null | awk '{v[$1] += $2; n[$1] += $3} END{for (k in v) printf "%s %d %d\n", k, v[k], n[k]}' | sort -k2 -nr)
COMMITS=$(metric ei_relay_commits_total)
MQ1=$(proc_ticks "$MOSQ_PID")
DRAIN_HWM=$(status_kb "$RELAY_PID" VmHWM)
ACKED=$(json_num acked <<<"$doc")
SENT=$(json_num sent <<<"$doc")
RECONN=$(json_num reconnects <<<"$doc")
CONN_SINCE=$(json_num connected_since <<<"$doc")
DEAD=$(json_num dead <<<"$doc")
LEFT=$(json_num queue_depth <<<"$doc")
DRAIN_MS=$((DRAIN_T1 - DRAIN_T0))
DRAINED=$((DRAIN_ROWS - ${LEFT:-0}))
DRAIN_RATE=$(awk -v n="$DRAINED" -v ms="$DRAIN_MS" 'BEGIN{printf "%.1f", n/(ms/1000)}')
if [[ -n $CONN_SINCE ]] && ((CONN_SINCE > DRAIN_T0)); then
    CONN_MS=$((DRAIN_T1 - CONN_SINCE))
    CONN_RATE=$(awk -v n="$DRAINED" -v ms="$CONN_MS" 'BEGIN{printf "%.1f", n/(ms/1000)}')
    CONN_NOTE="$CONN_RATE msgs/s counted from CONNACK ($((CONN_SINCE - DRAIN_T0)) ms after spawn)"
else
    CONN_NOTE="connected_since not in the API answer"
fi
DRAIN_CPU="relay $(pct "$RELAY_T" "$DRAIN_MS")%, mosquitto $(pct $((MQ1 - MQ0)) "$DRAIN_MS")% CPU"
log "drain: $DRAINED rows in $DRAIN_MS ms = $DRAIN_RATE msgs/s; sent $SENT acked $ACKED dead $DEAD reconnects $RECONN; ${COMMITS:-?} commits; $DRAIN_CPU"
if ((DRAINED > 0)); then
    log "CPU per message (us): relay $(awk -v t="$RELAY_T" -v n="$DRAINED" -v hz="$(getconf CLK_TCK)" 'BEGIN{printf "%.1f", t/hz/n*1e6}'); by thread: $(awk -v n="$DRAINED" -v hz="$(getconf CLK_TCK)" '{printf "%s %.1f, ", $1, $2/hz/n*1e6}' <<<"$THREAD_CPU")"
fi
if ((DRAINED > 0)); then
    log "context switches per message, voluntary/involuntary, by thread: $(awk -v n="$DRAINED" '$2 + $3 > 0 {printf "%s %.2f/%.2f, ", $1, $2/n, $3/n}' <<<"$THREAD_CSW")"
fi
((DRAIN_DONE)) || log "WARNING: the drain did not finish within 180 s ($LEFT rows left)"
if [[ -n $PERF_PID ]]; then
    kill -INT "$PERF_PID" 2>/dev/null || true
    wait "$PERF_PID" 2>/dev/null || true
    stop_pid "$PERF_PID"
    perf report -i "$EI_FWD_PERF/perf.data" --stdio --no-children --sort comm,dso,symbol \
        >"$EI_FWD_PERF/report.txt" 2>/dev/null || true
    perf report -i "$EI_FWD_PERF/perf.data" --stdio --no-children --sort comm -g none \
        >"$EI_FWD_PERF/threads.txt" 2>/dev/null || true
    log "perf: $EI_FWD_PERF/report.txt (symbols), $EI_FWD_PERF/threads.txt (threads)"
fi
stop_pid "$RELAY_PID"
wait "$SUB_PID" 2>/dev/null || true
stop_pid "$SUB_PID"
if [[ ! -s $SAMPLE ]]; then
    log "WARNING: no inference message sampled; the baseline uses a 400 B stand-in"
    head -c 400 /dev/zero | tr '\0' 'x' >"$SAMPLE"
fi
MSG_BYTES=$(stat -c %s "$SAMPLE")

# ---- 3. bare paho baseline: the same payload and topic, QoS 1, window INFLIGHT and 100 ----
PAHO_RATES=()
PAHO_ROWS=()
run_paho() { # window label [callback]
    local m0 m1 t0 t1 line rate
    m0=$(proc_ticks "$MOSQ_PID")
    t0=$(now_ms)
    line=$(/usr/bin/time -o "$WORK/paho.time" -f '%U %S %w %c' "$TOOLS/paho_pub" localhost "$MQTT_PORT" \
        "$PKI/ca.crt" "$PKI/tester.crt" "$PKI/tester.key" "$TOPIC" "$SAMPLE" "$DRAIN_ROWS" "$1" ${3:+"$3"}) ||
        { echo "$line" >&2; die "paho_pub (window $1) failed"; }
    t1=$(now_ms)
    m1=$(proc_ticks "$MOSQ_PID")
    rate=$(sed -E 's/.* rate=([0-9.]+).*/\1/' <<<"$line")
    local pcpu
    pcpu=$(awk -v ms=$((t1 - t0)) 'NF==4{printf "%.0f", ($1+$2)/(ms/1000)*100}' "$WORK/paho.time")
    local csw # context switches of all paho_pub's threads per message, voluntary/involuntary
    csw=$(awk -v n="$DRAIN_ROWS" 'NF==4{printf "%.2f/%.2f", $3/n, $4/n}' "$WORK/paho.time")
    log "paho $2: $line (paho $pcpu%, mosquitto $(pct $((m1 - m0)) $((t1 - t0)))% CPU; context switches per message $csw)"
    PAHO_RATE=$rate
    PAHO_ROWS+=("$(printf '| %s | %.0f msgs/s | %s | paho %s%%, mosquitto %s%% CPU |' "$2" "$rate" \
        "$(sed -E 's/.* acked=([0-9]+).* publish_ms=([0-9.]+).*/\1 PUBACKs in \2 ms/' <<<"$line")" \
        "$pcpu" "$(pct $((m1 - m0)) $((t1 - t0)))")")
}
log "bare paho baseline: $DRAIN_ROWS x $MSG_BYTES B at QoS 1"
run_paho "$INFLIGHT" "1a. bare paho, window $INFLIGHT"
PAHO_RATES+=("$PAHO_RATE")
run_paho 100 "1b. bare paho, window 100"
PAHO100=$PAHO_RATE
run_paho "$INFLIGHT" "1c. bare paho, window $INFLIGHT (again)"
PAHO_RATES+=("$PAHO_RATE")
# for reference, not in the ratio: publishing from paho's PUBACK callback, as ei-relay does
run_paho "$INFLIGHT" "1d. bare paho, window $INFLIGHT, next publish from the PUBACK callback" callback
PAHO_MEAN=$(printf '%s\n' "${PAHO_RATES[@]}" | awk '{s+=$1} END{printf "%.1f", s/NR}')

# ---- 4. start-up with ROWS_START queued rows vs an empty database, forwarder on a dead port ----
START_DB=$WORK/start/ei-relay.db
log "expanding the backlog copy to $ROWS_START queued rows (sqlite3, one transaction)"
read -r LO HI CNT < <(sqlite3 -separator ' ' "$START_DB" 'SELECT min(seq), max(seq), count(*) FROM outbox WHERE state = 0')
((HI - LO + 1 == CNT)) || die "backlog seqs are not contiguous ($LO..$HI, $CNT rows)"
{
    echo "PRAGMA journal_mode=DELETE; PRAGMA synchronous=OFF; PRAGMA cache_size=-262144;"
    echo "BEGIN;"
    have=$CNT
    k=1
    while ((have < ROWS_START)); do
        take=$((ROWS_START - have < CNT ? ROWS_START - have : CNT))
        off=$((k * HI))
        # new guid (uuid v4 form), same content; seq shifted by k*HI keeps it unique and ordered
        cat <<EOF
INSERT INTO inference (seq, guid, ts, received_ms, device, source, kind, result, timing, info,
    top_label, top_score, anomaly, model_width, model_height, has_image, bytes, publish)
SELECT seq + $off, lower(hex(randomblob(4)) || '-' || hex(randomblob(2)) || '-4' ||
    substr(hex(randomblob(2)), 2) || '-' || substr('89ab', 1 + abs(random() % 4), 1) ||
    substr(hex(randomblob(2)), 2) || '-' || hex(randomblob(6))),
    ts + $k, received_ms + $k, device, source, kind, result, timing, info, top_label, top_score,
    anomaly, model_width, model_height, has_image, bytes, publish
FROM inference WHERE seq BETWEEN $LO AND $((LO + take - 1)) ORDER BY seq;
INSERT INTO label_score (seq, label, ts, score)
SELECT seq + $off, label, ts + $k, score FROM label_score WHERE seq BETWEEN $LO AND $((LO + take - 1));
INSERT INTO outbox (seq, state, attempts, created_ms, bytes, last_error, dead_ms)
SELECT seq + $off, state, attempts, created_ms + $k, bytes, last_error, dead_ms
FROM outbox WHERE seq BETWEEN $LO AND $((LO + take - 1)) ORDER BY seq;
EOF
        have=$((have + take))
        k=$((k + 1))
    done
    # the relay counts the rows it inserts itself (schema/004_ingest.sql): recount once
    echo "UPDATE counters SET rows = (SELECT count(*) FROM inference),"
    echo "    bytes = (SELECT coalesce(sum(bytes), 0) FROM inference),"
    echo "    images = (SELECT count(*) FROM image),"
    echo "    outbox = (SELECT count(*) FROM outbox WHERE state = 0),"
    echo "    outbox_bytes = (SELECT coalesce(sum(bytes), 0) FROM outbox WHERE state = 0),"
    echo "    outbox_dead = (SELECT count(*) FROM outbox WHERE state = 1) WHERE id = 1;"
    echo "COMMIT;"
    echo "PRAGMA journal_mode=WAL;"
} >"$WORK/expand.sql"
T_EXP0=$(now_ms)
sqlite3 "$START_DB" <"$WORK/expand.sql" >/dev/null || die "expanding the database failed"
T_EXP1=$(now_ms)
read -r C_ROWS C_OUTBOX < <(sqlite3 -separator ' ' "$START_DB" 'SELECT rows, outbox FROM counters')
WANT=$((ROWS_START > CNT ? ROWS_START : CNT))
((C_OUTBOX == WANT)) || die "counters say $C_OUTBOX queued rows, not $WANT"
START_DB_MB=$(($(du -sk "$WORK/start" | awk '{print $1}') / 1024))
log "start-up db: $C_ROWS inferences, $C_OUTBOX queued, $START_DB_MB MB, built in $(((T_EXP1 - T_EXP0) / 1000)) s"

mkdir -p "$WORK/empty"
start_relay empty-init "$WORK/empty" "$DEAD_PORT" "$INFLIGHT" "$CONNS_MAX" # creates the schema; measured on the next starts
wait_health 10
stop_pid "$RELAY_PID"
# Limits raised so retention keeps all queued rows (the defaults are exactly 1,000,000 rows).
LIMITS='"cache_max_rows": 10000000, "cache_max_bytes": "64GiB", "outbox_max_rows": 10000000, "outbox_max_bytes": "64GiB"'
measure_start empty "$WORK/empty" "$DEAD_PORT" "$INFLIGHT" "$CONNS_MAX, $LIMITS"
E_MS=$START_MEDIAN E_ALL="${START_MS[*]}" E_RSS=$RSS_NOW E_RSS1=$RSS_1S E_Q=$QDEPTH
measure_start backlog "$WORK/start" "$DEAD_PORT" "$INFLIGHT" "$CONNS_MAX, $LIMITS"
B_MS=$START_MEDIAN B_MAX=$START_MAX B_ALL="${START_MS[*]}" B_RSS=$RSS_NOW B_RSS1=$RSS_1S B_Q=$QDEPTH

# ---- report ----
verdict() { awk -v v="$1" -v t="$2" -v dir="$3" 'BEGIN{ok = dir == "ge" ? v >= t : v < t; print ok ? "PASS" : "BELOW"}'; }
RATIO=$(awk -v a="$DRAIN_RATE" -v b="$PAHO_MEAN" 'BEGIN{printf "%.1f", a/b*100}')
RATIO100=$(awk -v a="$DRAIN_RATE" -v b="$PAHO100" 'BEGIN{printf "%.1f", a/b*100}')
RSS_GROWTH=$((B_RSS1 - E_RSS1))
echo
echo "ei-relay forwarder benchmark — $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPU ($(awk -F': ' '/model name/{print $2; exit}' /proc/cpuinfo)), kernel $(uname -r)"
echo "load average before the run: $LOAD0; mosquitto $("$MOSQUITTO" -h 2>/dev/null | awk 'NR==1{print $3}') on loopback, TLS 1.2 + client certificate, QoS 1, no subscriber"
[[ -z ${EI_FWD_EXTRA:-} ]] || echo "EXPERIMENT: the draining relay ran with extra settings: ${EI_FWD_EXTRA}"
echo "message: $MSG_BYTES B (an ei-relay inference message, sampled from the drain) on $TOPIC"
echo
echo "| run | rate | detail | CPU |"
echo "|---|---|---|---|"
printf '%s\n' "${PAHO_ROWS[@]}"
printf '| 2. ei-relay drain of %s queued rows, mqtt_inflight %s, unpaced | %.0f msgs/s | %s ms from spawn to queue_depth 0 (%s); sent %s, acked %s, dead %s, reconnects %s; %s store commits (durable, %s rows each on average); db %s MB; peak RSS %s MB | %s |\n' \
    "$DRAIN_ROWS" "$INFLIGHT" "$DRAIN_RATE" "$DRAIN_MS" "$CONN_NOTE" "$SENT" "$ACKED" "$DEAD" "$RECONN" \
    "${COMMITS:-?}" "$(awk -v a="${ACKED:-0}" -v c="${COMMITS:-0}" 'BEGIN{printf "%.1f", (c > 0 ? a/c : 0)}')" \
    "$((DB_KB / 1024))" "$(mb "$DRAIN_HWM")" "$DRAIN_CPU"
printf '| 3a. start-up, empty database | %s ms (median; runs %s) | RSS at ready %s MB, 1 s later %s MB; queue_depth %s | - |\n' \
    "$E_MS" "$E_ALL" "$(mb "$E_RSS")" "$(mb "$E_RSS1")" "$E_Q"
printf '| 3b. start-up, %s queued rows (%s MB db) | %s ms (median; runs %s) | RSS at ready %s MB, 1 s later %s MB; queue_depth %s | - |\n' \
    "$C_OUTBOX" "$START_DB_MB" "$B_MS" "$B_ALL" "$(mb "$B_RSS")" "$(mb "$B_RSS1")" "$B_Q"
echo
echo "| target | measured | goal | verdict |"
echo "|---|---|---|---|"
echo "| drain / bare paho, same window $INFLIGHT (mean of 1a, 1c) | ${RATIO} % | ≥ 80 % | $(verdict "$RATIO" 80 ge) |"
echo "| drain / bare paho, window 100 (for reference) | ${RATIO100} % | - | - |"
echo "| start-up with $C_OUTBOX queued rows (slowest of $START_RUNS) | ${B_MAX} ms | < 500 ms | $(verdict "$B_MAX" 500 lt) |"
echo "| RSS 1 s after start: backlog minus empty | $((RSS_GROWTH / 1024)) MB ($(mb "$B_RSS1") vs $(mb "$E_RSS1") MB) | flat (< 4 MB more) | $(verdict "$RSS_GROWTH" 4096 lt) |"
echo
echo "total run time $((($(now_ms) - T_BEGIN) / 1000)) s"
