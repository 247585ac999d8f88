# lib.sh - shell pieces the benchmarks share (sourced, not run): scratch dir and cleanup,
# packages, building ei-relay, free ports, CPU and memory readings, starting and stopping
# processes, wrk runs, the TLS broker with its PKI, and ei-relay forwarding to it (its start-up
# measured, its outbox drained). See tests/bench/README.md.
#
# The sourcing script sets HERE and ROOT, calls bench_init PREFIX TAG, and keeps its own
# globals; the functions below read these globals: WORK (scratch dir), STARTED (pids to stop on
# exit), TOKEN (the admin token of the relays it starts); and those the functions set: PKI
# (bench_broker), RELAY_URL, RELAY_PID, RELAY_LOG (relay_start: the relay the later calls mean).
# shellcheck shell=bash
# shellcheck disable=SC2034  # the functions set globals for the sourcing script

# bench_init PREFIX TAG: scratch dir under EI_BENCH_DIR (default /tmp) in WORK; every pid in
# STARTED is stopped and WORK removed on any exit.
bench_init() {
    BENCH_TAG=$2
    WORK=$(mktemp -d "${EI_BENCH_DIR:-/tmp}/$1.XXXXXX")
    STARTED=()
    trap bench_cleanup EXIT
    trap 'exit 130' INT TERM
    # the service refuses to run as root unless allowed
    if [[ $(id -u) == 0 ]]; then export EI_RELAY_ALLOW_ROOT=true; fi
}
bench_cleanup() {
    local p
    for p in "${STARTED[@]}"; do
        kill -TERM "$p" 2>/dev/null || true
    done
    for p in "${STARTED[@]}"; do
        wait "$p" 2>/dev/null || true
    done
    rm -rf "$WORK"
}

log() { printf '[%s] %s\n' "$BENCH_TAG" "$*" >&2; }
die() {
    printf '[%s] error: %s\n' "$BENCH_TAG" "$*" >&2
    exit 1
}
now_ms() { echo $(($(date +%s%N) / 1000000)); }

apt_install() {
    local sudo=""
    [[ $(id -u) -eq 0 ]] || sudo="sudo"
    log "installing $* (apt-get)"
    $sudo apt-get install -y --no-install-recommends "$@" >/dev/null ||
        { $sudo apt-get update >/dev/null && $sudo apt-get install -y --no-install-recommends "$@" >/dev/null; }
}
# need_cmd COMMAND PACKAGE: installs PACKAGE when COMMAND is not on the PATH
need_cmd() { command -v "$1" >/dev/null || apt_install "$2"; }

# bench_build_relay BUILD [TARGET...]: configures BUILD (Release) and builds ei-relay and the
# targets given; the build log goes to WORK.
bench_build_relay() {
    local build=$1
    shift
    log "building ei-relay (Release) in $build"
    cmake -S "$ROOT" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
    cmake --build "$build" -j"$(nproc)" --target ei-relay "$@" >"$WORK/build.log" 2>&1 ||
        { tail -n 30 "$WORK/build.log" >&2; die "ei-relay does not build"; }
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
# utime+stime of a process in clock ticks (all its threads).
proc_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# busy and total jiffies of the whole machine.
machine_ticks() { awk '/^cpu /{b=$2+$3+$4+$7+$8; print b, b+$5+$6}' /proc/stat; }
status_kb() { awk -v k="$2:" '$1==k{print $2}' "/proc/$1/status"; }
# pct TICKS MS: CPU ticks over MS milliseconds in % of one core
pct() { awk -v t="$1" -v ms="$2" -v hz="$(getconf CLK_TCK)" 'BEGIN{printf "%.0f", (ms > 0 ? t/hz/(ms/1000)*100 : 0)}'; }
# us_per TICKS N: CPU ticks per unit of work in microseconds
us_per() { awk -v t="$1" -v n="$2" -v hz="$(getconf CLK_TCK)" 'BEGIN{printf "%.1f", (n > 0 ? t/hz/n*1e6 : 0)}'; }
mb() { awk -v k="$1" 'BEGIN{printf "%.1f", k/1024}'; }
json_num() { # key < json: the first number value of "key"
    sed -nE "s/.*\"$1\":(-?[0-9]+(\.[0-9]+)?).*/\1/p"
}
wait_http() { # url seconds
    local i
    for ((i = 0; i < $2 * 20; i++)); do
        curl -s -o /dev/null "$1" && return 0
        sleep 0.05
    done
    return 1
}
stop_pid() { # pid: SIGTERM and wait, then forget it
    kill -TERM "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
    local keep=() p
    for p in "${STARTED[@]}"; do [[ $p == "$1" ]] || keep+=("$p"); done
    STARTED=("${keep[@]+"${keep[@]}"}")
}

# run_wrk NAME URL BODY CTYPE PID: wrk -t$WRK_THREADS -c$CONNS -d$SECS with post.lua against
# URL, while reading PID's CPU -> W_RPS W_ERR W_P50 W_P99 (µs) W_SRV_TICKS W_SRV_CPU
# W_WRK_CPU W_OTHER_CPU W_CPU (the CPU split, in % of one core)
run_wrk() {
    local name=$1 url=$2 body=$3 ctype=$4 pid=$5 out=$WORK/wrk-$1.txt
    local t0 t1 mb0 mt0 mb1 mt1 line hz
    t0=$(proc_ticks "$pid")
    read -r mb0 mt0 < <(machine_ticks)
    BENCH_BODY=$body BENCH_CTYPE=$ctype BENCH_TOKEN=$TOKEN \
        /usr/bin/time -o "$WORK/wrk-$name.time" -f '%U %S' wrk -t"$WRK_THREADS" -c"$CONNS" -d"${SECS}s" --timeout 5s -s "$HERE/post.lua" "$url" >"$out" 2>&1 ||
        { cat "$out" >&2; die "wrk failed for $name"; }
    t1=$(proc_ticks "$pid")
    read -r mb1 mt1 < <(machine_ticks)
    line=$(grep '^BENCH ' "$out") || { cat "$out" >&2; die "no result from wrk for $name"; }
    W_RPS=$(sed -E 's/.* rps=([0-9.]+).*/\1/' <<<"$line")
    W_ERR=$(awk '{for(i=1;i<=NF;i++){split($i,a,"="); if(a[1]=="status_errors"||a[1]=="socket_errors"||a[1]=="timeouts") s+=a[2]}} END{print s+0}' <<<"$line")
    W_P50=$(sed -E 's/.* p50_us=([0-9]+).*/\1/' <<<"$line")
    W_P99=$(sed -E 's/.* p99_us=([0-9]+).*/\1/' <<<"$line")
    hz=$(getconf CLK_TCK)
    W_SRV_TICKS=$((t1 - t0))
    W_SRV_CPU=$(awk -v a="$t0" -v b="$t1" -v hz="$hz" -v s="$SECS" 'BEGIN{printf "%.0f", (b-a)/hz/s*100}')
    W_ALL_CPU=$(awk -v b0="$mb0" -v b1="$mb1" -v t0="$mt0" -v t1="$mt1" -v n="$(nproc)" \
        'BEGIN{printf "%.0f", (t1>t0)?(b1-b0)/(t1-t0)*100*n:0}')
    W_WRK_CPU=$(awk -v s="$SECS" 'NF==2{printf "%.0f", ($1+$2)/s*100}' "$WORK/wrk-$name.time")
    W_OTHER_CPU=$((W_ALL_CPU - W_SRV_CPU - W_WRK_CPU))
    ((W_OTHER_CPU < 0)) && W_OTHER_CPU=0
    W_CPU="server ${W_SRV_CPU}%, wrk ${W_WRK_CPU}%, other ${W_OTHER_CPU}% CPU"
    log "$name: $line ($W_CPU, machine ${W_ALL_CPU}% of $(($(nproc) * 100))%)"
}

# bench_broker: a CA, server and client certificates (EC P-256, as the black-box tests make
# them) in PKI=$WORK/pki, and Debian's mosquitto on a free 127.0.0.1 port (MQTT_PORT, MOSQ_PID,
# MOSQ_LOG): TLS, client certificate required, identity as user name, IoT Core's payload limit,
# no persistence. Ready when a TLS CONNECT + PUBLISH round trip with PAHO_PUB (the compiled
# paho_pub.c) works; the tester's certificate is for such clients.
bench_broker() {
    local i ready=0 mosq
    mosq=$(command -v mosquitto || echo /usr/sbin/mosquitto)
    [[ -x $mosq ]] || { apt_install mosquitto; mosq=/usr/sbin/mosquitto; }
    MOSQUITTO=$mosq
    PKI=$WORK/pki
    mkdir -p "$PKI"
    bench_ossl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -keyout "$PKI/ca.key" -out "$PKI/ca.crt" -days 2 -subj "/CN=ei-relay bench CA" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
    bench_leaf server localhost "subjectAltName=DNS:localhost,IP:127.0.0.1" \
        "extendedKeyUsage=serverAuth" "keyUsage=critical,digitalSignature"
    bench_leaf client ei-relay-bench-device "extendedKeyUsage=clientAuth" \
        "keyUsage=critical,digitalSignature"
    bench_leaf tester ei-relay-bench-tester "extendedKeyUsage=clientAuth" \
        "keyUsage=critical,digitalSignature"
    MQTT_PORT=$(free_port)
    MOSQ_LOG=$WORK/mosquitto.log
    {
        echo "per_listener_settings false"
        echo "allow_anonymous false"
        echo "listener $MQTT_PORT 127.0.0.1"
        echo "cafile $PKI/ca.crt"
        echo "certfile $PKI/server.crt"
        echo "keyfile $PKI/server.key"
        echo "require_certificate true"
        echo "use_identity_as_username true"
        echo "message_size_limit 131072"
        echo "persistence false"
        echo "log_dest file $MOSQ_LOG"
        printf 'log_type %s\n' error warning notice information subscribe
        echo "log_timestamp true"
        [[ $(id -u) -ne 0 ]] || echo "user root" # else it drops to `mosquitto`, who can't read the keys
    } >"$WORK/mosquitto.conf"
    "$MOSQUITTO" -c "$WORK/mosquitto.conf" >"$WORK/mosquitto.out" 2>&1 &
    MOSQ_PID=$!
    STARTED+=("$MOSQ_PID")
    printf '{"probe":true}' >"$WORK/probe.json"
    for ((i = 0; i < 100; i++)); do # up to ~10 s
        kill -0 "$MOSQ_PID" 2>/dev/null || { cat "$WORK/mosquitto.out" "$MOSQ_LOG" >&2 2>/dev/null; die "mosquitto exited"; }
        if "$PAHO_PUB" localhost "$MQTT_PORT" "$PKI/ca.crt" "$PKI/tester.crt" "$PKI/tester.key" \
            /bench/probe "$WORK/probe.json" 1 1 >/dev/null 2>&1; then
            ready=1
            break
        fi
        sleep 0.1
    done
    ((ready)) || { cat "$MOSQ_LOG" >&2; die "mosquitto did not accept a TLS client"; }
    log "mosquitto $("$MOSQUITTO" -h 2>/dev/null | awk 'NR==1{print $3}') on 127.0.0.1:$MQTT_PORT (TLS, require_certificate)"
}
bench_ossl() { openssl "$@" >>"$PKI/openssl.log" 2>&1 || { cat "$PKI/openssl.log" >&2; die "openssl $1 failed"; }; }
bench_leaf() { # name cn ext...
    local name=$1 cn=$2
    shift 2
    bench_ossl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -keyout "$PKI/$name.key" -out "$PKI/$name.csr" -subj "/CN=$cn"
    printf '%s\n' "basicConstraints=CA:FALSE" "$@" >"$PKI/$name.ext"
    bench_ossl x509 -req -in "$PKI/$name.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" \
        -CAcreateserial -out "$PKI/$name.crt" -days 2 -extfile "$PKI/$name.ext"
}

# bench_jpeg FILE: a 640x480 colour-noise JPEG at Q75 (about 48 KB; noise does not compress
# away, as a camera frame does not), made with the vips CLI.
bench_jpeg() {
    local c d
    need_cmd vips libvips-tools
    d=$(dirname "$1")
    for c in r g b; do vips gaussnoise "$d/$c.v" 640 480 --mean 128 --sigma 12; done
    vips bandjoin "$d/r.v $d/g.v $d/b.v" "$d/rgb.v"
    vips cast "$d/rgb.v" "$d/u8.v" uchar
    vips copy "$d/u8.v" "${1}[Q=75,strip]"
    rm -f "$d"/{r,g,b,rgb,u8}.v
}

# bench_multipart JSON_FILE IMAGE_FILE OUT: the multipart/form-data body of run.sh's image row
# (part `json`, part `image`) in OUT; its boundary in BOUNDARY.
bench_multipart() {
    BOUNDARY=----eirelaybench7d3f9a
    {
        printf -- '--%s\r\nContent-Disposition: form-data; name="json"\r\n' "$BOUNDARY"
        printf 'Content-Type: application/json\r\n\r\n'
        tr -d '\n' <"$1"
        printf '\r\n--%s\r\nContent-Disposition: form-data; name="image"; filename="frame.jpg"\r\n' "$BOUNDARY"
        printf 'Content-Type: image/jpeg\r\n\r\n'
        cat "$2"
        printf '\r\n--%s--\r\n' "$BOUNDARY"
    } >"$3"
}

# relay_start NAME DIR [EXTRA]: ei-relay ($RELAY) on free loopback ports with the database
# DIR/ei-relay.db, log level warn, the admin TOKEN, and the JSON members EXTRA; its config and
# log in DIR -> RELAY_PID RELAY_URL RELAY_HOSTPORT RELAY_LOG T_SPAWN (ms). Not waited for.
relay_start() {
    local dir=$2 port wsport
    mkdir -p "$dir"
    port=$(free_port)
    wsport=$(free_port)
    cat >"$dir/config-$1.json" <<EOC
{"http_port": $port, "ws_port": $wsport, "bind": "127.0.0.1",
 "db_path": "$dir/ei-relay.db", "web_root": "$ROOT/web", "log_level": "warn",
 "tokens": [{"token": "$TOKEN", "role": "admin"}]${3:+, $3}}
EOC
    RELAY_URL=http://127.0.0.1:$port
    RELAY_HOSTPORT=127.0.0.1:$port
    RELAY_LOG=$dir/relay-$1.log
    T_SPAWN=$(now_ms)
    (cd "$dir" && exec "$RELAY" --config "$dir/config-$1.json") >>"$RELAY_LOG" 2>&1 &
    RELAY_PID=$!
    STARTED+=("$RELAY_PID")
}
# wait_health SECONDS -> T_READY (ms): polls $RELAY_URL/api/v1/health back to back until it
# answers 200; dies with the log's tail when the relay exits or the time is up.
wait_health() {
    local end=$(($(now_ms) + $1 * 1000)) code
    while :; do
        code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "$RELAY_URL/api/v1/health" || true)
        [[ $code == 200 ]] && break
        kill -0 "$RELAY_PID" 2>/dev/null || { tail -n 20 "$RELAY_LOG" >&2; die "ei-relay exited"; }
        (($(now_ms) < end)) || { tail -n 20 "$RELAY_LOG" >&2; die "ei-relay did not answer /api/v1/health in $1 s"; }
    done
    T_READY=$(now_ms)
}
# probe_ingest URL BODY CTYPE: one POST must answer 201
probe_ingest() {
    local code
    code=$(curl -s -o "$WORK/probe.out" -w '%{http_code}' -H "Authorization: Bearer $TOKEN" \
        -H "Content-Type: $3" --data-binary "@$2" "$1")
    [[ $code == 201 ]] || { cat "$WORK/probe.out" >&2; die "ingest probe answered $code, not 201"; }
}
# db_bytes DIR: bytes of DIR/ei-relay.db and its WAL (not the store's fixed-size -reserve file)
db_bytes() {
    local f t=0
    for f in "$1"/ei-relay.db "$1"/ei-relay.db-wal; do
        [[ -f $f ]] && t=$((t + $(stat -c %s "$f")))
    done
    echo "$t"
}
# thread_ticks PID: "name ticks" per thread name of PID (utime+stime, threads of one name summed)
thread_ticks() {
    local t
    for t in /proc/"$1"/task/*; do
        printf '%s %s\n' "$(tr ' ' '_' <"$t/comm")" "$(awk '{print $14 + $15}' "$t/stat")"
    done 2>/dev/null | awk '{c[$1] += $2} END{for (k in c) print k, c[k]}' | sort
}
# thread_us_per BEFORE AFTER N: "name µs, ..." per unit of work for each thread name whose CPU
# grew between two thread_ticks outputs, busiest first
thread_us_per() {
    join -a 2 -e 0 -o 0,1.2,2.2 <(printf '%s\n' "$1") <(printf '%s\n' "$2") |
        awk -v n="$3" -v hz="$(getconf CLK_TCK)" '$3 > $2 && n > 0 {printf "%s %.1f\n", $1, ($3-$2)/hz/n*1e6}' |
        sort -k2 -nr | awk '{printf "%s%s %s µs", (NR > 1 ? ", " : ""), $1, $2}'
}

# relay_api PATH: GET $RELAY_URL PATH with the admin TOKEN (2 s at most); the body on stdout
relay_api() { curl -s --max-time 2 -H "Authorization: Bearer $TOKEN" "$RELAY_URL$1"; }
# fwd: the forwarder's state (GET /api/v1/forwarder) of the relay at RELAY_URL
fwd() { relay_api /api/v1/forwarder; }
# metric NAME: the value of the Prometheus sample NAME of the relay at RELAY_URL
metric() { relay_api /metrics | awk -v k="$1" '$1==k{print $2}'; }

# start_relay NAME DIR MQTT_PORT|none INFLIGHT [EXTRA]: relay_start NAME DIR with, unless the
# port is none, the forwarder to localhost:MQTT_PORT as the broker of bench_broker expects it
# (its PKI, client id bench-ei-relay, device bench): QoS 1, window INFLIGHT, no images, no
# threshold, no metrics messages, IoT Core pacing lifted; then the JSON members EXTRA.
start_relay() {
    local members=${5:-}
    if [[ $3 != none ]]; then
        members="\"mqtt_endpoint\": \"localhost\", \"mqtt_port\": $3, \"mqtt_ca\": \"$PKI/ca.crt\",
 \"mqtt_cert\": \"$PKI/client.crt\", \"mqtt_key\": \"$PKI/client.key\",
 \"mqtt_client_id\": \"bench-ei-relay\", \"device_name\": \"bench\", \"device_mac_suffix\": false,
 \"iotcore_qos\": 1, \"publish_inference_base64_image\": \"no\", \"enable_threshold_limit\": \"no\",
 \"iotcore_backoff\": 0, \"metrics_sleeptime_ms\": 3600000, \"mqtt_inflight\": $4,
 \"publish_rate_max\": 0, \"publish_bytes_max\": 0${members:+, $members}"
    fi
    relay_start "$1" "$2" "$members"
}

median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'; }
maxof() { printf '%s\n' "$@" | sort -n | tail -n 1; }

# measure_start NAME DIR MQTT_PORT|none INFLIGHT [EXTRA]: START_RUNS (3) starts of start_relay
# with these arguments on the database in DIR, each timed from spawn to the first 200 of
# /api/v1/health, then stopped 1 s later -> START_MS (the runs, ms), START_MEDIAN, START_MAX,
# and of the last run RSS_NOW (kB at ready), RSS_1S (kB 1 s later), QDEPTH (queue_depth then)
START_RUNS=3
measure_start() {
    local r
    START_MS=()
    for ((r = 0; r < START_RUNS; r++)); do
        start_relay "start-$1-$r" "${@:2}"
        wait_health 60
        RSS_NOW=$(status_kb "$RELAY_PID" VmRSS)
        START_MS+=($((T_READY - T_SPAWN)))
        sleep 1
        RSS_1S=$(status_kb "$RELAY_PID" VmRSS)
        QDEPTH=$(fwd | json_num queue_depth)
        stop_pid "$RELAY_PID"
    done
    START_MEDIAN=$(median "${START_MS[@]}")
    START_MAX=$(maxof "${START_MS[@]}")
    log "start-up $1: ${START_MS[*]} ms; RSS at ready $RSS_NOW kB, 1 s later $RSS_1S kB; queue_depth $QDEPTH"
}

# wait_drained T0 MAX_S: waits (drain_wait.py: one keep-alive poll of fwd every 20 ms, so the
# wait costs the machine ~1 % of a core, not the ~40 % of a curl/sed loop) until queue_depth is 0
# or MAX_S seconds have passed since T0 (ms) -> DRAIN_DONE (1 when drained), DRAIN_T1 (ms, when
# the answer came), FWD_DOC (the last answer); dies with the log's tail when the relay exits
wait_drained() {
    local out st=0
    out=$(python3 "$HERE/drain_wait.py" "$RELAY_HOSTPORT" "$TOKEN" "$RELAY_PID" "$1" "$2") || st=$?
    ((st != 2)) || { tail -n 20 "$RELAY_LOG" >&2; die "ei-relay exited during the drain"; }
    ((st == 0)) || die "drain_wait.py failed ($st)"
    read -r _ DRAIN_DONE DRAIN_T1 <<<"${out%%$'\n'*}"
    FWD_DOC=${out#*$'\n'}
}
