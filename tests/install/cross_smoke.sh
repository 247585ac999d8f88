#!/usr/bin/env bash
# cross_smoke.sh - the arm64 and armhf packages, built with the one documented command
# (scripts/package.sh <arch>: Debian's cross compilers and multiarch libraries in a cached
# mmdebstrap root) and smoke-tested under qemu-user: `ei-relay --version`, a start on free ports
# with a temporary database, and /api/v1/health answering. Prints how long each step took.
#
# Not in the ctest suite: from nothing (each architecture's cross root is ~1 GB from Debian's
# mirrors) it takes ~10 minutes, which CI, starting from a fresh clone every time, would pay on
# every run. Its last run is recorded in tests/install/README.md.
#
# Usage: tests/install/cross_smoke.sh [--work DIR] [arm64|armhf|all]   (root; default all,
#        work directory build-cross/: the cross roots' cache stays there for the next run)
set -euo pipefail
cd "$(dirname "$0")/../.."
work=$PWD/build-cross
if [ "${1:-}" = --work ]; then work=$(realpath -m "$2"); shift 2; fi
case "${1:-all}" in
all) archs=(arm64 armhf) ;;
arm64|armhf) archs=("$1") ;;
*) echo "usage: cross_smoke.sh [--work DIR] [arm64|armhf|all]" >&2; exit 2 ;;
esac
[ "$(id -u)" -eq 0 ] || { echo "cross_smoke.sh: needs root (cross roots, chroot)" >&2; exit 77; }
scripts/deps.sh cross
version=$(sed -n 's/^project(ei-relay VERSION \([0-9.]*\).*/\1/p' CMakeLists.txt)

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

status=0
for arch in "${archs[@]}"; do
    case "$arch" in arm64) qemu=qemu-aarch64 ;; armhf) qemu=qemu-arm ;; esac
    t0=$(date +%s)
    scripts/package.sh --no-recipes --out "$work/dist" --work "$work" "$arch" | grep '^==\|Depends'
    t1=$(date +%s)
    deb=$work/dist/ei-relay_${version}_${arch}.deb
    root=$work/$arch/sysroot # the cross root: it holds the target's runtime libraries too
    tree=$work/$arch/smoke
    rm -rf "$tree" && mkdir -p "$tree"
    dpkg-deb -x "$deb" "$tree/pkg"
    [ "$(dpkg-deb -f "$deb" Architecture)" = "$arch" ] || { echo "FAIL: Architecture"; status=1; }
    bin=$tree/pkg/usr/bin/ei-relay
    file -b "$bin" 2>/dev/null | sed "s/^/   binary: /" || true
    got=$("$qemu" -L "$root" "$bin" --version)
    echo "   --version: $got"
    [ "$got" = "ei-relay $version" ] || { echo "FAIL: --version"; status=1; }
    port=$(free_port) ws=$(free_port)
    "$qemu" -L "$root" "$bin" --db-path "$tree/var/ei-relay.db" --http-port "$port" \
        --ws-port "$ws" --web-root "$tree/pkg/usr/share/ei-relay/web" > "$tree/relay.log" 2>&1 &
    pid=$!
    health=
    for _ in $(seq 1 100); do
        health=$(curl -fsS "http://127.0.0.1:$port/api/v1/health" 2>/dev/null) && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.3
    done
    echo "   health: ${health:-none}"
    kill -TERM "$pid" 2>/dev/null || true
    code=0; wait "$pid" || code=$?
    t2=$(date +%s)
    case "$health" in
    *'"status":"ok"'*|*'"status": "ok"'*) [ "$code" -eq 0 ] || { echo "FAIL: exit $code after SIGTERM"; status=1; } ;;
    *) echo "FAIL: no health answer; log:"; cat "$tree/relay.log"; status=1 ;;
    esac
    echo "== $arch: package $((t1 - t0)) s, smoke test $((t2 - t1)) s, exit status $code"
done
[ "$status" -eq 0 ] && echo "cross smoke: all passed" || echo "cross smoke: FAILED"
exit "$status"
