#!/usr/bin/env bash
# rss.sh - the relay's resident memory with the default configuration (fresh database, free
# ports, no sources): VmRSS, RssAnon, RssFile, Pss and the number of shared objects mapped, one
# second after /api/v1/health answers, after EI_RSS_WAITS seconds more (default "60"), then after
# one JSON + JPEG inference is posted and its thumbnail read (libvips loaded from then on).
# allow_root: so it also runs in a root container (the setting changes nothing else).
# Reports only; not part of ctest. Needs curl and python3.
#
# Usage: EI_RELAY_BIN=build-rel/ei-relay tests/bench/rss.sh
#   EI_RSS_WAITS  space-separated seconds, each measured in turn after the previous point
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
RELAY=$(realpath "${EI_RELAY_BIN:-$ROOT/build-rel/ei-relay}")
WAITS=${EI_RSS_WAITS:-60}
WORK=$(mktemp -d /tmp/ei-rss.XXXXXX)
PID=""
cleanup() { [[ -n $PID ]] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT
# keep the log on failure
trap 'cat "$WORK/relay.log" >&2' ERR
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
TOKEN=rss-bench-admin-token-0123456789
port=$(free_port)
wsport=$(free_port)
cat >"$WORK/config.json" <<JSON
{"http_port": $port, "ws_port": $wsport, "bind": "127.0.0.1", "db_path": "$WORK/ei-relay.db",
 "web_root": "$ROOT/web", "allow_root": true, "tokens": [{"token": "$TOKEN", "role": "admin"}]}
JSON
(cd "$WORK" && exec "$RELAY" --config "$WORK/config.json") >"$WORK/relay.log" 2>&1 &
PID=$!
URL=http://127.0.0.1:$port
for _ in $(seq 100); do curl -sf "$URL/api/v1/health" >/dev/null && break; sleep 0.1; done
report() { # label
    local st so
    st=$(awk '/^(VmRSS|RssAnon|RssFile):/{printf "%s %6.1f MB  ", $1, $2/1024}' "/proc/$PID/status")
    pss=$(awk '/^Pss:/{printf "Pss: %6.1f MB", $2/1024}' "/proc/$PID/smaps_rollup")
    so=$(awk '$6 ~ /\.so/{print $6}' "/proc/$PID/maps" | sort -u | wc -l)
    vips=$(grep -c 'libvips' "/proc/$PID/maps" || true)
    printf '%-28s %s %s  shared objects: %s  libvips mappings: %s\n' "$1" "$st" "$pss" "$so" "$vips"
}
sleep 1
report "after start (+1 s)"
for w in $WAITS; do
    sleep "$w"
    report "idle, +$w s more"
done
python3 - "$WORK/img.jpg" <<'PY'
import struct, sys, zlib
# a 64x48 grey baseline JPEG is not trivial to write by hand; a PNG is: the relay accepts both
w, h = 64, 48
raw = b"".join(b"\0" + bytes((x * 4 + y) & 255 for x in range(w * 3)) for y in range(h))
def chunk(t, d): return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) + \
      chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
open(sys.argv[1], "wb").write(png)
PY
id=$(curl -sf -H "Authorization: Bearer $TOKEN" -F 'json={"result":{"classification":{"a":0.5}}};type=application/json' \
     -F "image=@$WORK/img.jpg;type=image/png" "$URL/api/v1/inferences" |
     python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
report "after an image post"
curl -sf -H "Authorization: Bearer $TOKEN" -o /dev/null "$URL/api/v1/inferences/$id/thumbnail"
report "after its thumbnail"
