#!/usr/bin/env bash
# deps.sh - installs the Debian 12 packages a step needs, only those missing (idempotent).
# Usage: scripts/deps.sh build|test|package|cross
#        scripts/deps.sh print-libs   (the -dev libraries alone, one a line: the cross roots of
#                                      scripts/package.sh install them for the target architecture)
set -euo pipefail

# The libraries ei-relay links (libyaml: the greengrass-setup subcommand reads the nucleus's YAML;
# GStreamer and its app library: the camera's frames).
lib_pkgs=(libmicrohttpd-dev libwebsockets-dev libsqlite3-dev libcjson-dev libpaho-mqtt-dev
          libssl-dev libvips-dev libyaml-dev libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev)
build_pkgs=(build-essential cmake pkg-config "${lib_pkgs[@]}")
# dpkg-dev: dpkg-shlibdeps computes the package's Depends; python3: the generated documentation
package_pkgs=(dpkg-dev python3)
# the install test's clean Debian 12 root (mmdebstrap) and its checks of the .deb; the camera
# tests' GStreamer elements (videotestsrc, appsink: base; jpegenc, jpegdec, v4l2src: good);
# faketime: libfaketime, the shifted wall clock of the retention tests (blackbox/test_clock.py)
test_pkgs=(clang libclang-rt-14-dev python3 python3-yaml sqlite3 curl openssl mosquitto chromium nodejs npm
           "${package_pkgs[@]}" mmdebstrap lintian gstreamer1.0-plugins-base gstreamer1.0-plugins-good
           faketime)
# other architectures: their cross roots (mmdebstrap) and qemu-user to run their binaries
cross_pkgs=(mmdebstrap qemu-user)

case "${1:-build}" in
build) want=("${build_pkgs[@]}") ;;
test) want=("${build_pkgs[@]}" "${test_pkgs[@]}") ;;
package) want=("${build_pkgs[@]}" "${package_pkgs[@]}") ;;
cross) want=("${cross_pkgs[@]}") ;;
print-libs) printf '%s\n' "${lib_pkgs[@]}"; exit 0 ;;
*) echo "usage: deps.sh build|test|package|cross|print-libs" >&2; exit 2 ;;
esac

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
