//! The README's examples run as printed: every `matterbak` command in its ```sh blocks and in
//! the example column of its command table, with the built binary as `matterbak` on `PATH`,
//! in a directory where `credentials.json` and `channels.json` (the demo's selection) point
//! at the mock's sample workspace on loopback (so `sync`, `backup` and `demo` run too), `HOME`
//! a temp directory holding Python-layout backups of that workspace (for
//! `import ~/backups/…`). No example may print a warning there: a newcomer reads one as a
//! fault (the demo's first lines were two, caused by its own selection).
//!
//! Skipped, because they need what a test cannot have: blocks whose info string says
//! `needs=…` (a toolchain, cron, object storage, a Mattermost administrator), lines that are
//! not `matterbak` commands (`mmctl`, `export AWS_…`), and commands that use object
//! storage (`s3://`, `snapshot`). Every other command must exit 0.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;

/// One example: where it is in the README, and the command line.
#[derive(Debug)]
struct Example {
    line: usize,
    command: String,
}

/// A fenced block being read: a ```sh block (run unless marked `needs=…`) or another one.
enum Fence {
    Sh {
        run: bool,
        lines: Vec<(usize, String)>,
    },
    Other,
}

/// The ```sh blocks without a `needs=` mark, and the example column of the command table;
/// continuation lines joined, comments removed, only `matterbak` commands. Also returns
/// what was left out, as `README.md:LINE: command`.
fn examples(readme: &str) -> (Vec<Example>, Vec<String>) {
    let mut runnable = Vec::new();
    let mut skipped = Vec::new();
    let mut fence: Option<Fence> = None;
    let mut in_commands = false;
    for (n, line) in readme.lines().enumerate() {
        let n = n + 1;
        match &mut fence {
            Some(Fence::Other) => {
                if line.starts_with("```") {
                    fence = None;
                }
                continue;
            }
            Some(Fence::Sh { run, lines }) => {
                if !line.starts_with("```") {
                    lines.push((n, line.to_owned()));
                    continue;
                }
                let run = *run;
                for (at, command) in commands(std::mem::take(lines)) {
                    if run && command.starts_with("matterbak ") && !needs_object_storage(&command) {
                        runnable.push(Example { line: at, command });
                    } else {
                        skipped.push(format!("README.md:{at}: {command}"));
                    }
                }
                fence = None;
                continue;
            }
            None => {}
        }
        if let Some(info) = line.strip_prefix("```") {
            let mut words = info.split_whitespace();
            fence = Some(if words.next() == Some("sh") {
                Fence::Sh {
                    run: !words.any(|w| w.starts_with("needs=")),
                    lines: Vec::new(),
                }
            } else {
                Fence::Other
            });
            continue;
        }
        if line.starts_with("## ") {
            in_commands = line == "## Commands";
        }
        if in_commands && line.starts_with("| `") {
            let cell = line.trim_end_matches('|').trim_end();
            let cell = cell.rsplit(" | ").next().unwrap_or_default().trim();
            if let Some(command) = cell.strip_prefix('`').and_then(|c| c.strip_suffix('`')) {
                if needs_object_storage(command) {
                    skipped.push(format!("README.md:{n}: {command}"));
                } else if command.starts_with("matterbak ") {
                    runnable.push(Example {
                        line: n,
                        command: command.to_owned(),
                    });
                }
            }
        }
    }
    (runnable, skipped)
}

/// A block's command lines: `\` continuations joined, comments and blank lines removed.
fn commands(lines: Vec<(usize, String)>) -> Vec<(usize, String)> {
    let mut joined: Vec<(usize, String)> = Vec::new();
    let mut continued = false;
    for (at, text) in lines {
        let text = text.trim_end();
        let (body, more) = match text.strip_suffix('\\') {
            Some(body) => (body, true),
            None => (text, false),
        };
        match joined.last_mut() {
            Some(last) if continued => {
                last.1.push(' ');
                last.1.push_str(body.trim());
            }
            _ => joined.push((at, body.trim_end().to_owned())),
        }
        continued = more;
    }
    joined
        .into_iter()
        .map(|(at, text)| (at, strip_comment(&text).trim().to_owned()))
        .filter(|(_, command)| !command.is_empty())
        .collect()
}

/// The line without a trailing `# comment` (a `#` outside quotes, after a space).
fn strip_comment(line: &str) -> &str {
    let (mut single, mut double) = (false, false);
    let mut previous = ' ';
    for (at, c) in line.char_indices() {
        match c {
            '\'' if !double => single = !single,
            '"' if !single => double = !double,
            '#' if !single && !double && previous == ' ' => return &line[..at],
            _ => {}
        }
        previous = c;
    }
    line
}

fn needs_object_storage(command: &str) -> bool {
    command.contains("s3://") || command.starts_with("matterbak snapshot")
}

/// A directory with `matterbak` in it, for `PATH`.
fn bin_dir(root: &Path) -> PathBuf {
    let dir = root.join("bin");
    std::fs::create_dir_all(&dir).unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_matterbak"), dir.join("matterbak")).unwrap();
    dir
}

fn run(root: &Path, cwd: &Path, command: &str) -> std::process::Output {
    let path = format!(
        "{}:{}",
        bin_dir_path(root).display(),
        std::env::var("PATH").unwrap_or_default()
    );
    Command::new("bash")
        .args(["-c", command])
        .current_dir(cwd)
        .env("PATH", path)
        .env("HOME", root.join("home"))
        .env_remove("MATTERBAK_ARCHIVE")
        .env_remove("MATTERBAK_BLOBS")
        .env_remove("MATTERBAK_TOKEN")
        .env_remove("MATTERBAK_PASSWORD")
        .env("NO_COLOR", "1")
        .output()
        .expect("bash runs")
}

fn bin_dir_path(root: &Path) -> PathBuf {
    root.join("bin")
}

#[test]
fn the_examples_are_found_and_the_marked_ones_skipped() {
    let readme = "intro\n\n```sh\nmatterbak sync   # first\nmatterbak export --format html \\\n    -o 'a b'\nmmctl import list\n```\n\n```sh needs=s3\nmatterbak sync --blobs s3://x\n```\n\n```json\n{\"a\": 1}\n```\n\n## Commands\n\n| command | what | example |\n|---|---|---|\n| `sync` | Copies. | `matterbak sync --rate-limit 5` |\n| `pull` | Pulls. | `matterbak pull s3://b/p dir` |\n\n## Other\n\n| `x` | y | `matterbak nope` |\n";
    let (runnable, skipped) = examples(readme);
    let commands: Vec<(usize, &str)> = runnable
        .iter()
        .map(|e| (e.line, e.command.as_str()))
        .collect();
    assert_eq!(
        commands,
        [
            (4, "matterbak sync"),
            (5, "matterbak export --format html -o 'a b'"),
            (22, "matterbak sync --rate-limit 5"),
        ]
    );
    assert_eq!(
        skipped,
        [
            "README.md:7: mmctl import list",
            "README.md:11: matterbak sync --blobs s3://x",
            "README.md:23: matterbak pull s3://b/p dir",
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_readme_example_runs_against_the_sample_workspace() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let (examples, skipped) = examples(&readme);
    // The README's own commands: one per command of the table, and the common tasks.
    assert!(
        examples.len() >= 20,
        "{} examples found: {examples:#?}",
        examples.len()
    );
    for needed in [
        "matterbak sync --credentials credentials.json",
        "matterbak export --format html -o site",
        "matterbak search deploy",
        "matterbak import ~/backups/data",
        "matterbak export --format bulk-import --existing-users target-users.json",
    ] {
        assert!(
            examples.iter().any(|e| e.command.starts_with(needed)),
            "no README example starts with {needed:?}"
        );
    }

    let env = common::start().await;
    let root = env.dir.path().to_owned();
    let cwd = root.join("work");
    let home = root.join("home");
    std::fs::create_dir_all(&cwd).unwrap();
    std::fs::create_dir_all(home.join(".local/share/bash-completion/completions")).unwrap();
    std::fs::create_dir_all(home.join("backups")).unwrap();
    bin_dir(&root);
    common::write_inputs(&cwd, &env.server.url(), 0o600);
    // The demo's selection: what a user following the README on the sample would have.
    std::fs::write(
        cwd.join("channels.json"),
        matterbak::mock::DEMO_CHANNELS_JSON,
    )
    .unwrap();
    // What the examples assume exists: an archive (the first sync), Python-layout backups
    // under ~/backups (our export writes that layout), the target server's user list.
    let setup = format!(
        "matterbak sync --quiet --archive {seed} && matterbak export --archive {seed} -d {home}/backups/data -o {home}/backups/matterbak_alice-2023.zip",
        seed = root.join("seed").display(),
        home = home.display()
    );
    let url = env.server.url();
    let (root2, cwd2) = (root.clone(), cwd.clone());
    let failures = tokio::task::spawn_blocking(move || {
        let out = run(&root2, &cwd2, &setup);
        assert!(
            out.status.success(),
            "setup failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::write(
            cwd2.join("target-users.json"),
            r#"[{"id":"x","username":"admin","email":"admin@example.org"}]"#,
        )
        .unwrap();
        let mut failures = Vec::new();
        for example in &examples {
            let out = run(&root2, &cwd2, &example.command);
            let stderr = String::from_utf8_lossy(&out.stderr);
            if let Some(warning) = stderr.lines().find(|l| l.starts_with("warning")) {
                failures.push(format!(
                    "README.md:{}: `{}` warns on the sample workspace: {warning}",
                    example.line, example.command
                ));
            }
            if !out.status.success() {
                failures.push(format!(
                    "README.md:{}: `{}` exited {:?}: {}",
                    example.line,
                    example.command,
                    out.status.code(),
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
        }
        failures
    })
    .await
    .unwrap();
    assert!(
        failures.is_empty(),
        "against {url}:\n{}\n(skipped: {skipped:#?})",
        failures.join("\n")
    );
}
