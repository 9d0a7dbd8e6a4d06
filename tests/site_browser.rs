//! The website in a real browser: Debian's `chromium`, headless, opening the site from
//! `file://` as a user's double-click does (no flag that relaxes file access). Searches by
//! address (`index.html#q=…`) list the expected posts, a thread link opens the thread, the
//! page logs no console error and loads nothing from outside the site, and with JavaScript
//! off the channel pages still show the messages. `.ci/run` installs chromium; set
//! `MATTERBAK_CHROMIUM` to use another binary.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::start;
use matterbak::export::html::{self, SiteOptions};

fn chromium() -> PathBuf {
    if let Some(path) = std::env::var_os("MATTERBAK_CHROMIUM") {
        return path.into();
    }
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        for dir in std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()) {
            let path = dir.join(name);
            if path.is_file() {
                return path;
            }
        }
    }
    panic!("no chromium found: install it (apt-get install chromium) or set MATTERBAK_CHROMIUM");
}

struct Dump {
    dom: String,
    log: String,
}

/// Opens `url` headless and returns the DOM after the page's scripts ran.
fn dump(url: &str, profile: &Path, scripts: bool) -> Dump {
    let mut cmd = Command::new(chromium());
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--enable-logging=stderr",
        "--v=0",
        "--virtual-time-budget=10000",
    ])
    .arg(format!("--user-data-dir={}", profile.display()));
    if !scripts {
        cmd.arg("--blink-settings=scriptEnabled=false");
    }
    let out = cmd.arg("--dump-dom").arg(url).output().unwrap();
    assert!(out.status.success(), "chromium failed on {url}");
    Dump {
        dom: String::from_utf8_lossy(&out.stdout).into_owned(),
        log: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[derive(Debug)]
struct Hit {
    channel: String,
    user: String,
    text: String,
    href: String,
    thread: Option<String>,
}

fn between<'a>(s: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let from = s.find(start)? + start.len();
    let len = s[from..].find(end)?;
    Some(&s[from..from + len])
}

fn hits(dom: &str) -> Vec<Hit> {
    dom.split("<li class=\"hit\"")
        .skip(1)
        .map(|li| Hit {
            channel: between(li, "class=\"hit-channel\">", "<")
                .unwrap()
                .to_owned(),
            user: between(li, "class=\"hit-user\">", "<").unwrap().to_owned(),
            text: between(li, "class=\"hit-text\">", "</span>")
                .unwrap()
                .to_owned(),
            href: between(li, "class=\"hit-link\" href=\"", "\"")
                .unwrap()
                .to_owned(),
            thread: between(li, "class=\"hit-thread\" href=\"", "\"").map(str::to_owned),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_from_disk_finds_posts_and_opens_threads_without_network() {
    let env = start().await;
    env.sync().await;
    let site = env.dir.path().join("site");
    html::build_site(&env.archive, &site, &SiteOptions::default()).unwrap();
    let profile = env.dir.path().join("profile");
    let base = format!("file://{}", site.display());
    let search = |q: &str| {
        let d = dump(&format!("{base}/index.html#q={q}"), &profile, true);
        assert!(
            d.dom.contains("data-search-done=\"1\""),
            "search {q} did not finish: {}",
            d.log
        );
        // No console error, no uncaught exception.
        for line in d.log.lines() {
            assert!(
                !(line.contains("CONSOLE")
                    && (line.contains("Error") || line.contains("Uncaught"))),
                "{q}: {line}"
            );
        }
        // Everything the page loaded is inside the site.
        let resources = between(&d.dom, "data-resources=\"", "\"")
            .unwrap()
            .to_owned();
        assert!(!resources.is_empty());
        for r in resources.split(' ') {
            assert!(r.starts_with(&format!("{base}/")), "{q}: loaded {r}");
        }
        hits(&d.dom)
    };

    // A word.
    let found = search("welcome");
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].text, "Welcome to Engineering!");
    assert_eq!(
        (found[0].channel.as_str(), found[0].user.as_str()),
        ("~town-square", "@alice")
    );
    // Its thread link opens the thread page, which holds the replies.
    let thread = found[0]
        .thread
        .clone()
        .expect("the welcome post has replies");
    let page = dump(&format!("{base}/{thread}"), &profile, true);
    assert!(page.dom.contains("Thanks! Glad to be here."));
    assert!(page.dom.contains("Same here."));
    let post_page = dump(&format!("{base}/{}", found[0].href), &profile, true);
    let anchor = found[0].href.split_once('#').unwrap().1;
    assert!(post_page.dom.contains(&format!("id=\"{anchor}\"")));

    // A phrase: only the post with the words in that order.
    let found = search("%22glad%20to%20be%20here%22");
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].text, "Thanks! Glad to be here.");
    let found = search("%22here%20glad%22");
    assert!(found.is_empty(), "{found:?}");

    // A prefix.
    let found = search("welc*");
    assert!(
        found.iter().any(|h| h.text == "Welcome to Engineering!"),
        "{found:?}"
    );
    assert!(
        found.iter().all(|h| h.text.to_lowercase().contains("welc")),
        "{found:?}"
    );

    // from: and in: filters.
    let found = search("from%3Abob");
    assert!(!found.is_empty());
    assert!(found.iter().all(|h| h.user == "@bob"), "{found:?}");
    let found = search("in%3Aoff-topic%20lunch");
    assert!(
        found.iter().any(|h| h.text == "Anyone up for lunch?"),
        "{found:?}"
    );
    assert!(found.iter().all(|h| h.channel == "~off-topic"), "{found:?}");
    let found = search("in%3Atown-square%20lunch");
    assert!(found.is_empty(), "{found:?}");
}
