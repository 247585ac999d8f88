#!/usr/bin/env bash
# run.sh - Quick start: install what is missing, build, and run ei-relay with its embedded
# defaults (database ./var/ei-relay.db, HTTP on :4920). Extra arguments go to ei-relay,
# e.g. `scripts/run.sh --demo` to replay bundled sample inferences.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh build
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" --target ei-relay
# the service refuses to run as root unless allowed: the Quick start allows it (the packages
# run it as their own user)
if [ "$(id -u)" -eq 0 ]; then set -- --allow-root "$@"; fi
exec build/ei-relay --web-root web "$@"
