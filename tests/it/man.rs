//! The manual pages that `matterbak man-pages DIR` writes (what the Debian package installs)
//! against clap's own command tree and against what the binary's `--help` prints: one page
//! per visible subcommand, each listed on matterbak(1); every long option and alias that
//! `--help` shows is on its command's page; hidden subcommands and options are on none.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use clap::CommandFactory;
use matterbak::cli::Cli;

fn matterbak(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_matterbak"))
        .args(args)
        .env_remove("MATTERBAK_ARCHIVE")
        .env_remove("MATTERBAK_BLOBS")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "matterbak {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A page's text with roff's escapes and font changes taken out (`\-\-archive` → `--archive`).
fn page_text(dir: &Path, file: &str) -> String {
    let path = dir.join(file);
    let roff = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("no page {}: {e}", path.display()));
    roff.replace("\\-", "-")
        .replace("\\fB", "")
        .replace("\\fI", "")
        .replace("\\fR", "")
        .replace("\\fP", "")
        .replace("\\&", "")
}

/// Every `--word` in `text` (not preceded by a letter, digit or hyphen).
fn long_options(text: &str) -> BTreeSet<String> {
    let bytes = text.as_bytes();
    let mut found = BTreeSet::new();
    let mut i = 0;
    while let Some(at) = text[i..].find("--") {
        let start = i + at;
        let before_ok =
            start == 0 || !(bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'-');
        let end = start
            + 2
            + text[start + 2..]
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
                .unwrap_or(text.len() - start - 2);
        let name = &text[start..end];
        if before_ok && name.len() > 2 && bytes[start + 2].is_ascii_alphabetic() {
            found.insert(name.trim_end_matches('-').to_owned());
        }
        i = end.max(start + 2);
    }
    found
}

/// The long options clap shows for `command`: (visible, hidden).
fn tree_options(command: &clap::Command) -> (BTreeSet<String>, BTreeSet<String>) {
    let (mut visible, mut hidden) = (BTreeSet::new(), BTreeSet::new());
    for arg in command.get_arguments() {
        let Some(long) = arg.get_long() else { continue };
        if arg.is_hide_set() {
            hidden.insert(format!("--{long}"));
        } else {
            visible.insert(format!("--{long}"));
            for alias in arg.get_visible_aliases().unwrap_or_default() {
                visible.insert(format!("--{alias}"));
            }
        }
    }
    (visible, hidden)
}

#[test]
fn man_pages_cover_every_subcommand_and_option_of_help() {
    let dir = tempfile::tempdir().unwrap();
    let printed = matterbak(&["man-pages", dir.path().to_str().unwrap()]);

    let mut tree = Cli::command();
    tree.build();
    let visible: Vec<&clap::Command> = tree
        .get_subcommands()
        .filter(|sub| !sub.is_hide_set() && sub.get_name() != "help")
        .collect();
    assert!(
        visible.len() >= 12,
        "clap lists {} subcommands",
        visible.len()
    );

    // Exactly one page per visible subcommand, plus matterbak.1; each path printed.
    let mut expected: BTreeSet<String> = visible
        .iter()
        .map(|sub| format!("matterbak-{}.1", sub.get_name()))
        .collect();
    expected.insert("matterbak.1".into());
    // A subcommand with subcommands of its own (`key`) has a page for each of them too.
    for sub in &visible {
        for nested in sub
            .get_subcommands()
            .filter(|n| !n.is_hide_set() && n.get_name() != "help")
        {
            expected.insert(format!(
                "matterbak-{}-{}.1",
                sub.get_name(),
                nested.get_name()
            ));
        }
    }
    let files: BTreeSet<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(files, expected);
    assert_eq!(printed.lines().count(), expected.len(), "{printed}");

    // matterbak(1) names every subcommand's page; hidden ones appear nowhere.
    let top = page_text(dir.path(), "matterbak.1");
    for sub in &visible {
        let reference = format!("matterbak-{}(1)", sub.get_name());
        assert!(top.contains(&reference), "matterbak.1 lacks {reference}");
    }
    for hidden in tree.get_subcommands().filter(|sub| sub.is_hide_set()) {
        assert!(
            !top.contains(hidden.get_name()),
            "matterbak.1 mentions the hidden {}",
            hidden.get_name()
        );
    }

    // Each page against clap's tree and against the binary's own --help.
    let mut pages = vec![(tree.clone(), "matterbak.1".to_owned(), vec!["--help"])];
    for sub in &visible {
        pages.push((
            (*sub).clone(),
            format!("matterbak-{}.1", sub.get_name()),
            vec![sub.get_name(), "--help"],
        ));
        for nested in sub
            .get_subcommands()
            .filter(|n| !n.is_hide_set() && n.get_name() != "help")
        {
            pages.push((
                nested.clone(),
                format!("matterbak-{}-{}.1", sub.get_name(), nested.get_name()),
                vec![sub.get_name(), nested.get_name(), "--help"],
            ));
        }
    }
    for (command, file, help_args) in pages {
        let page = page_text(dir.path(), &file);
        let on_page = long_options(&page);
        let (visible, hidden) = tree_options(&command);
        let missing: Vec<_> = visible.difference(&on_page).collect();
        assert!(
            missing.is_empty(),
            "{file} lacks {missing:?} of clap's tree"
        );
        let shown: Vec<_> = hidden.intersection(&on_page).collect();
        assert!(shown.is_empty(), "{file} shows the hidden {shown:?}");
        let help = matterbak(&help_args);
        let in_help = long_options(&help);
        assert!(in_help.contains("--help"), "no options read from {help}");
        let missing: Vec<_> = in_help.difference(&on_page).collect();
        assert!(
            missing.is_empty(),
            "{file} lacks {missing:?} that {help_args:?} prints"
        );
    }

    // A few by name, independent of both.
    let sync = page_text(dir.path(), "matterbak-sync.1");
    for option in [
        "--credentials",
        "--channels",
        "--quiet",
        "--rate-limit",
        "--archive",
    ] {
        assert!(
            long_options(&sync).contains(option),
            "matterbak-sync.1 lacks {option}"
        );
    }
    assert!(
        sync.contains("MATTERBAK_ARCHIVE"),
        "the environment variable is not named"
    );
    assert!(!sync.contains("--simulate-disk-full"));
    let export = long_options(&page_text(dir.path(), "matterbak-export.1"));
    for option in [
        "--format",
        "--output",
        "--data-dir",
        "--deleted",
        "--tz",
        "--channel",
        "--existing-users",
    ] {
        assert!(export.contains(option), "matterbak-export.1 lacks {option}");
    }
    let backup = long_options(&page_text(dir.path(), "matterbak-backup.1"));
    assert!(backup.contains("--output-zip") && backup.contains("--output"));
    let verify = long_options(&page_text(dir.path(), "matterbak-verify.1"));
    assert!(verify.contains("--read-data-subset"));
    assert!(!files.contains("matterbak-mock-server.1"));
    assert!(!files.contains("matterbak-man-pages.1"));
}
