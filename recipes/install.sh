#!/usr/bin/env bash
# install.sh - Install step of the com.edgeimpulse.EiRelay Greengrass component (runs as root).
# Installs the Debian 12 packages ei-relay needs and puts the binary in PREFIX/bin and the
# dashboard in PREFIX/share/ei-relay/web. Two artifact layouts are accepted:
#   - a prebuilt binary at SRC_DIR/bin/ei-relay (plus SRC_DIR/web/): only the runtime
#     libraries are installed;
#   - the source tree (CMakeLists.txt at SRC_DIR): the -dev packages are installed and the
#     service is built in Release, outside the read-only artifact directory.
# A fingerprint of the artifact is kept next to the install, so a restart or a redeployment
# of the same version skips the build.
#
# Usage: install.sh SRC_DIR        (environment: EI_RELAY_PREFIX, default /usr/local)
set -euo pipefail

src=${1:?usage: install.sh SRC_DIR}
prefix=${EI_RELAY_PREFIX:-/usr/local}
stamp="$prefix/share/ei-relay/.installed-from"

runtime_pkgs=(libmicrohttpd12 libsqlite3-0 libcjson1 libvips42 libwebsockets17 libpaho-mqtt1.3
              ca-certificates)
build_pkgs=(build-essential cmake pkg-config python3 libmicrohttpd-dev libsqlite3-dev
            libcjson-dev libvips-dev libwebsockets-dev libpaho-mqtt-dev libssl-dev)

log() { echo "ei-relay install: $*"; }
die() {
    echo "ei-relay install: $*" >&2
    exit 1
}

[[ $(id -u) -eq 0 ]] || die "must run as root (the recipe's Install step sets RequiresPrivilege)"
[[ -d $src ]] || die "artifact directory $src does not exist"
command -v apt-get >/dev/null || die "apt-get not found: this component supports Debian 12 (bookworm)"

# Installs only the packages not installed yet; waits for another apt run to release its lock.
apt_install() {
    local missing=() p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
            missing+=("$p")
    done
    [[ ${#missing[@]} -eq 0 ]] && return 0
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get -o DPkg::Lock::Timeout=600 update -qq
    apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}"
}

fingerprint() {
    (cd "$src" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum) |
        sha256sum | cut -d' ' -f1
}

fp=$(fingerprint)
if [[ -x $prefix/bin/ei-relay && -f $stamp && $(cat "$stamp") == "$fp" ]]; then
    apt_install "${runtime_pkgs[@]}" # a package may have been removed since
    log "ei-relay is up to date ($("$prefix/bin/ei-relay" --version))"
    exit 0
fi

if [[ -x $src/bin/ei-relay ]]; then
    apt_install "${runtime_pkgs[@]}"
    install -D -m 0755 "$src/bin/ei-relay" "$prefix/bin/ei-relay"
    if [[ -d $src/web ]]; then
        rm -rf "$prefix/share/ei-relay/web"
        mkdir -p "$prefix/share/ei-relay"
        cp -R "$src/web" "$prefix/share/ei-relay/web"
    fi
elif [[ -f $src/CMakeLists.txt ]]; then
    apt_install "${runtime_pkgs[@]}" "${build_pkgs[@]}"
    build=$(mktemp -d /var/tmp/ei-relay-build.XXXXXX)
    trap 'rm -rf -- "$build"' EXIT
    log "building from $src in $build"
    cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX="$prefix" >/dev/null
    cmake --build "$build" -j"$(nproc)" --target ei-relay
    rm -rf "$prefix/share/ei-relay/web" # no stale files from an older dashboard
    cmake --install "$build" --strip
else
    die "$src holds neither bin/ei-relay nor CMakeLists.txt"
fi

"$prefix/bin/ei-relay" --version >/dev/null || die "the installed binary does not start"
mkdir -p "$(dirname "$stamp")"
echo "$fp" >"$stamp"
log "installed $("$prefix/bin/ei-relay" --version) in $prefix"
