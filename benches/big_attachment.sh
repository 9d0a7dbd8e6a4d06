#!/usr/bin/env bash
# Peak memory of a sync that streams one large attachment to the blob store (target: under
# 100 MB for a 300 MB file). Needs /usr/bin/time (Debian package `time`).
#
# usage: benches/big_attachment.sh [SIZE_MB ...]   (default: 30 300)
set -euo pipefail
cd "$(dirname "$0")/.."
command -v /usr/bin/time >/dev/null || apt-get install -y -qq time >/dev/null
cargo build --release --quiet --bin matterbak --example big_attachment
for size in "${@:-30 300}"; do
    for s in $size; do
        target/release/examples/big_attachment target/release/matterbak "$s"
    done
done
