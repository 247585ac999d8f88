#!/bin/sh
# build.sh - the package's build, run by scripts/package.sh: on the host for the host's
# architecture, inside a Debian 12 cross root (packaging/debroot.py) for another one.
# Configures a fresh Release build without tests whose web_root default is the installed dashboard,
# builds the binary and its modules (libvips, GStreamer: dlopen'ed from <libdir>/ei-relay),
# installs them and the dashboard into STAGE (prefix /usr), strips them, and writes their runtime
# dependencies as dpkg-shlibdeps computes them to STAGE.depends.
#
# Usage: build.sh SRC BUILD_DIR STAGE DEBARCH [TRIPLET]   (TRIPLET: cross-compile for it)
set -eu
src=$1 bdir=$2 stage=$3 arch=$4 triplet=${5:-}

# Debian's build flags with every hardening option (fortify, stack protector, relro, bind now), as
# a package from Debian's own build would have; CMake reads them from the environment.
export DEB_BUILD_MAINT_OPTIONS=hardening=+all
eval "$(DEB_HOST_ARCH=$arch dpkg-buildflags --export=sh)"
export CFLAGS="$CFLAGS $CPPFLAGS"

set -- -DCMAKE_BUILD_TYPE=Release -DEI_TESTS=OFF -DCMAKE_INSTALL_PREFIX=/usr \
       -DEI_DEFAULT_WEB_ROOT=/usr/share/ei-relay/web
strip=strip
if [ -n "$triplet" ]; then
    set -- "$@" -DCMAKE_TOOLCHAIN_FILE="$src/cmake/debian-cross.cmake" -DEI_CROSS_TRIPLET="$triplet"
    strip=$triplet-strip
fi
rm -rf "$bdir" # the flags above count only in a first configure
cmake -S "$src" -B "$bdir" "$@" >/dev/null
cmake --build "$bdir" -j"$(nproc)" --target ei-relay # builds the modules too
rm -rf "$stage"
DESTDIR="$stage" cmake --install "$bdir" >/dev/null
# the binary and the modules, relative to the stage (usr/bin/ei-relay, usr/lib/<triplet>/ei-relay/*)
elves="usr/bin/ei-relay $(cd "$stage" && find usr/lib -path '*/ei-relay/ei-relay-*.so' | sort)"
for f in $elves; do
    "$strip" --strip-unneeded --remove-section=.comment --remove-section=.note "$stage/$f"
done

# dpkg-shlibdeps reads debian/control and expects the binaries under debian/<package>/: a scratch
# tree of that shape. The modules are read too: libvips and GStreamer are theirs, not the
# binary's. DEB_HOST_ARCH makes it resolve the libraries of the target architecture (multiarch)
# with the triplet's objdump.
tmp=$(mktemp -d)
mkdir "$tmp/debian"
printf 'Source: ei-relay\n\nPackage: ei-relay\nArchitecture: any\n' > "$tmp/debian/control"
set --
for f in $elves; do
    install -D "$stage/$f" "$tmp/debian/ei-relay/$f"
    set -- "$@" -e "debian/ei-relay/$f"
done
mkdir "$tmp/debian/ei-relay/DEBIAN" # how dpkg-shlibdeps finds the package root
(cd "$tmp" && DEB_HOST_ARCH=$arch dpkg-shlibdeps -O "$@") \
    | sed -n 's/^shlibs:Depends=//p' > "$stage.depends"
rm -rf "$tmp"
test -s "$stage.depends"
