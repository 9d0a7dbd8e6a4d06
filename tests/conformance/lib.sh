# Sourced by the conformance scripts and benches/chat_export.sh: our binary, a scratch dir
# cleaned up on exit, throwaway virtualenvs with the Python matterbak from PyPI, our mock
# server on loopback, the mock's update scenario, and a Python 3.13 finder.
# Callers set $here (this directory) first.

# use_binary [PATH]: sets $ours to PATH (default target/debug/matterbak) as an absolute path;
# exits 2 when it is not built.
use_binary() {
    ours=${1:-$here/../../target/debug/matterbak}
    ours=$(cd "$(dirname "$ours")" && pwd)/$(basename "$ours")
    [ -x "$ours" ] || { echo "conformance: build matterbak first ($ours missing)"; exit 2; }
}

# Makes $work and an EXIT trap that stops the mock and removes $work (kept, and its path
# printed, when KEEP_WORK is set).
setup_work() {
    work=$(mktemp -d)
    server_pid=""
    trap cleanup_work EXIT
}

cleanup_work() {
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true
    if [ -n "${KEEP_WORK:-}" ]; then echo "work dir kept: $work"; else rm -rf "$work"; fi
}

# install_python VERSION DIR [PYTHON]: the Python matterbak VERSION into a new virtualenv DIR
# made with PYTHON (default python3).
install_python() {
    local python=${3:-python3}
    echo "== installing Python matterbak $1 into a virtualenv"
    if ! "$python" -m venv "$2" >/dev/null 2>&1; then
        # Debian's python3 ships venv separately.
        apt-get install -y -qq python3-venv >/dev/null
        "$python" -m venv "$2"
    fi
    "$2/bin/pip" install --quiet --disable-pip-version-check "matterbak==$1"
}

# Starts our mock server (the sample workspace unless the arguments, passed to
# `mock-server`, say otherwise), stopping one this script started before, and writes
# credentials.json and channels.json for it into $work. Sets $url and $server_pid.
start_mock() {
    echo "== starting the mock server"
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true
    rm -f "$work/hold" "$work/url"
    mkfifo "$work/hold"
    "$ours" mock-server --addr 127.0.0.1:0 "$@" > "$work/url" < "$work/hold" &
    server_pid=$!
    exec 3> "$work/hold"   # keep the server's stdin open until the script exits or restarts it
    for _ in $(seq 50); do [ -s "$work/url" ] && break; sleep 0.1; done
    url=$(head -n1 "$work/url")
    [ -n "$url" ] || { echo "conformance: mock server did not start"; exit 2; }
    printf '{"user": "alice", "password": "alice-password", "url": "%s/api"}' "$url" > "$work/credentials.json"
    chmod 600 "$work/credentials.json"
    cp "$here/../../src/mock/sample_channels.json" "$work/channels.json"
}

# The mock's standard mutations (edits, deletions, reactions, a new channel…).
apply_update_scenario() {
    curl -fsS -X POST "$url/__mock/scenario/update" > /dev/null 2>&1 \
        || python3 -c "import urllib.request as u; u.urlopen(u.Request('$url/__mock/scenario/update', method='POST'))"
}

# The mock's file-name scenario: channel eng/file-names with attachments named in every way
# the server allows and the Python tool can back up (src/mock/file_names.rs).
apply_file_names_scenario() {
    curl -fsS -X POST "$url/__mock/scenario/file-names" > /dev/null 2>&1 \
        || python3 -c "import urllib.request as u; u.urlopen(u.Request('$url/__mock/scenario/file-names', method='POST'))"
}

# Sets $python313 to $PYTHON313 or the first Python >= 3.13 found; exits 2 without one.
find_python313() {
    python313=${PYTHON313:-}
    if [ -z "$python313" ]; then
        for candidate in python3.13 "$HOME/.pyenv/versions/3.13.0/bin/python3" python3; do
            if command -v "$candidate" >/dev/null 2>&1 \
                && "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 13))' 2>/dev/null; then
                python313=$candidate
                return
            fi
        done
    fi
    [ -n "$python313" ] || { echo "needs Python 3.13 or newer (set PYTHON313)"; exit 2; }
}
