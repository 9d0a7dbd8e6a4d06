#!/usr/bin/env bash
# Packaging checks, run by .ci/run (as root, on Debian or Ubuntu with systemd's tools):
#  1. the crate: `cargo package` holds what the build reads and nothing else; unpacked, it
#     builds and installs offline (`cargo install --offline --locked --path`, the release
#     profile) and `matterbak demo` runs with the installed binary;
#  2. the Debian package, made by cargo-deb from that same release binary: `dpkg -i`,
#     `matterbak --version`, `man -w` for every page, the completions, the system user,
#     `systemd-analyze verify` on every unit, the sync service's own command line run as the
#     package's user against the sample server; then `dpkg -r` and `dpkg -P` remove it, and
#     what purge leaves is listed.
# Uses the network for cargo-deb (crates.io, installed into target/ci-tools) and for apt when
# systemd or man-db is missing. The work tree must be committed (`cargo package` refuses a
# dirty one); PACKAGING_ALLOW_DIRTY=1 packages it as it is, for a local run.
#
# usage: packaging/check.sh
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO_DEB_VERSION=3.8.0
fail() {
    echo "packaging check FAILED: $*" >&2
    exit 1
}
step() { echo "-- $* (${SECONDS}s)"; }
[ "$(id -u)" = 0 ] || fail "run as root: it installs and removes the Debian package"

version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -1)
work=$(mktemp -d)
mock_pid=
installed_here=
cleanup() {
    exec 9>&- 2>/dev/null || true
    [ -z "$mock_pid" ] || kill "$mock_pid" 2>/dev/null || true
    # A failed run leaves no package behind (the user stays, as after a purge).
    [ -z "$installed_here" ] || dpkg -P matterbak >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT
dirty=()
[ "${PACKAGING_ALLOW_DIRTY:-}" != 1 ] || dirty=(--allow-dirty)

step "the crate's files (cargo package --list)"
cargo package --list --locked --offline "${dirty[@]}" >"$work/list"
# What the build reads, the lock file, license, README and the manifest; nothing else.
allowed='^(Cargo\.toml|Cargo\.toml\.orig|Cargo\.lock|LICENSE|README\.md|\.cargo_vcs_info\.json|src/.+|schema/[^/]+\.sql|templates/.+)$'
unexpected=$(grep -Ev "$allowed" "$work/list" || true)
[ -z "$unexpected" ] || fail "cargo package ships files the build does not read:
$unexpected"
# Everything git keeps under src/, schema/ and templates/ is shipped (the build reads them).
missing=$(git ls-files src schema templates | grep -vxF -f "$work/list" || true)
[ -z "$missing" ] || fail "cargo package leaves out:
$missing"
grep -qx LICENSE "$work/list" || fail "the crate has no LICENSE"
echo "$(wc -l <"$work/list") files"

step "cargo package (its verify build is replaced by the release build of the unpacked crate below)"
cargo package --locked --offline --no-verify "${dirty[@]}"
crate=target/package/matterbak-$version.crate
[ -f "$crate" ] || fail "cargo package made no $crate"
# Unpacked where cargo's own verify step would put it (a fixed path: a second run reuses the build).
unpacked=target/package/matterbak-$version
rm -rf "$unpacked"
tar -xzf "$crate" -C target/package

step "cargo install --offline --locked from the unpacked crate (release profile)"
# --target-dir: reuse the dependencies already built in target/release (the bench build of
# .ci/run); the binary left in target/release/ is the one the Debian package takes.
cargo install --offline --locked --path "$unpacked" --root "$work/root" --target-dir target
bin=$work/root/bin/matterbak
"$bin" --version
"$bin" demo "$work/demo" >"$work/demo.log" 2>&1 || {
    cat "$work/demo.log"
    fail "matterbak demo failed with the installed binary"
}
[ -s "$work/demo/archive/catalog.sqlite" ] || fail "the demo made no catalog"
ls "$work"/demo/matterbak_*.zip >/dev/null || fail "the demo made no zip"
posts=$("$bin" sql --archive "$work/demo/archive" --format csv "SELECT count(*) AS n FROM posts" | tail -1)
[ "$posts" -gt 0 ] || fail "the demo archived no posts"
echo "demo: $posts posts archived"
cmp -s "$bin" target/release/matterbak || fail "target/release/matterbak is not the binary cargo install built"

step "cargo-deb $CARGO_DEB_VERSION (crates.io, into target/ci-tools)"
cargo install cargo-deb --locked --version "$CARGO_DEB_VERSION" --root target/ci-tools 2>&1 | tail -1
step "the Debian package (packaging/build-deb.sh --no-build)"
PATH="$PWD/target/ci-tools/bin:$PATH" packaging/build-deb.sh --no-build
deb=target/debian/matterbak_${version}-1_$(dpkg --print-architecture).deb
[ -f "$deb" ] || fail "no $deb"
dpkg-deb --info "$deb" | sed -n '/Package:/,$p'
dpkg-deb --contents "$deb" | awk '{print $6, $3}'

step "tools for the checks: systemd (systemd-analyze, systemd-sysusers), man-db"
need=()
command -v systemd-analyze >/dev/null || need+=(systemd)
command -v man >/dev/null || need+=(man-db)
if [ ${#need[@]} -gt 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
if grep -rqs '^path-exclude=*/usr/share/man' /etc/dpkg/dpkg.cfg.d/; then
    fail "dpkg is set to leave out man pages ($(grep -rls 'path-exclude=*/usr/share/man' /etc/dpkg/dpkg.cfg.d/)): remove that path-exclude line so the man pages can be checked"
fi

step "dpkg -i"
installed_here=yes
dpkg -i "$deb"
[ "$(command -v matterbak)" = /usr/bin/matterbak ] || fail "matterbak is not /usr/bin/matterbak on the PATH"
[ "$(matterbak --version)" = "matterbak $version" ] || fail "matterbak --version says $(matterbak --version)"
man -w matterbak
for page in target/packaging/man/*.1; do
    name=$(basename "$page" .1)
    man -w "$name" >/dev/null || fail "man -w $name finds no page"
    # groff's warnings (bad macros, unknown escapes) are errors here.
    warnings=$(MANWIDTH=80 man --warnings "$name" 2>&1 >/dev/null)
    [ -z "$warnings" ] || fail "man $name: $warnings"
done
man matterbak-sync | grep -q -- '--credentials' || fail "man matterbak-sync does not show --credentials"
echo "$(ls target/packaging/man | wc -l) man pages"
for completion in /usr/share/bash-completion/completions/matterbak \
    /usr/share/zsh/vendor-completions/_matterbak \
    /usr/share/fish/vendor_completions.d/matterbak.fish; do
    grep -q matterbak "$completion" || fail "$completion is missing or empty"
done
bash -c 'source /usr/share/bash-completion/completions/matterbak && complete -p matterbak' ||
    fail "the bash completion does not register for matterbak"
getent passwd matterbak | grep -q ':/var/lib/matterbak:' || fail "no system user matterbak with home /var/lib/matterbak"
getent passwd matterbak
[ -d /etc/matterbak ] || fail "no /etc/matterbak"

step "systemd-analyze verify (the shipped units)"
units=(/usr/lib/systemd/system/matterbak-sync.service /usr/lib/systemd/system/matterbak-sync.timer
    /usr/lib/systemd/system/matterbak-follow.service)
for unit in "${units[@]}"; do
    [ -f "$unit" ] || fail "no $unit"
    out=$(systemd-analyze verify "$unit" 2>&1) || fail "systemd-analyze verify $unit: $out"
    # Warnings do not change the exit code; any about our units fails the check.
    if grep -i matterbak <<<"$out"; then fail "systemd-analyze verify $unit warns"; fi
done
systemd-analyze security --offline=true /usr/lib/systemd/system/matterbak-sync.service 2>&1 |
    grep -i 'overall exposure' || true

step "the service's command line, as user matterbak, against the sample server"
# systemd is not running here: its ExecStart runs with the paths of the unit moved into
# $work (credentials as LoadCredential= gives them: 0400, the user's).
exec_start=$(sed -n 's/^ExecStart=//p' /usr/lib/systemd/system/matterbak-sync.service)
svc=$work/svc
mkdir -p "$svc/creds" "$svc/state"
mkfifo "$work/mock.in"
matterbak mock-server <"$work/mock.in" >"$work/mock.url" &
mock_pid=$!
exec 9>"$work/mock.in" # the server runs until this closes
while [ ! -s "$work/mock.url" ]; do
    kill -0 "$mock_pid" 2>/dev/null || fail "the sample server did not start"
    sleep 0.1
done
python3 - "$work/demo/credentials.json" "$(head -1 "$work/mock.url")" >"$svc/creds/credentials.json" <<'EOF'
import json, sys
credentials = json.load(open(sys.argv[1]))
credentials["url"] = sys.argv[2] + "/api"
print(json.dumps(credentials))
EOF
cp "$work/demo/channels.json" "$svc/channels.json"
chown -R matterbak:matterbak "$svc"
chmod 0400 "$svc/creds/credentials.json"
chmod 0500 "$svc/creds"
chmod 0700 "$svc/state"
chmod 0755 "$work"
command=${exec_start//'${CREDENTIALS_DIRECTORY}'/$svc/creds}
command=${command//\/var\/lib\/matterbak/$svc/state}
command=${command//\/etc\/matterbak\/channels.json/$svc/channels.json}
read -ra argv <<<"$command"
echo "${argv[*]}"
(cd "$svc/state" && setpriv --reuid=matterbak --regid=matterbak --clear-groups --no-new-privs -- "${argv[@]}") \
    >"$work/service.log" 2>&1 || {
    cat "$work/service.log"
    fail "the service's command line failed"
}
cat "$work/service.log"
[ "$(stat -c %U "$svc/state/archive/catalog.sqlite")" = matterbak ] || fail "the archive is not the user's"
exec 9>&-
wait "$mock_pid"
mock_pid=

step "dpkg -r, then dpkg -P (purge)"
echo '{}' >/etc/matterbak/channels.json # as an admin would have written
shipped=(/usr/bin/matterbak /usr/share/man/man1/matterbak.1.gz /usr/share/man/man1/matterbak-sync.1.gz
    /usr/share/bash-completion/completions/matterbak /usr/share/zsh/vendor-completions/_matterbak
    /usr/share/fish/vendor_completions.d/matterbak.fish /usr/lib/systemd/system/matterbak-sync.service
    /usr/lib/systemd/system/matterbak-sync.timer /usr/lib/systemd/system/matterbak-follow.service /usr/lib/sysusers.d/matterbak.conf /usr/share/doc/matterbak)
dpkg -r matterbak
for path in "${shipped[@]}"; do
    [ ! -e "$path" ] || fail "$path is left after dpkg -r"
done
! man -w matterbak 2>/dev/null || fail "man -w still finds matterbak after dpkg -r"
echo "after dpkg -r: package state '$(dpkg-query -W -f='${db:Status-Status}' matterbak)', /etc/matterbak: $(ls /etc/matterbak)"
dpkg -P matterbak
installed_here=
[ ! -e /etc/matterbak ] || fail "/etc/matterbak is left after purge"
! dpkg-query -W matterbak >/dev/null 2>&1 || fail "dpkg still knows matterbak after purge"
echo "left after purge:"
getent passwd matterbak || true
ls -d /var/lib/matterbak 2>/dev/null || true
find /etc/systemd /var/lib/systemd -name '*matterbak*' 2>/dev/null || true

step "sizes"
echo "release binary (as cargo install built it): $(stat -c %s "$bin") bytes"
echo "$deb: $(stat -c %s "$deb") bytes; installed size $(dpkg-deb -f "$deb" Installed-Size) KiB"
step "packaging checks passed"
