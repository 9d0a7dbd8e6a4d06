#!/usr/bin/env bash
# The shape of the generated workspace every other bench uses (the mock's generator, also
# written into catalogs by examples/synth_archive.rs): thread share, replies per thread and
# the longest threads, message lengths and contents, reactions, channel sizes, words.
# Fails when a size does not have the documented shape (examples/workspace_shape.rs).
#
# usage: benches/shape.sh [SIZES ...]   (default: 20,000, 200,000 and 1,000,000 posts)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet --example workspace_shape
target/release/examples/workspace_shape "$@"
