# Sourced by the conformance scripts: starts our mock server (the sample workspace) on
# loopback and writes credentials.json and channels.json for it into $work.
# Needs: $ours (our binary), $work (scratch dir), $here (this directory). Sets $url and
# $server_pid (the caller's EXIT trap kills it). Extra arguments go to `mock-server`.
start_mock() {
    echo "== starting the mock server"
    mkfifo "$work/hold"
    "$ours" mock-server --addr 127.0.0.1:0 "$@" > "$work/url" < "$work/hold" &
    server_pid=$!
    exec 3> "$work/hold"   # keep the server's stdin open until the script exits
    for _ in $(seq 50); do [ -s "$work/url" ] && break; sleep 0.1; done
    url=$(head -n1 "$work/url")
    [ -n "$url" ] || { echo "conformance: mock server did not start"; exit 2; }
    printf '{"user": "alice", "password": "alice-password", "url": "%s/api"}' "$url" > "$work/credentials.json"
    chmod 600 "$work/credentials.json"
    cp "$here/../../src/mock/sample_channels.json" "$work/channels.json"
}
