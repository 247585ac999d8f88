#!/usr/bin/env bash
# build.sh - the Greengrass components of a release, from its Debian packages: reads
# DIST/ei-relay_<version>_<arch>.deb (scripts/package.sh writes them, then runs this) and writes
#   DIST/greengrass/recipes/<Name>-<version>.yaml          every recipe here, stamped
#   DIST/greengrass/artifacts/<Name>/<version>/<file>      each recipe's artifacts (hard links)
# which is the layout of `greengrass-cli deployment create --recipeDir --artifactDir`, of
# `ggl-cli deploy -r -a`, and of the bucket: `aws s3 cp --recursive DIST/greengrass/artifacts
# s3://BUCKET/artifacts/` puts each artifact where its recipe's URI says (docs/greengrass.md).
#
# Stamping: the recipes here carry the project's version (their file names too); a package of
# another version replaces it wherever it stands as a version (ComponentVersion, artifact paths
# and file names, the install step's package name, a dependency's pin). --bucket NAME writes the
# bucket into the URIs instead of the YOUR-BUCKET placeholder.
#
# Usage: recipes/build.sh DIST [--bucket NAME]
set -euo pipefail

die() {
    echo "recipes/build.sh: $*" >&2
    exit 1
}

here=$(cd "$(dirname "$0")" && pwd)
dist=
bucket=
while [ $# -gt 0 ]; do
    case "$1" in
    --bucket) bucket=${2:?--bucket NAME}; shift 2 ;;
    -h | --help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) die "unknown option $1" ;;
    *) dist=$1; shift ;;
    esac
done
[ -n "$dist" ] || die "usage: recipes/build.sh DIST [--bucket NAME]"
[[ -z $bucket || $bucket =~ ^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$ ]] || die "'$bucket' is not an S3 bucket name"

# The release's version: every package in DIST must carry the same one.
shopt -s nullglob
debs=("$dist"/ei-relay_*_*.deb)
[ ${#debs[@]} -gt 0 ] || die "no ei-relay_<version>_<arch>.deb in $dist (scripts/package.sh builds them)"
version=
for deb in "${debs[@]}"; do
    v=$(basename "$deb" .deb)
    v=${v#ei-relay_}
    v=${v%_*}
    [ -z "$version" ] || [ "$v" = "$version" ] || die "packages of two versions in $dist: $version and $v"
    version=$v
done

out=$dist/greengrass
rm -rf "$out"
mkdir -p "$out/recipes" "$out/artifacts"
missing=()
for recipe in "$here"/*-*.yaml; do
    file=$(basename "$recipe" .yaml)
    name=${file%-*}
    from=${file##*-}
    stamped=$out/recipes/$name-$version.yaml
    # The version wherever it is not part of a longer number; the placeholder bucket.
    FROM=$from TO=$version BUCKET=$bucket perl -pe '
        s/(?<![0-9.])\Q$ENV{FROM}\E(?![0-9]|\.[0-9])/$ENV{TO}/g;
        s{s3://YOUR-BUCKET/}{s3://$ENV{BUCKET}/}g if length $ENV{BUCKET};' "$recipe" >"$stamped"
    grep -q "^ComponentVersion: \"$version\"$" "$stamped" || die "$recipe: no ComponentVersion line to stamp"
    # Its artifacts: the packages the URIs name, linked under artifacts/<Name>/<version>/.
    while read -r uri; do
        art=$(basename "$uri")
        mkdir -p "$out/artifacts/$name/$version"
        if [ -f "$dist/$art" ]; then
            ln -f "$dist/$art" "$out/artifacts/$name/$version/$art" 2>/dev/null ||
                cp "$dist/$art" "$out/artifacts/$name/$version/$art"
        else
            missing+=("$name: $art")
        fi
    done < <(sed -n 's/^ *- Uri: *//p' "$stamped")
    echo "recipes/build.sh: $name $version"
done

# The check of the recipes as written, when PyYAML is here (it is with scripts/deps.sh test).
if python3 -c 'import yaml' 2>/dev/null; then
    python3 "$here/../tests/greengrass/check_recipes.py" "$out/recipes" >/dev/null ||
        die "the stamped recipes fail the recipe check: python3 tests/greengrass/check_recipes.py $out/recipes"
fi
if [ ${#missing[@]} -gt 0 ]; then
    echo "recipes/build.sh: not in $dist (local deployments on other architectures and the cloud" \
         "need them; scripts/package.sh all builds every architecture):" >&2
    printf '  %s\n' "${missing[@]}" >&2
fi
echo "recipes/build.sh: wrote $out (recipes/, artifacts/)"
