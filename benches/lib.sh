# Shared by the bench scripts (sourced, not run). Every script builds in release, checks that
# its run did what it claims, and exits non-zero otherwise.

# die MESSAGE…: the script's name and the message on stderr, exit 1.
die() {
    echo "$(basename "$0"): $*" >&2
    exit 1
}

# need_time: /usr/bin/time (Debian package `time`), installed when missing.
need_time() {
    [ -x /usr/bin/time ] || apt-get install -y -qq time >/dev/null || die "needs /usr/bin/time (Debian package time)"
}

# posts_in ARCHIVE: the number of posts in the archive's catalog (needs $bin).
posts_in() {
    "$bin" sql --archive "$1" --format csv "SELECT count(*) FROM posts" | tail -n 1
}

# check_posts ARCHIVE EXPECTED: fails unless the catalog holds EXPECTED posts.
check_posts() {
    local n
    n=$(posts_in "$1")
    [ "$n" = "$2" ] || die "$1 holds $n posts, expected $2"
}

# median3 CMD…: runs CMD three times under /usr/bin/time (each run must exit 0) and prints
# "median_seconds max_rss_kb_of_that_run", then "runs: a b c" on stderr.
median3() {
    local runs=() i
    for i in 1 2 3; do
        /usr/bin/time -f "%e %M" -o "$work/median3.t" "$@" >/dev/null 2>"$work/median3.err" ||
            { cat "$work/median3.err" >&2; die "run $i of $* failed"; }
        runs+=("$(cat "$work/median3.t")")
    done
    echo "runs: $(printf '%s s; ' "${runs[@]%% *}")" >&2
    printf '%s\n' "${runs[@]}" | sort -n | sed -n 2p
}

# synth DIR POSTS ATTACHMENTS ATTACHMENT_BYTES [CHANNELS]: a generated archive
# (examples/synth_archive.rs), its summary line printed, its post count checked (needs $bin).
synth() {
    target/release/examples/synth_archive "$@" 2>"$work/synth.log" ||
        { cat "$work/synth.log" >&2; die "synth_archive $* failed"; }
    cat "$work/synth.log"
    check_posts "$1" "$2"
}

# need_disk GB: fails unless GB gigabytes are free where the bench writes ($TMPDIR or /tmp).
need_disk() {
    local free
    free=$(df -Pk "${TMPDIR:-/tmp}" | awk 'NR == 2 { print int($4 / 1048576) }')
    [ "$free" -ge "$1" ] || die "needs about $1 GB free in ${TMPDIR:-/tmp}, $free GB are"
}

# post_files DIR: the post files of an export layout (<YYYYmmdd-HHMMSSffffff>__<post id>.json).
post_files() {
    find "$1" -regextype posix-basic -regex '.*/[0-9]\{8\}-[0-9]\{12\}__[a-z0-9]*\.json' | wc -l
}

# follow_bench MODE ARGS…: builds matterbak and examples/follow_bench.rs (release) and runs the
# live-capture bench in that mode against the mock in its process; the example checks that
# the catalog holds every change the stream made and exits non-zero otherwise. Its scratch
# archive is a followbench-* directory in ${TMPDIR:-/tmp}, removed at the end.
follow_bench() {
    cargo build --release --quiet --bin matterbak --example follow_bench
    target/release/examples/follow_bench target/release/matterbak "$@" ||
        die "follow_bench $* failed"
}

# start_moto BUCKET: starts moto's S3 server (MATTERBAK_TEST_S3_SERVER or moto_server on
# PATH) on a free loopback port, waits until it serves (at most 2 minutes), exports the AWS_*
# variables matterbak reads, creates BUCKET and sets $endpoint and $s3_auth (moto checks no
# signature; a well-formed header makes a request non-anonymous). Needs $work; the caller's
# EXIT trap kills $moto_pid.
start_moto() {
    local moto=${MATTERBAK_TEST_S3_SERVER:-$(command -v moto_server || true)}
    [ -n "$moto" ] && [ -x "$moto" ] ||
        die "needs an S3 server: moto (pip install 'moto[server]'; then put moto_server on PATH or set MATTERBAK_TEST_S3_SERVER to its path)"
    "$moto" -H 127.0.0.1 -p 0 2> "$work/moto.log" > /dev/null &
    moto_pid=$!
    for _ in $(seq 600); do
        grep -q "Running on" "$work/moto.log" && break
        kill -0 "$moto_pid" 2>/dev/null || { cat "$work/moto.log" >&2; die "moto ($moto) exited before it was serving"; }
        sleep 0.2
    done
    grep -q "Running on" "$work/moto.log" || die "moto ($moto) did not start serving within 2 minutes"
    endpoint=$(grep -o 'http://127.0.0.1:[0-9]*' "$work/moto.log" | head -1)
    export AWS_ENDPOINT_URL="$endpoint" AWS_REGION=us-east-1
    export AWS_ACCESS_KEY_ID=AKIABENCHMARK00001 AWS_SECRET_ACCESS_KEY=bench-secret-key
    s3_auth="authorization: AWS4-HMAC-SHA256 Credential=bench/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=00"
    curl -sf -X PUT "$endpoint/$1" -o /dev/null -H "$s3_auth" || die "moto did not create bucket $1"
}

# s3_keys BUCKET PREFIX: the object names below PREFIX/ (needs start_moto; at most 1,000 a
# listing page, followed by its continuation tokens).
s3_keys() {
    local token="" page
    while :; do
        page=$(curl -sf -G "$endpoint/$1" --data-urlencode "list-type=2" \
            --data-urlencode "prefix=$2/" ${token:+--data-urlencode "continuation-token=$token"} \
            -H "$s3_auth") || die "listing s3://$1/$2 failed"
        grep -o '<Key>[^<]*</Key>' <<< "$page" | sed 's/<[^>]*>//g'
        token=$(grep -o '<NextContinuationToken>[^<]*</NextContinuationToken>' <<< "$page" | sed 's/<[^>]*>//g')
        [ -n "$token" ] || break
    done
}
