#!/usr/bin/env bash
# Where the CPU goes during a first sync at L = 20 ms (benches/sync_perf.sh's workspace): a
# `perf` profile (software clock, works without hardware counters) of the mock server and the
# `matterbak sync` it serves, summarised per thread and per symbol. Needs Debian's linux-perf.
#
# usage: benches/profile_sync.sh [CONCURRENCY]   (default 8)
set -euo pipefail
cd "$(dirname "$0")/.."
command -v perf >/dev/null || apt-get install -y -qq linux-perf >/dev/null
# The `profiling` profile: release code with symbols and line tables (release is stripped).
cargo build --profile profiling --quiet --bin matterbak --example perf_sync
c=${1:-8}
data=$(mktemp)
trap 'rm -f "$data"' EXIT
perf record -q -e cpu-clock -F 999 -g -o "$data" -- \
    target/profiling/examples/perf_sync target/profiling/matterbak "posts=20000,attachments=1000" 20 "$c" |
    sed -n 1,5p
report() { perf report -i "$data" --no-children --stdio -g none "$@" 2>/dev/null | grep -v '^#' | grep -v '^$'; }
echo "CPU samples by thread (perf_sync = the mock server; matterbak, catalog-writer and its"
echo "tokio-rt-workers = the client; 999 samples = 1 s of CPU):"
report --sort comm,pid -n | head -12
echo "Top symbols:"
report --sort comm,dso,sym -n | head -25
echo "Full-text index upkeep in the catalog writer (FTS5, kept by triggers):"
perf report -i "$data" --children --comm catalog-writer --sort sym --stdio -g none 2>/dev/null |
    grep -E 'sqlite3Fts5FlushToDisk|fts5UpdateMethod' || true
