//! Bad input gets a clear message naming the file, field or value, exit code 2, and leaves
//! the archive untouched.

use std::path::Path;
use std::process::Command;

fn run(dir: &Path, args: &[&str]) -> (i32, String) {
    let (code, _, err) = run_out(dir, args);
    (code, err)
}

/// Exit code, stdout and stderr.
fn run_out(dir: &Path, args: &[&str]) -> (i32, String, String) {
    crate::common::outcome(
        &crate::common::matterbak_in(dir)
            .args(args)
            .output()
            .unwrap(),
    )
}

/// Names and sizes of everything under `dir`, to show that a refused command wrote nothing.
fn listing(dir: &Path) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let entry = entry.unwrap();
            let meta = entry.metadata().unwrap();
            if meta.is_dir() {
                stack.push(entry.path());
            }
            let name = entry
                .path()
                .strip_prefix(dir)
                .unwrap()
                .display()
                .to_string();
            out.push((name, if meta.is_dir() { 0 } else { meta.len() }));
        }
    }
    out.sort();
    out
}

fn write_private(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
}

#[test]
fn bad_flags_and_output_paths_table() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path();
    // An archive to export and query: the demo's.
    let (code, _, err) = run_out(dir, &["demo", "demo"]);
    assert_eq!(code, 0, "{err}");
    write_private(&dir.join("credentials.json"), GOOD_CREDS);
    std::fs::write(dir.join("channels.json"), GOOD_CHANNELS).unwrap();
    std::fs::create_dir(dir.join("home")).unwrap();
    std::fs::write(dir.join("home/notes.txt"), "my own file").unwrap();
    std::fs::write(dir.join("file"), "a file").unwrap();
    let before = listing(dir);
    // (arguments, the start of the error line)
    let cases: &[(&[&str], &str)] = &[
        (
            &["sync", "--channels", "missing.json"],
            "error: cannot read missing.json: No such file or directory (os error 2)",
        ),
        (
            &["sync", "--rate-limit", "-1"],
            "error: --rate-limit must be ≥ 0 requests per second (0 = unlimited), got -1",
        ),
        (
            &["sync", "--concurrency", "-1"],
            "error: invalid value '-1' for '--concurrency <N>': -1 is not in 1..=64",
        ),
        (
            &["sync", "--initial-jitter", "-1"],
            "error: --initial-jitter must be a number of seconds ≥ 0, got -1",
        ),
        (
            &["search", "--archive", "demo/archive", "--limit", "-1", "x"],
            "error: invalid value '-1' for '--limit <N>': -1 is not in 1..=",
        ),
        (
            &[
                "verify",
                "--archive",
                "demo/archive",
                "--read-data-subset",
                "-5",
            ],
            "error: --read-data-subset must be a percentage in (0, 100], got -5",
        ),
        (
            &["sync", "--archive", "home"],
            "error: sync into home failed: refusing to write into home: it is not empty and not an archive matterbak wrote (1 entry such as \"notes.txt\"); choose a new or empty directory",
        ),
        (
            &["sync", "--report", "file/report.json"],
            "error: --report: cannot write file/report.json: file is a file, not a folder",
        ),
        (
            &["backup", "-d", "home"],
            "error: -d/--data-dir: refusing to write into home: it is not empty and not an export data dir matterbak wrote",
        ),
        (
            &["backup", "-o", "file/x.zip"],
            "error: -o/--output: cannot write file/x.zip: file is a file, not a folder",
        ),
        (
            &["export", "--archive", "demo/archive", "-d", "file"],
            "error: export failed: file exists and is not a directory",
        ),
        (
            &["export", "--archive", "demo/archive", "-d", "home"],
            "error: export failed: refusing to write into home: it is not empty and not an export data dir matterbak wrote",
        ),
        (
            &["export", "--archive", "demo/archive", "-o", "file/x.zip"],
            "error: export failed: cannot write file/x.zip: file is a file, not a folder",
        ),
        (
            &["export", "--archive", "demo/archive", "-o", "home"],
            "error: export failed: cannot write home: it is a directory; give a file name",
        ),
        (
            &["verify", "--archive", "nope"],
            "error: verify failed: no archive at nope: it holds no catalog.sqlite (run `matterbak sync` first, or give --archive DIR)",
        ),
        (
            &["export", "--archive", "nope"],
            "error: export failed: no archive at nope: it holds no catalog.sqlite",
        ),
        (
            &["demo", "home"],
            "error: refusing to write into home: it is not empty and not an output matterbak wrote",
        ),
        (
            &["demo", "file"],
            "error: file exists and is not a directory",
        ),
        (
            &["sql", "--archive", "demo/archive", " -- nothing\n;"],
            "error: empty statement: give one SQL statement, such as \"SELECT * FROM messages LIMIT 5\"",
        ),
        (
            &["sql", "--archive", "demo/archive", "SELECT * FROM nope"],
            "error: no such table `nope`; the tables and views to query are: attachments, channel_stats, messages, threads, archive_settings, blobs, ",
        ),
        (
            &["sql", "--archive", "demo/archive", "SELEC 1"],
            "error: SQLite cannot run the statement: near \"SELEC\": syntax error",
        ),
    ];
    for (args, expected) in cases {
        let (code, _, err) = run_out(dir, args);
        assert_eq!(code, 2, "{args:?}: {err}");
        let line = err.lines().find(|l| l.starts_with("error:")).unwrap_or("");
        assert!(
            line.starts_with(expected),
            "{args:?}:\n  want: {expected}\n  got:  {err}"
        );
        assert!(!err.contains("Error code"), "{args:?}: {err}");
        assert_each_cause_once(&err);
        assert_eq!(listing(dir), before, "{args:?} wrote something");
    }
}

/// `export` flags mean what they say (issue 24 §4): a flag given with a `--format` that does
/// not take it is refused, exit 2, naming the formats that do take it, before anything is
/// read or written; even a flag's default value given explicitly (`--flavor full`) is
/// refused. `--help` shows each format's options under its own heading, and `-o`'s long name
/// fits every format.
#[test]
fn export_flags_belong_to_their_formats_table() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path();
    let (code, _, err) = run_out(dir, &["demo", "demo"]);
    assert_eq!(code, 0, "{err}");
    std::fs::write(dir.join("channels.json"), GOOD_CHANNELS).unwrap();
    let before = listing(dir);
    let bulk = [
        "--format",
        "bulk-import",
        "--existing-users",
        "none",
        "-o",
        "b.zip",
    ];
    let with_bulk = |extra: &[&'static str]| -> Vec<&'static str> {
        bulk.iter().chain(extra).copied().collect()
    };
    let unknown_zone = "error: --tz: unknown time zone \"Mars/Olympus\" (expected an IANA name such as Europe/Berlin)";
    // (arguments after `export --archive demo/archive`, the whole error line)
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            with_bulk(&["-c", "dev"]),
            "error: -c/--channel applies to --format markdown and hgf, not bulk-import",
        ),
        (
            vec![
                "--format",
                "markdown",
                "--channels",
                "channels.json",
                "-o",
                "md",
            ],
            "error: --channels applies to --format bulk-import, not markdown (markdown and hgf pick channels with -c/--channel)",
        ),
        (
            vec!["--format", "hgf", "--channels", "channels.json", "-o", "h"],
            "error: --channels applies to --format bulk-import, not hgf (markdown and hgf pick channels with -c/--channel)",
        ),
        (
            vec!["--format", "json", "-c", "dev"],
            "error: -c/--channel applies to --format markdown and hgf, not json",
        ),
        (
            vec!["--format", "html", "-o", "site", "-c", "dev"],
            "error: -c/--channel applies to --format markdown and hgf, not html",
        ),
        (
            vec!["--threads"],
            "error: --threads applies to --format markdown, not json",
        ),
        (
            vec!["--format", "hgf", "-o", "h", "--threads"],
            "error: --threads applies to --format markdown, not hgf",
        ),
        (
            vec!["--format", "html", "-o", "site", "--flavor", "py"],
            "error: --flavor applies to --format markdown and hgf, not html",
        ),
        (
            with_bulk(&["--flavor", "full"]),
            "error: --flavor applies to --format markdown and hgf, not bulk-import",
        ),
        (
            vec!["--format", "markdown", "-o", "md", "--deleted", "mark"],
            "error: --deleted applies to --format html, not markdown",
        ),
        (
            vec!["--remote-images"],
            "error: --remote-images applies to --format html, not json",
        ),
        (
            with_bulk(&["--tz", "UTC"]),
            "error: --tz applies to --format json, markdown, hgf and html, not bulk-import",
        ),
        (
            vec!["--format", "html", "-o", "site", "-d", "data"],
            "error: -d/--data-dir applies to --format json and markdown, not html",
        ),
        (
            with_bulk(&["-d", "data"]),
            "error: -d/--data-dir applies to --format json and markdown, not bulk-import",
        ),
        (
            vec!["--format", "markdown", "-o", "md", "--no-zip"],
            "error: --no-zip applies to --format json, not markdown",
        ),
        (
            vec!["--existing-users", "none"],
            "error: --existing-users applies to --format bulk-import, not json",
        ),
        (
            vec!["--format", "html", "-o", "site", "--email-domain", "x.org"],
            "error: --email-domain applies to --format bulk-import, not html",
        ),
        (
            vec!["--format", "markdown", "-o", "md", "--no-profile-images"],
            "error: --no-profile-images applies to --format bulk-import, not markdown",
        ),
        (
            vec!["--format", "hgf", "-o", "h", "--max-post-chars", "500"],
            "error: --max-post-chars applies to --format bulk-import, not hgf",
        ),
        (
            vec!["--threads", "--deleted", "hide"],
            "error: --threads applies to --format markdown, not json; --deleted applies to --format html, not json",
        ),
        (
            vec!["--format", "markdown", "-c", "dev", "--tz", "Mars/Olympus"],
            unknown_zone,
        ),
        (
            vec!["--format", "html", "-o", "site", "--tz", "Mars/Olympus"],
            unknown_zone,
        ),
    ];
    for (args, expected) in &cases {
        let mut argv = vec!["export", "--archive", "demo/archive"];
        argv.extend(args);
        let (code, _, err) = run_out(dir, &argv);
        assert_eq!(code, 2, "{args:?}: {err}");
        let line = err.lines().find(|l| l.starts_with("error:")).unwrap_or("");
        assert_eq!(line, *expected, "{args:?}");
        assert_eq!(listing(dir), before, "{args:?} wrote something");
    }

    let (code, help, _) = run_out(dir, &["export", "--help"]);
    assert_eq!(code, 0);
    for heading in [
        "Json (--format json; -d also markdown):",
        "Markdown and hgf (--format markdown, hgf):",
        "Website (--format html):",
        "Bulk import (--format bulk-import):",
    ] {
        assert!(help.contains(heading), "no {heading:?} in:\n{help}");
    }
    assert!(help.contains("-o, --output <PATH>"), "{help}");
    assert!(!help.contains("output-zip"), "{help}");

    // Today's spellings keep working: `--output-zip` and each format's own flags.
    let ok: &[&[&str]] = &[
        &["--output-zip", "j.zip", "-d", "j", "--tz", "UTC"],
        &[
            "--format",
            "markdown",
            "-c",
            "dev",
            "--flavor",
            "full",
            "--threads",
            "-d",
            "x",
        ],
        &[
            "--format", "hgf", "-c", "dev", "--flavor", "py", "-o", "dev.zip", "--tz", "UTC",
        ],
        &[
            "--format",
            "html",
            "-o",
            "site",
            "--deleted",
            "hide",
            "--remote-images",
            "--tz",
            "UTC",
        ],
    ];
    for args in ok {
        let mut argv = vec!["export", "--archive", "demo/archive"];
        argv.extend(*args);
        let (code, _, err) = run_out(dir, &argv);
        assert_eq!(code, 0, "{args:?}: {err}");
    }
    assert!(dir.join("j.zip").is_file() && dir.join("dev.zip").is_file());
}

/// One way to set the time zone for every format (issue 24 §4): `--tz ZONE` writes what the
/// machine's zone `TZ=ZONE` writes, for the json layout's post file names and Markdown's
/// times (the website's `--tz` has its own test in tests/it/site.rs), and differs from UTC.
#[test]
fn tz_sets_the_zone_of_the_json_layout_and_markdown() {
    for zone in ["UTC", "Asia/Kolkata"] {
        assert!(
            Path::new("/usr/share/zoneinfo").join(zone).exists(),
            "this test needs the time zone database: install the package tzdata"
        );
    }
    let root = tempfile::tempdir().unwrap();
    let dir = root.path();
    let (code, _, err) = run_out(dir, &["demo", "demo"]);
    assert_eq!(code, 0, "{err}");
    let run_tz = |tz: &str, args: &[&str]| -> String {
        let out = Command::new(env!("CARGO_BIN_EXE_matterbak"))
            .current_dir(dir)
            .env("TZ", tz)
            .env_remove("MATTERBAK_ARCHIVE")
            .args(["export", "--archive", "demo/archive"])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    for flavor in ["full", "py"] {
        let markdown = [
            "--format",
            "markdown",
            "-c",
            "town-square",
            "--flavor",
            flavor,
        ];
        let by_flag = run_tz("UTC", &[&markdown[..], &["--tz", "Asia/Kolkata"]].concat());
        let by_env = run_tz("Asia/Kolkata", &markdown);
        assert_eq!(by_flag, by_env, "{flavor}");
        assert_ne!(
            by_flag,
            run_tz("UTC", &markdown),
            "{flavor}: the zone changed nothing"
        );
    }
    run_tz("UTC", &["-d", "flag", "--no-zip", "--tz", "Asia/Kolkata"]);
    run_tz("Asia/Kolkata", &["-d", "env", "--no-zip"]);
    run_tz("UTC", &["-d", "utc", "--no-zip"]);
    let names = |d: &str| {
        listing(&dir.join(d))
            .into_iter()
            .map(|(n, _)| n)
            .collect::<Vec<_>>()
    };
    assert_eq!(names("flag"), names("env"));
    assert_ne!(names("flag"), names("utc"));
}

/// Every command's outputs follow one rule (issue 24 §6): the folders of a path the user
/// names are created when the output is written; a path through an existing file is refused
/// with exit 2 before anything is written, for every output of the command. One table over
/// every command that writes files (`snapshot` writes only to its bucket, `completions` to
/// stdout; `pull` makes its directory through the same archive code as `sync --archive`, and
/// is run against object storage in tests/it/s3.rs).
#[test]
fn every_output_path_gets_its_folders_or_is_refused_up_front() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let root = tempfile::tempdir().unwrap();
    let dir = root.path();
    let (code, _, err) = run_out(dir, &["demo", "demo"]);
    assert_eq!(code, 0, "{err}");
    // A sample server for sync and backup, until its stdin closes.
    let mut server = Command::new(env!("CARGO_BIN_EXE_matterbak"))
        .arg("mock-server")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut url = String::new();
    BufReader::new(server.stdout.take().unwrap())
        .read_line(&mut url)
        .unwrap();
    let creds = format!(
        r#"{{"user": "{}", "password": "{}", "url": "{}/api"}}"#,
        matterbak::mock::SAMPLE_USER,
        matterbak::mock::SAMPLE_PASSWORD,
        url.trim()
    );
    write_private(&dir.join("c.json"), &creds);
    std::fs::write(dir.join("ch.json"), matterbak::mock::DEMO_CHANNELS_JSON).unwrap();
    std::fs::write(dir.join("file"), "a file").unwrap();
    let sync = [
        "--credentials",
        "c.json",
        "--channels",
        "ch.json",
        "--rate-limit",
        "0",
        "-q",
    ];
    let export = ["export", "--archive", "demo/archive"];
    let cmd = |head: &[&'static str], tail: &[&'static str]| -> Vec<&'static str> {
        head.iter().chain(tail).copied().collect()
    };
    let bulk = ["--format", "bulk-import", "--existing-users", "none"];

    // (command line, paths it must have made)
    let made: Vec<(Vec<&str>, Vec<&str>)> = vec![
        (
            cmd(&export, &["-d", "n1/data", "-o", "n1/x.zip"]),
            vec!["n1/data/teams", "n1/x.zip"],
        ),
        (
            cmd(
                &export,
                &["--format", "markdown", "-c", "dev", "-o", "n2/a/dev.md"],
            ),
            vec!["n2/a/dev.md"],
        ),
        (
            cmd(&export, &["--format", "markdown", "-o", "n3/a/md"]),
            vec!["n3/a/md/teams"],
        ),
        (
            cmd(
                &export,
                &["--format", "hgf", "-c", "dev", "-o", "n4/a/dev.zip"],
            ),
            vec!["n4/a/dev.zip"],
        ),
        (
            cmd(&export, &["--format", "hgf", "-o", "n5/a/hgf"]),
            vec!["n5/a/hgf/teams"],
        ),
        (
            cmd(&export, &["--format", "html", "-o", "n6/a/site"]),
            vec!["n6/a/site/index.html"],
        ),
        (
            [&export[..], &bulk, &["-o", "n7/a/restore.zip"]].concat(),
            vec![
                "n7/a/restore.zip",
                "n7/a/restore.mmctl.sh",
                "n7/a/restore.report.txt",
            ],
        ),
        (
            [
                &["backup", "--archive", "n8/a/archive", "-d", "n8/b/data"][..],
                &["-o", "n8/c/x.zip", "--report", "n8/d/report.json"],
                &sync,
            ]
            .concat(),
            vec![
                "n8/a/archive/catalog.sqlite",
                "n8/b/data/teams",
                "n8/c/x.zip",
                "n8/d/report.json",
            ],
        ),
        (
            [
                &[
                    "sync",
                    "--archive",
                    "n9/a/archive",
                    "--report",
                    "n9/b/r.json",
                ][..],
                &sync,
            ]
            .concat(),
            vec!["n9/a/archive/catalog.sqlite", "n9/b/r.json"],
        ),
        (
            vec!["demo", "n10/a/demo"],
            vec!["n10/a/demo/site/index.html"],
        ),
        (
            vec!["man-pages", "n11/a/man"],
            vec!["n11/a/man/matterbak.1"],
        ),
        (
            vec!["import", "--archive", "n12/a/archive", "n1/x.zip"],
            vec!["n12/a/archive/catalog.sqlite"],
        ),
    ];
    for (args, paths) in &made {
        let (code, _, err) = run_out(dir, args);
        assert_eq!(code, 0, "{args:?}: {err}");
        for path in paths {
            assert!(
                dir.join(path).exists(),
                "{args:?} did not make {path}: {err}"
            );
        }
    }

    // (command line, its error line): each refused before anything is written.
    std::fs::remove_file(dir.join("n7/a/restore.report.txt")).unwrap();
    std::fs::create_dir(dir.join("n7/a/restore.report.txt")).unwrap();
    let before = listing(dir);
    let refused: Vec<(Vec<&str>, &str)> = vec![
        (
            cmd(&export, &["-d", "r1/data", "-o", "file/x.zip"]),
            "error: export failed: cannot write file/x.zip: file is a file, not a folder",
        ),
        (
            cmd(&export, &["-d", "file/data", "-o", "r1/x.zip"]),
            "error: export failed: cannot write file/data: file is a file, not a folder",
        ),
        (
            cmd(
                &export,
                &["--format", "markdown", "-c", "dev", "-o", "file/dev.md"],
            ),
            "error: markdown export of demo/archive failed: cannot write file/dev.md: file is a file, not a folder",
        ),
        (
            cmd(&export, &["--format", "markdown", "-o", "file/md"]),
            "error: markdown export of demo/archive failed: cannot write file/md: file is a file, not a folder",
        ),
        (
            cmd(
                &export,
                &["--format", "hgf", "-c", "dev", "-o", "file/a/dev.zip"],
            ),
            "error: hgf export of demo/archive failed: cannot write file/a/dev.zip: file is a file, not a folder",
        ),
        (
            cmd(&export, &["--format", "html", "-o", "file/site"]),
            "error: website export of demo/archive failed: cannot write file/site: file is a file, not a folder",
        ),
        (
            [&export[..], &bulk, &["-o", "file/restore.zip"]].concat(),
            "error: bulk-import export of demo/archive failed: cannot write file/restore.zip: file is a file, not a folder",
        ),
        (
            [&export[..], &bulk, &["-o", "n7/a/restore.zip"]].concat(),
            "error: bulk-import export of demo/archive failed: cannot write n7/a/restore.report.txt: it is a directory; give a file name",
        ),
        (
            [
                &[
                    "backup",
                    "--archive",
                    "r2/archive",
                    "-d",
                    "r2/data",
                    "-o",
                    "file/x.zip",
                ][..],
                &sync,
            ]
            .concat(),
            "error: -o/--output: cannot write file/x.zip: file is a file, not a folder",
        ),
        (
            [
                &["backup", "--archive", "r2/archive", "-d", "file/data"][..],
                &sync,
            ]
            .concat(),
            "error: -d/--data-dir: cannot write file/data: file is a file, not a folder",
        ),
        (
            [
                &["sync", "--archive", "r2/archive", "--report", "file/r.json"][..],
                &sync,
            ]
            .concat(),
            "error: --report: cannot write file/r.json: file is a file, not a folder",
        ),
        (
            [&["sync", "--archive", "file/archive"][..], &sync].concat(),
            "error: --archive: cannot write file/archive: file is a file, not a folder",
        ),
        (
            vec!["demo", "file/demo"],
            "error: cannot write file/demo: file is a file, not a folder",
        ),
        (
            vec!["man-pages", "file/man"],
            "error: cannot write file/man: file is a file, not a folder",
        ),
        (
            vec!["import", "--archive", "file/archive", "n1/x.zip"],
            "error: --archive: cannot write file/archive: file is a file, not a folder",
        ),
        (
            vec!["pull", "s3://bucket/prefix", "file/archive"],
            "error: DIR: cannot write file/archive: file is a file, not a folder",
        ),
    ];
    for (args, expected) in &refused {
        let (code, _, err) = run_out(dir, args);
        assert_eq!(code, 2, "{args:?}: {err}");
        let line = err.lines().find(|l| l.starts_with("error:")).unwrap_or("");
        assert!(
            line.starts_with(expected),
            "{args:?}:\n  want: {expected}\n  got:  {err}"
        );
        assert_eq!(listing(dir), before, "{args:?} wrote something");
    }
    drop(server.stdin.take());
    server.wait().unwrap();
}

#[test]
fn the_demo_hints_run_as_printed_and_a_second_run_writes_nothing() {
    let root = tempfile::tempdir().unwrap();
    let (code, out, err) = run_out(root.path(), &["demo", "matterbak-demo"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.matches("zip:").count(), 1, "the zip path once: {out}");
    // The attachment count is not paired with the bytes of every download.
    assert!(
        err.contains("6 attachment(s) fetched, ")
            && err.contains(" bytes downloaded (attachments, pictures, emojis)"),
        "{err}"
    );
    let hints: Vec<&str> = out
        .lines()
        .map(str::trim)
        .filter(|l| l.contains(" sql --archive ") || l.contains(" search --archive "))
        .collect();
    assert_eq!(hints.len(), 2, "{out}");
    for hint in hints {
        // Run exactly as printed, by a shell, with no matterbak on the PATH.
        let done = Command::new("sh")
            .args(["-c", hint])
            .current_dir(root.path())
            .env("PATH", "/usr/bin:/bin")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&done.stdout);
        assert!(
            done.status.success(),
            "{hint}: {}",
            String::from_utf8_lossy(&done.stderr)
        );
        assert!(stdout.lines().count() >= 2, "{hint}: {stdout}");
    }
    let (code, _, err) = run_out(root.path(), &["demo", "matterbak-demo"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("sync ok: 0 posts written"),
        "a second run of the unchanged sample writes no post: {err}"
    );
}

#[test]
fn completions_and_help_texts() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = run_out(dir.path(), &["completions", "bash"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("_matterbak()"), "{out}");
    assert!(out.contains("--read-data-subset"), "every option completes");
    let (code, out, _) = run_out(dir.path(), &["completions", "zsh"]);
    assert_eq!(code, 0);
    assert!(out.starts_with("#compdef matterbak"), "{out}");
    let (code, _, err) = run_out(dir.path(), &["completions", "cmd.exe"]);
    assert_eq!(code, 2, "{err}");
    for args in [&["help", "--help"][..], &["help", "sync", "-h"]] {
        let (code, out, err) = run_out(dir.path(), args);
        assert_eq!(code, 0, "{args:?}: {err}");
        assert!(out.contains("Usage: matterbak"), "{args:?}: {out}");
    }
    let (code, out, _) = run_out(dir.path(), &["sync", "--help"]);
    assert_eq!(code, 0);
    let flat = out.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(flat.contains("[env: MATTERBAK_ARCHIVE]"), "{out}");
    assert!(
        !flat.contains("MATTERBAK_ARCHIVE="),
        "not set, so no value: {out}"
    );
}

/// The clause of `message` that says a cause already said, if any: each `error:` line is
/// split into clauses at `": "` (how `{:#}` joins an error chain), and a clause (OS error
/// numbers aside) must not recur inside another; a URL must not be named twice.
fn repeated_clause(message: &str) -> Option<String> {
    for line in message.lines() {
        let Some(rest) = line.strip_prefix("error: ") else {
            continue;
        };
        let clauses: Vec<String> = rest
            .split(": ")
            .map(|c| {
                let c = c.to_lowercase();
                match c.find(" (os error ") {
                    Some(at) => c[..at].trim().to_owned(),
                    None => c.trim().to_owned(),
                }
            })
            .collect();
        for (i, short) in clauses.iter().enumerate() {
            if short.len() < 6 {
                continue;
            }
            for (j, long) in clauses.iter().enumerate() {
                if i != j && long.contains(short.as_str()) {
                    return Some(format!("{short:?} again in {long:?}"));
                }
            }
        }
        let mut urls = std::collections::HashSet::new();
        for word in rest.split([' ', '(', ')', ',', ';']) {
            if word.contains("://") && !urls.insert(word.trim_end_matches(':')) {
                return Some(format!("URL {word} named twice"));
            }
        }
    }
    None
}

fn assert_each_cause_once(message: &str) {
    if let Some(repeated) = repeated_clause(message) {
        panic!("a cause is printed twice ({repeated}) in: {message}");
    }
}

#[test]
fn the_repetition_check_finds_the_old_doubled_messages() {
    for old in [
        "error: cannot read missing.json: No such file or directory (os error 2): No such file or directory (os error 2)",
        "error: export of a1 failed: export: cannot create f: File exists (os error 17): File exists (os error 17)",
        "error: sync into a1 failed: POST http://127.0.0.1:9/api/v4/users/login: cannot reach the server: connection refused by 127.0.0.1:9 (is the server running, and is the port right?): error sending request for url (http://127.0.0.1:9/api/v4/users/login): client error (Connect): tcp connect error: Connection refused (os error 111)",
    ] {
        assert!(repeated_clause(old).is_some(), "not caught: {old}");
    }
    assert_eq!(
        repeated_clause("error: cannot read missing.json: No such file or directory (os error 2)"),
        None
    );
}

const GOOD_CHANNELS: &str = r#"{"teams": {"eng": {}}}"#;
const GOOD_CREDS: &str =
    r#"{"user": "alice", "password": "pw-that-must-not-leak", "url": "http://127.0.0.1:9"}"#;

#[test]
fn bad_inputs_table() {
    // (credentials.json, channels.json, expected fragments of the error)
    let cases: &[(Option<&str>, Option<&str>, &[&str])] = &[
        (
            None,
            Some(GOOD_CHANNELS),
            &[
                "error: the credentials file credentials.json does not exist: give its path with --credentials FILE; it holds {\"user\": ",
                "\"url\": ",
            ],
        ),
        (Some(GOOD_CREDS), None, &["channels.json", "No such file"]),
        (
            Some("{\"user\": \"a\",}"),
            Some(GOOD_CHANNELS),
            &[
                "credentials.json is not valid JSON",
                "line 1, column 14",
                "comma after the last element",
            ],
        ),
        (
            Some(r#"{"user": "a", "password": "p"}"#),
            Some(GOOD_CHANNELS),
            &["credentials.json: field `url` is missing"],
        ),
        (
            Some(r#"{"user": "a", "password": "p", "url": "chat.example.com"}"#),
            Some(GOOD_CHANNELS),
            &["field `url` must start with https://"],
        ),
        (
            Some(GOOD_CREDS),
            Some(r#"{"teams": {"eng": {"include": "dev"}}}"#),
            &["channels.json: field `teams.eng.include` must be a list of names"],
        ),
        (
            Some(GOOD_CREDS),
            Some("{\"direct\": [\"bob\",\n]}"),
            &[
                "channels.json is not valid JSON",
                "line 2",
                "comma after the last element",
            ],
        ),
        (
            Some(GOOD_CREDS),
            Some(GOOD_CHANNELS),
            &["cannot reach the server", "127.0.0.1:9"],
        ),
    ];
    for (creds, channels, expected) in cases {
        let dir = tempfile::tempdir().unwrap();
        if let Some(text) = creds {
            std::fs::write(dir.path().join("credentials.json"), text).unwrap();
        }
        if let Some(text) = channels {
            std::fs::write(dir.path().join("channels.json"), text).unwrap();
        }
        let (code, err) = run(dir.path(), &["sync", "--rate-limit", "0"]);
        assert_eq!(code, 2, "{expected:?}: {err}");
        for fragment in *expected {
            assert!(err.contains(fragment), "expected {fragment:?} in: {err}");
        }
        assert_each_cause_once(&err);
        assert!(
            !err.contains("pw-that-must-not-leak"),
            "secret leaked: {err}"
        );
    }
}

#[test]
fn unknown_keys_warn_and_readable_credentials_warn() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("credentials.json"), GOOD_CREDS).unwrap();
    std::fs::write(
        dir.path().join("channels.json"),
        r#"{"teams": {}, "group": {}}"#,
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            dir.path().join("credentials.json"),
            std::fs::Permissions::from_mode(0o644),
        )
        .unwrap();
    }
    let (_, err) = run(dir.path(), &["sync", "--rate-limit", "0"]);
    assert!(err.contains("unknown key `group` ignored"), "{err}");
    #[cfg(unix)]
    assert!(err.contains("can be read by other users"), "{err}");
}

#[test]
fn bad_flag_values_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (code, err) = run(dir.path(), &["sync", "--rate-limit=-3"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--rate-limit"), "{err}");
}

#[test]
fn tls_flags_are_checked_and_insecure_warns() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("credentials.json"), GOOD_CREDS).unwrap();
    std::fs::write(dir.path().join("channels.json"), GOOD_CHANNELS).unwrap();
    std::fs::write(dir.path().join("ca.pem"), "this is not a certificate").unwrap();
    let (code, err) = run(dir.path(), &["sync", "--ca-cert", "ca.pem"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("CA certificate"), "{err}");
    let (code, err) = run(dir.path(), &["sync", "--ca-cert", "missing.pem"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("cannot read --ca-cert missing.pem"), "{err}");
    let (_, err) = run(dir.path(), &["sync", "--insecure", "--rate-limit", "0"]);
    assert!(
        err.contains("--insecure: TLS certificates are NOT checked"),
        "{err}"
    );
}

mod server_table {
    //! Bad input that needs a server (or something that is not one): each case's error line,
    //! exit code 2, and an archive left exactly as it was.

    use std::collections::BTreeMap;
    use std::path::{Path, PathBuf};
    use std::process::Command;

    use crate::common;
    use matterbak::mock::{
        MockServer, SAMPLE_CHANNELS_JSON, SAMPLE_MFA_PASSWORD, SAMPLE_MFA_USER, SAMPLE_PASSWORD,
        Workspace,
    };
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A loopback server that answers every request with the same raw HTTP response.
    async fn canned_server(response: &'static str) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 16384];
                    let _ = socket.read(&mut buf).await;
                    let _ = socket.write_all(response.as_bytes()).await;
                    let _ = socket.shutdown().await;
                });
            }
        });
        format!("http://{addr}")
    }

    const HTML: &str = "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 46\r\nConnection: close\r\n\r\n<!DOCTYPE html><html><body>Hello</body></html>";
    const NOT_FOUND: &str = "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 18\r\nConnection: close\r\n\r\n404 page not found";
    const NOT_IMPLEMENTED: &str = "HTTP/1.1 501 Not Implemented\r\nContent-Type: text/plain\r\nContent-Length: 15\r\nConnection: close\r\n\r\nNot Implemented";

    fn sync_binary(dir: &Path, archive: &Path, extra: &[&str]) -> (i32, String) {
        let out = common::matterbak_in(dir)
            .args(["sync", "--rate-limit", "0", "--archive"])
            .arg(archive)
            .args(extra)
            .output()
            .unwrap();
        let (code, _, stderr) = common::outcome(&out);
        (code, stderr)
    }

    /// Every file of the archive (but the lock, which only names its last holder) and its bytes.
    fn fingerprint(archive: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
        let mut out = BTreeMap::new();
        let mut stack = vec![archive.to_owned()];
        while let Some(dir) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                } else if path.file_name().unwrap() != "lock" {
                    out.insert(path.clone(), std::fs::read(&path).unwrap());
                }
            }
        }
        out
    }

    fn copy_dir(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            let target = to.join(entry.file_name());
            if entry.file_type().unwrap().is_dir() {
                copy_dir(&entry.path(), &target);
            } else {
                std::fs::copy(entry.path(), &target).unwrap();
            }
        }
    }

    #[derive(Clone, Copy, PartialEq)]
    enum Archive {
        /// A copy of an archive a good sync wrote; must come out byte for byte the same.
        Existing,
        /// Like `Existing`, with a schema version from the future.
        Newer,
        /// The archive path is a regular file.
        IsAFile,
        /// Starts empty; a simulated full disk strikes mid-run: must verify clean afterwards
        /// and complete with the next sync.
        DiskFull,
        /// Starts empty; the run goes on (warnings only).
        Fresh,
    }

    struct Case {
        name: &'static str,
        creds: serde_json::Value,
        channels: &'static str,
        extra: Vec<&'static str>,
        archive: Archive,
        code: i32,
        /// The start of the `error:` line (what follows is the OS's cause, which varies).
        error: String,
        also: Vec<String>,
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn bad_server_auth_archive_and_disk_table() {
        let server = MockServer::start(Workspace::sample()).await.unwrap();
        let mock = server.url();
        let html = canned_server(HTML).await;
        let not_found = canned_server(NOT_FOUND).await;
        let not_implemented = canned_server(NOT_IMPLEMENTED).await;
        let html_hostport = html.trim_start_matches("http://").to_owned();
        let creds = |url: &str| serde_json::json!({"user": "alice", "password": SAMPLE_PASSWORD, "url": url});
        let login = |url: &str| {
            format!("error: sync into <archive> failed: POST {url}/api/v4/users/login: ")
        };

        let root = tempfile::tempdir().unwrap();
        let template = root.path().join("template");
        {
            std::fs::write(
                root.path().join("credentials.json"),
                creds(&mock).to_string(),
            )
            .unwrap();
            std::fs::write(root.path().join("channels.json"), SAMPLE_CHANNELS_JSON).unwrap();
            let (code, err) =
                tokio::task::block_in_place(|| sync_binary(root.path(), &template, &[]));
            assert_eq!(code, 0, "{err}");
        }

        let cases = vec![
            Case {
                name: "HTML page instead of the API",
                creds: creds(&html),
                channels: SAMPLE_CHANNELS_JSON,
                extra: vec![],
                archive: Archive::Existing,
                code: 2,
                error: format!("{}the response is not what a Mattermost server sends: got an HTML page instead of the Mattermost API: is the url the server's address?", login(&html)),
                also: vec![],
            },
            Case {
                name: "wrong path on a Mattermost server",
                creds: creds(&format!("{mock}/wrong/path")),
                channels: SAMPLE_CHANNELS_JSON,
                extra: vec![],
                archive: Archive::Existing,
                code: 2,
                error: format!("{}the response is not what a Mattermost server sends: HTTP 404: no Mattermost API there; is the url the server's address (https://host, without a path)?", login(&format!("{mock}/wrong/path"))),
                also: vec![],
            },
            Case {
                name: "a web server that is not Mattermost (plain 404)",
                creds: creds(&not_found),
                channels: SAMPLE_CHANNELS_JSON,
                extra: vec![],
                archive: Archive::Existing,
                code: 2,
                error: format!("{}the response is not what a Mattermost server sends: HTTP 404 without a Mattermost error body: is the URL the server's address?", login(&not_found)),
                also: vec![],
            },
            Case {
                name: "a server answering 501",
                creds: creds(&not_implemented),
                channels: SAMPLE_CHANNELS_JSON,
                extra: vec![],
                archive: Archive::Existing,
                code: 2,
                error: format!("{}the response is not what a Mattermost server sends: HTTP 501: no Mattermost API there; is the url the server's address (https://host, without a path)?", login(&not_implemented)),
                also: vec![],
            },
            Case {
                name: "connection refused",
                creds: creds("http://127.0.0.1:9"),
                channels: SAMPLE_CHANNELS_JSON,
                extra: vec![],
                archive: Archive::Existing,
                code: 2,
                error: format!("{}cannot reach the server: connection refused by 127.0.0.1:9 (is the server running, and is the port right?)", login("http://127.0.0.1:9")),
                also: vec![],
            },
            Case {
                name: "host name does not resolve",
                creds: creds("https://matterbak-test.invalid"),
                channels: SAMPLE_CHANNELS_JSON,
                extra: vec![],
                archive: Archive::Existing,
                code: 2,
                error: format!("{}cannot reach the server: cannot resolve host name matterbak-test.invalid (check the url in the credentials file)", login("https://matterbak-test.invalid")),
                also: vec![],
            },
            Case {
                name: "TLS to a plain-HTTP server",
                creds: creds(&format!("https://{html_hostport}")),
                channels: SAMPLE_CHANNELS_JSON,
                extra: vec![],
                archive: Archive::Existing,
                code: 2,
                error: format!("{}cannot reach the server: TLS handshake with {html_hostport} failed (a server without https, or a certificate that is not trusted; for a plain-HTTP server use http://)", login(&format!("https://{html_hostport}"))),
                also: vec![],
            },
            Case {
                name: "wrong password",
                creds: serde_json::json!({"user": "alice", "password": "pw-that-must-not-leak", "url": mock}),
                channels: SAMPLE_CHANNELS_JSON,
                extra: vec![],
                archive: Archive::Existing,
                code: 2,
                error: format!("{}the server refused the credentials (HTTP 401, api.user.login.invalid_credentials_email_username); check the password or token in the credentials file", login(&mock)),
                also: vec![],
            },
            Case {
                name: "expired token",
                creds: serde_json::json!({"user": "alice", "token": "pw-that-must-not-leak", "url": mock}),
                channels: SAMPLE_CHANNELS_JSON,
                extra: vec![],
                archive: Archive::Existing,
                code: 2,
                error: format!("error: sync into <archive> failed: GET {mock}/api/v4/users/me: the server refused the credentials (HTTP 401, api.context.session_expired.app_error); check the password or token in the credentials file"),
                also: vec![],
            },
            Case {
                name: "MFA required",
                creds: serde_json::json!({"user": SAMPLE_MFA_USER, "password": SAMPLE_MFA_PASSWORD, "url": mock}),
                channels: SAMPLE_CHANNELS_JSON,
                extra: vec![],
                archive: Archive::Existing,
                code: 2,
                error: format!("{}this account needs a multi-factor code: pass --mfa-token CODE", login(&mock)),
                also: vec![],
            },
            Case {
                name: "archive created by a newer matterbak",
                creds: creds(&mock),
                channels: SAMPLE_CHANNELS_JSON,
                extra: vec![],
                archive: Archive::Newer,
                code: 2,
                error: format!(
                    "error: sync into <archive> failed: catalog <archive>/catalog.sqlite has schema version 99, newer than this matterbak understands ({}); use a newer matterbak",
                    matterbak::catalog::SCHEMA_VERSION
                ),
                also: vec![],
            },
            Case {
                name: "archive path is not a directory",
                creds: creds(&mock),
                channels: SAMPLE_CHANNELS_JSON,
                extra: vec![],
                archive: Archive::IsAFile,
                code: 2,
                error: "error: sync into <archive> failed: cannot use archive directory <archive>: it exists and is not a directory".into(),
                also: vec![],
            },
            Case {
                name: "team and user not found: warn and continue, even with --quiet",
                creds: creds(&mock),
                channels: r#"{"teams": {"nosuchteam": {}, "eng": {}}, "direct": ["nosuchuser"]}"#,
                extra: vec!["--quiet"],
                archive: Archive::Fresh,
                code: 0,
                error: String::new(),
                also: vec![
                    "warning: user 'alice' does not have access to team \"nosuchteam\"; skipping team".into(),
                    "warning: configured but missing direct channels: [\"nosuchuser\"]".into(),
                ],
            },
            Case {
                name: "disk full while writing a blob",
                creds: creds(&mock),
                channels: SAMPLE_CHANNELS_JSON,
                extra: vec!["--simulate-disk-full", "blobs:1000"],
                archive: Archive::DiskFull,
                code: 2,
                error: "error: sync into <archive> failed: blob store: cannot write <archive>/tmp/".into(),
                also: vec!["the disk holding the archive is full: free space, then run `matterbak sync` again".into()],
            },
            Case {
                name: "disk full while writing the catalog",
                creds: creds(&mock),
                channels: SAMPLE_CHANNELS_JSON,
                extra: vec!["--simulate-disk-full", "catalog:8"],
                archive: Archive::DiskFull,
                code: 2,
                error: "error: sync into <archive> failed: catalog <archive>/catalog.sqlite: ".into(),
                also: vec!["(the disk holding the archive is full: free space, then run `matterbak sync` again; everything committed so far is kept and consistent): database or disk is full".into()],
            },
        ];

        for (i, case) in cases.iter().enumerate() {
            let dir = root.path().join(format!("case{i}"));
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("credentials.json"), case.creds.to_string()).unwrap();
            std::fs::write(dir.join("channels.json"), case.channels).unwrap();
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(
                    dir.join("credentials.json"),
                    std::fs::Permissions::from_mode(0o600),
                )
                .unwrap();
            }
            let archive = dir.join("archive");
            match case.archive {
                Archive::Existing | Archive::Newer => copy_dir(&template, &archive),
                Archive::IsAFile => std::fs::write(&archive, b"not a directory").unwrap(),
                Archive::DiskFull | Archive::Fresh => {}
            }
            if case.archive == Archive::Newer {
                let conn = rusqlite::Connection::open(archive.join("catalog.sqlite")).unwrap();
                conn.execute_batch("PRAGMA user_version = 99").unwrap();
            }
            let before = fingerprint(&archive);
            let extra = case.extra.clone();
            let (code, err) = tokio::task::block_in_place(|| sync_binary(&dir, &archive, &extra));
            let err_shown = err.replace(&archive.display().to_string(), "<archive>");
            assert_eq!(code, case.code, "{}: {err_shown}", case.name);
            if !case.error.is_empty() {
                let line = err_shown
                    .lines()
                    .find(|l| l.starts_with("error:"))
                    .unwrap_or_else(|| panic!("{}: no error line in {err_shown}", case.name));
                assert!(
                    line.starts_with(&case.error),
                    "{}:\n  want: {}\n  got:  {line}",
                    case.name,
                    case.error
                );
            }
            super::assert_each_cause_once(&err_shown);
            for fragment in &case.also {
                assert!(
                    err_shown.contains(fragment.as_str()),
                    "{}: want {fragment:?} in {err_shown}",
                    case.name
                );
            }
            assert!(
                !err.contains("pw-that-must-not-leak"),
                "{}: secret leaked",
                case.name
            );
            assert!(
                !err.contains(SAMPLE_PASSWORD),
                "{}: secret leaked",
                case.name
            );
            match case.archive {
                Archive::Existing | Archive::Newer | Archive::IsAFile => {
                    assert!(
                        before == fingerprint(&archive),
                        "{}: the archive changed",
                        case.name
                    );
                }
                Archive::DiskFull => {
                    let (code, out) =
                        tokio::task::block_in_place(|| common::verify_read_data(&archive));
                    assert_eq!(
                        code, 0,
                        "{}: not consistent after a full disk: {out}",
                        case.name
                    );
                    let (code, err) =
                        tokio::task::block_in_place(|| sync_binary(&dir, &archive, &[]));
                    assert_eq!(code, 0, "{}: next sync: {err}", case.name);
                    let (code, out) =
                        tokio::task::block_in_place(|| common::verify_read_data(&archive));
                    assert_eq!(code, 0, "{}: {out}", case.name);
                }
                Archive::Fresh => {}
            }
        }
    }

    /// An archive directory the sync may not write to is refused (exit 2, naming it and the
    /// system's reason). Root writes anywhere, so as root (CI is) the sync runs through
    /// `setpriv` with every capability dropped: still uid 0, but held to the directory's mode
    /// like any other user.
    #[cfg(unix)]
    #[test]
    fn an_archive_directory_without_write_permission_is_refused() {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let dir = tempfile::tempdir().unwrap();
        let archive = dir.path().join("archive");
        std::fs::create_dir(&archive).unwrap();
        std::fs::set_permissions(&archive, std::fs::Permissions::from_mode(0o555)).unwrap();
        std::fs::write(
            dir.path().join("credentials.json"),
            r#"{"user": "a", "password": "p", "url": "http://127.0.0.1:9"}"#,
        )
        .unwrap();
        std::fs::write(dir.path().join("channels.json"), "{}").unwrap();
        let as_root = archive.metadata().unwrap().uid() == 0;
        let mut command = if as_root {
            let mut command = Command::new("setpriv");
            command
                .args(["--inh-caps=-all", "--bounding-set=-all", "--"])
                .arg(env!("CARGO_BIN_EXE_matterbak"));
            command
        } else {
            Command::new(env!("CARGO_BIN_EXE_matterbak"))
        };
        let out = command
            .current_dir(dir.path())
            .env_remove("MATTERBAK_TOKEN")
            .env_remove("MATTERBAK_PASSWORD")
            .env_remove("MATTERBAK_ARCHIVE")
            .args(["sync", "--rate-limit", "0", "--archive"])
            .arg(&archive)
            .output()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run the sync without root's capabilities through setpriv ({e}): \
                     install util-linux (or run `scripts/test-deps cargo test`)"
                )
            });
        let (code, _, err) = common::outcome(&out);
        assert_eq!(code, 2, "{err}");
        assert!(
            err.contains(&format!(
                "cannot use archive directory {}",
                archive.display()
            )),
            "{err}"
        );
        assert!(err.contains("Permission denied"), "{err}");
        assert_eq!(
            std::fs::read_dir(&archive).unwrap().count(),
            0,
            "nothing written into the archive directory"
        );
    }
}

/// The README's test command is one line that installs what the suite needs and runs it,
/// and CI runs exactly that line (so a test that needs something the command does not install
/// fails in CI instead of passing unseen on a developer's machine).
#[test]
fn ci_runs_the_readmes_test_command_which_installs_the_suites_needs() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let command = "scripts/test-deps cargo test";
    assert!(
        readme
            .lines()
            .any(|l| l.starts_with(&format!("{command} "))),
        "the README's Quick start runs the tests with `{command}`"
    );
    let ci = std::fs::read_to_string(root.join(".ci/run")).unwrap();
    assert!(
        ci.lines().any(|l| l.trim() == command),
        ".ci/run runs `{command}`"
    );
    assert!(
        !ci.contains("MATTERBAK_TEST_S3_SERVER="),
        ".ci/run sets up nothing the README's command does not"
    );
    let script = std::fs::read_to_string(root.join("scripts/test-deps")).unwrap();
    for need in [
        "chromium",
        "sqlite3",
        "bsdutils",
        "util-linux",
        "moto[server]",
    ] {
        assert!(script.contains(need), "scripts/test-deps installs {need}");
    }
}

#[test]
fn the_readme_states_what_a_newcomer_needs() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    let version = manifest
        .lines()
        .find_map(|l| l.strip_prefix("rust-version = "))
        .expect("Cargo.toml sets rust-version")
        .trim_matches('"');
    assert!(
        readme.contains(&format!("Rust {version} or newer, the `rust-version` in")),
        "README names the minimum Rust version {version}"
    );
    assert!(readme.contains("matterbak completions bash > "));
    assert!(readme.contains("cargo install --path ."));
    assert!(readme.contains("The `sqlite3` shell is optional"));
    assert!(readme.contains("(#restoring-into-mattermost)"));
    let ignored = std::fs::read_to_string(root.join(".gitignore")).unwrap();
    assert!(
        ignored.lines().any(|l| l == "/matterbak-demo/"),
        "{ignored}"
    );
}
