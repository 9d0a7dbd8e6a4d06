#!/usr/bin/env bash
# Builds the Debian package target/debian/matterbak_<version>-1_<arch>.deb with cargo-deb
# (`cargo install cargo-deb --locked`): the release binary, the man pages and shell completions
# that this very binary generates from its clap definitions (so they match its --help), the
# systemd units and sysusers file of packaging/systemd/, the maintainer scripts of
# packaging/debian/. Configuration: [package.metadata.deb] in Cargo.toml.
#
# usage: packaging/build-deb.sh              (cargo build --release first)
#        packaging/build-deb.sh --no-build   (package the target/release/matterbak already built)
set -euo pipefail
cd "$(dirname "$0")/.."

build=yes
case "${1:-}" in
    "") ;;
    --no-build) build=no ;;
    *) echo "usage: $0 [--no-build]" >&2; exit 2 ;;
esac
command -v cargo-deb >/dev/null || {
    echo "cargo-deb is not installed: cargo install cargo-deb --locked" >&2
    exit 2
}
if [ "$build" = yes ]; then
    cargo build --release --locked --bin matterbak
fi
bin=target/release/matterbak
[ -x "$bin" ] || { echo "$bin does not exist: run without --no-build" >&2; exit 2; }

# Generated files the package takes (paths as in Cargo.toml's assets).
out=target/packaging
rm -rf "$out"
mkdir -p "$out/man" "$out/completions"
"$bin" man-pages "$out/man" >/dev/null
"$bin" completions bash >"$out/completions/matterbak.bash"
"$bin" completions zsh >"$out/completions/_matterbak"
"$bin" completions fish >"$out/completions/matterbak.fish"

cargo deb --no-build --locked
