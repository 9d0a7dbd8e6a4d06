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
