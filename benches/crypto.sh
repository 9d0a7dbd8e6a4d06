#!/usr/bin/env bash
# Object encryption on one core: seal and open throughput (target >= 1 GB/s each for large
# blobs) and the Argon2id cost of one password check. Release build.
#   benches/crypto.sh [MiB]     (default 512)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --example crypto_speed >/dev/null
taskset -c 0 target/release/examples/crypto_speed "${1:-512}"
