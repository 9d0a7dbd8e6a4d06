# Shared by the conformance scripts (sourced, not run, as `source lib.sh [path/to/matterbak]`
# with $here set to this folder): sets $ours (our binary, default target/debug/matterbak) and
# $work (a temp dir removed on exit, with the mock server it started); provides a throwaway
# virtualenv with a given Python matterbak from PyPI, and our mock server on loopback with
# credentials and channels files for alice in the current directory ($url, $server_pid).

ours=${1:-$here/../../target/debug/matterbak}
ours=$(cd "$(dirname "$ours")" && pwd)/$(basename "$ours")
[ -x "$ours" ] || { echo "conformance: build matterbak first ($ours missing)"; exit 2; }

work=$(mktemp -d)
server_pid=""
cleanup() {
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

# install_python VERSION DIR: the Python matterbak VERSION into the virtualenv DIR.
install_python() {
    if ! python3 -m venv "$2" >/dev/null 2>&1; then
        # Debian's python3 ships venv separately.
        apt-get install -y -qq python3-venv >/dev/null
        python3 -m venv "$2"
    fi
    "$2/bin/pip" install --quiet --disable-pip-version-check "matterbak==$1"
}

# start_mock: a fresh sample workspace; stops the previous one started here, if any.
start_mock() {
    [ -n "${server_pid:-}" ] && kill "$server_pid" 2>/dev/null || true
    rm -f "$work/hold" "$work/url"
    mkfifo "$work/hold"
    "$ours" mock-server --addr 127.0.0.1:0 > "$work/url" < "$work/hold" &
    server_pid=$!
    exec 3> "$work/hold"   # keep the server's stdin open until we exit or restart it
    for _ in $(seq 50); do [ -s "$work/url" ] && break; sleep 0.1; done
    url=$(head -n1 "$work/url")
    [ -n "$url" ] || { echo "conformance: mock server did not start"; exit 2; }
    printf '{"user": "alice", "password": "alice-password", "url": "%s/api"}' "$url" > credentials.json
    chmod 600 credentials.json
    cp "$here/../../src/mock/sample_channels.json" channels.json
}

# apply_update: the mock's standard mutations (new, edited and deleted posts, reactions…).
apply_update() {
    curl -fsS -X POST "$url/__mock/scenario/update" > /dev/null 2>&1 \
        || python3 -c "import urllib.request as u; u.urlopen(u.Request('$url/__mock/scenario/update', method='POST'))"
}
