#!/usr/bin/env bash
# package.sh - builds the Debian packages of ei-relay, dist/ei-relay_<version>_<arch>.deb, and
# then (when recipes/build.sh exists) the Greengrass component artifacts under dist/greengrass/.
#
# Usage: scripts/package.sh [--out DIR] [--work DIR] [--no-recipes] [amd64|arm64|armhf|all]
#   ARCH     default: this machine's; all = amd64 arm64 armhf
#   --out    where the .debs go (default dist/)
#   --work   build trees, staging and the cached cross roots (default build-pkg/)
#
# The host's architecture builds on the host (scripts/deps.sh package installs what it needs).
# Another architecture builds inside a Debian 12 cross root made once with mmdebstrap (Debian's
# cross compiler and the multiarch -dev libraries; cached as a tarball under --work), so this
# machine's own packages are never touched; that needs root, and qemu-user to run the foreign
# binary for its --help (the documentation is generated from it).
#
# Package layout: packaging/ (control template, maintainer scripts, unit, changelog, copyright);
# the example configuration and the man page are generated from the binary's --help
# (packaging/gen_docs.py); Depends comes from dpkg-shlibdeps (packaging/build.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
src=$PWD
out=$src/dist
work=$src/build-pkg
recipes=1
arch_arg=
while [ $# -gt 0 ]; do
    case "$1" in
    --out) out=$(realpath -m "$2"); shift 2 ;;
    --work) work=$(realpath -m "$2"); shift 2 ;;
    --no-recipes) recipes=0; shift ;;
    -h|--help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) echo "package.sh: unknown option $1" >&2; exit 2 ;;
    *) arch_arg=$1; shift ;;
    esac
done
host_arch=$(dpkg --print-architecture)
arch_arg=${arch_arg:-$host_arch}
case "$arch_arg" in
all) archs=(amd64 arm64 armhf) ;;
amd64|arm64|armhf) archs=("$arch_arg") ;;
*) echo "package.sh: unknown architecture '$arch_arg' (amd64, arm64, armhf or all)" >&2; exit 2 ;;
esac

version=$(sed -n 's/^project(ei-relay VERSION \([0-9.]*\).*/\1/p' CMakeLists.txt)
changelog_version=$(sed -n '1s/^ei-relay (\([^)]*\)).*/\1/p' packaging/changelog)
if [ "$version" != "$changelog_version" ]; then
    echo "package.sh: CMakeLists.txt says $version, packaging/changelog's top entry" \
         "$changelog_version: add a changelog entry" >&2
    exit 1
fi
maintainer=$(sed -n 's/^ -- \(.*>\)  .*/\1/p' packaging/changelog | head -n1)
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null ||
                                                date -d "$(sed -n 's/^ -- .*>  //p' packaging/changelog | head -n1)" +%s)}
umask 022

triplet_of() {
    case "$1" in
    amd64) echo x86_64-linux-gnu ;;
    arm64) echo aarch64-linux-gnu ;;
    armhf) echo arm-linux-gnueabihf ;;
    esac
}
qemu_of() { case "$1" in arm64) echo qemu-aarch64 ;; armhf) echo qemu-arm ;; amd64) echo qemu-x86_64 ;; esac; }

# The cross root of an architecture: the compiler for it, and the -dev libraries of
# scripts/deps.sh's list as <lib>:<arch>. Made once (cached tarball), extracted once per change.
cross_root() {
    local arch=$1 triplet root tar pkgs=()
    triplet=$(triplet_of "$arch")
    pkgs=(cmake make dpkg-dev "gcc-$triplet" "libc6-dev:$arch" "pkgconf:$arch")
    for p in $(scripts/deps.sh print-libs); do pkgs+=("$p:$arch"); done
    tar=$(python3 packaging/debroot.py tarball "$work/cache" minbase "$host_arch,$arch" "${pkgs[@]}")
    root=$work/$arch/sysroot
    if [ "$(cat "$root.stamp" 2>/dev/null)" != "$tar" ]; then
        echo "== $arch: extracting the cross root" >&2
        python3 packaging/debroot.py extract "$tar" "$root"
        echo "$tar" > "$root.stamp"
    fi
    echo "$root"
}

build_one() {
    local arch=$1 triplet stage pkg root="" help
    triplet=$(triplet_of "$arch")
    stage=$work/$arch/stage
    echo "== $arch: build"
    if [ "$arch" = "$host_arch" ]; then
        packaging/build.sh "$src" "$work/$arch/build" "$stage" "$arch"
        "$stage/usr/bin/ei-relay" --help > "$work/$arch/help.txt"
    else
        if [ "$(id -u)" -ne 0 ]; then
            echo "package.sh: building $arch needs root (a cross root, chroot)" >&2
            exit 1
        fi
        command -v "$(qemu_of "$arch")" >/dev/null ||
            { echo "package.sh: $(qemu_of "$arch") missing (scripts/deps.sh cross)" >&2; exit 1; }
        root=$(cross_root "$arch")
        python3 packaging/debroot.py run "$root" --bind "$src:/src" -- \
            /src/packaging/build.sh /src /build /stage "$arch" "$triplet"
        rm -rf "$stage" "$stage.depends"
        cp -a "$root/stage" "$stage"
        cp "$root/stage.depends" "$stage.depends"
        "$(qemu_of "$arch")" -L "$root" "$stage/usr/bin/ei-relay" --help > "$work/$arch/help.txt"
    fi

    echo "== $arch: assemble"
    python3 packaging/gen_docs.py "$work/$arch/help.txt" "$version" "$work/$arch/docs"
    install -D -m 0644 packaging/ei-relay.service "$stage/lib/systemd/system/ei-relay.service"
    install -D -m 0644 "$work/$arch/docs/ei-relay.default" "$stage/etc/default/ei-relay"
    install -D -m 0644 "$work/$arch/docs/ei-relay.default" \
        "$stage/usr/share/doc/ei-relay/examples/ei-relay.default"
    install -d -m 0755 "$stage/usr/share/man/man1"
    gzip -9n < "$work/$arch/docs/ei-relay.1" > "$stage/usr/share/man/man1/ei-relay.1.gz"
    install -m 0644 packaging/copyright "$stage/usr/share/doc/ei-relay/copyright"
    gzip -9n < packaging/changelog > "$stage/usr/share/doc/ei-relay/changelog.gz"
    find "$stage" -type d -exec chmod 0755 {} +
    find "$stage" -type f ! -path "$stage/usr/bin/*" -exec chmod 0644 {} +

    install -d -m 0755 "$stage/DEBIAN"
    for f in postinst prerm postrm; do install -m 0755 "packaging/$f" "$stage/DEBIAN/$f"; done
    echo /etc/default/ei-relay > "$stage/DEBIAN/conffiles"
    (cd "$stage" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z |
        xargs -0 md5sum) > "$stage/DEBIAN/md5sums"
    chmod 0644 "$stage/DEBIAN/conffiles" "$stage/DEBIAN/md5sums"
    # adduser: postinst makes the system user with it
    local size depends
    size=$(du -sk --apparent-size --exclude=DEBIAN "$stage" | cut -f1)
    depends="adduser, $(cat "$stage.depends")"
    sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$arch/" -e "s/@MAINTAINER@/$maintainer/" \
        -e "s/@INSTALLED_SIZE@/$size/" -e "s/@DEPENDS@/$depends/" packaging/control.in \
        > "$stage/DEBIAN/control"

    mkdir -p "$out"
    pkg=$out/ei-relay_${version}_${arch}.deb
    dpkg-deb --root-owner-group -Zxz --build "$stage" "$pkg" >/dev/null
    echo "== $arch: $pkg"
    echo "   Depends: $depends"
}

scripts/deps.sh package
for a in "${archs[@]}"; do
    [ "$a" = "$host_arch" ] || { scripts/deps.sh cross; break; }
done
for a in "${archs[@]}"; do
    build_one "$a"
done
if [ "$recipes" = 1 ] && [ -x recipes/build.sh ]; then
    echo "== Greengrass components (recipes/build.sh)"
    recipes/build.sh "$out"
fi
