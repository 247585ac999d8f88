#!/usr/bin/env bash
# serial.sh - the serial parser benchmark: compiles tests/bench/serial_parse.c with the parser
# and the few core files it needs (-O2, as a Release build), then measures parser throughput
# over the firmware-output fixtures, each repeated to EI_SERIAL_MB megabytes, fed whole and in
# random 1..64-byte chunks. Prints a table (MB/s, inferences/s). It reports; it is not part of
# ctest. Exit status is non-zero only if the program could not be built or the parser gave a
# wrong inference count. See tests/bench/README.md.
#
# Usage: tests/bench/serial.sh
# Environment (all optional):
#   EI_SERIAL_MB     megabytes per input (default 64)
#   EI_SERIAL_RUNS   runs per input and mode; the table shows the best and the median (default 3)
#   EI_SERIAL_SEED   seed of the chunk sizes (default 1)
#   EI_FIXTURES      fixtures directory (default <repo>/tests/fixtures)
#   CC               compiler (default cc)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
FIXTURES=${EI_FIXTURES:-$ROOT/tests/fixtures}/serial
MB=${EI_SERIAL_MB:-64}
RUNS=${EI_SERIAL_RUNS:-3}
SEED=${EI_SERIAL_SEED:-1}

WORK=$(mktemp -d "${TMPDIR:-/tmp}/ei-serial-bench.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

shopt -s nullglob
INPUTS=("$FIXTURES"/*.txt)
((${#INPUTS[@]} > 0)) || { echo "serial.sh: no fixtures in $FIXTURES (set EI_FIXTURES)" >&2; exit 2; }

# The flags of the core library (CMakeLists.txt) at Release optimisation.
CFLAGS_BENCH=(-std=c11 -O2 -DNDEBUG -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE
    -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wvla
    -Wno-unused-parameter -I"$ROOT/server")
# shellcheck disable=SC2046
"${CC:-cc}" "${CFLAGS_BENCH[@]}" -o "$WORK/serial_parse" "$HERE/serial_parse.c" \
    "$ROOT/server/sources/serial_parse.c" "$ROOT/server/model/inference.c" \
    "$ROOT/server/core/util.c" "$ROOT/server/core/rc.c" \
    $(pkg-config --cflags --libs libcjson) -lm

echo "ei-relay serial parser benchmark — $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPU ($(awk -F': ' '/model name/{print $2; exit}' /proc/cpuinfo)), kernel $(uname -r), $("${CC:-cc}" --version | head -n 1)"
echo "load average before the run: $(cut -d' ' -f1-3 /proc/loadavg)"
"$WORK/serial_parse" -m "$MB" -r "$RUNS" -s "$SEED" "${INPUTS[@]}"
