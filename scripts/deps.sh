#!/usr/bin/env bash
# deps.sh - installs the Debian 12 packages a step needs, only those missing (idempotent).
# Usage: scripts/deps.sh build|test
set -euo pipefail

build_pkgs=(build-essential cmake pkg-config libmicrohttpd-dev libwebsockets-dev libsqlite3-dev
            libcjson-dev libpaho-mqtt-dev libssl-dev libvips-dev libyaml-dev)
test_pkgs=(clang libclang-rt-14-dev python3 python3-yaml sqlite3 curl openssl mosquitto chromium nodejs npm)

want=("${build_pkgs[@]}")
[ "${1:-build}" = test ] && want+=("${test_pkgs[@]}")

# A package counts as present when dpkg has it installed; npm also when its command is there
# (NodeSource's nodejs package bundles npm and conflicts with Debian's npm package).
present() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed" && return 0
    [ "$1" = npm ] && command -v npm >/dev/null 2>&1
}

missing=()
for p in "${want[@]}"; do
    present "$p" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
    echo "deps: missing packages: ${missing[*]} (run as root, or install them with apt-get)" >&2
    exit 1
fi
echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
