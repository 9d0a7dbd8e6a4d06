//! What the examples that time `matterbak sync` share: the arguments of a quiet, unpaced
//! sync into `archive/` of the working directory, and the figures `/usr/bin/time -f` printed
//! on the last line of its stderr. (A module of the examples, not an example: `mod
//! sync_run;` in each.)
#![allow(dead_code)] // each example uses what it needs

/// `matterbak sync --quiet --rate-limit 0 --archive archive`: the server's own pace only.
pub const QUICK_SYNC: [&str; 6] = [
    "sync",
    "--quiet",
    "--rate-limit",
    "0",
    "--archive",
    "archive",
];

/// The numbers of the last line of `stderr` (the `/usr/bin/time -f` format's fields, in
/// order); a field that is not a number reads 0.
pub fn time_figures(stderr: &str) -> Vec<f64> {
    let last = stderr.lines().last().unwrap_or_default();
    last.split_whitespace()
        .map(|s| s.parse().unwrap_or(0.0))
        .collect()
}
