//! `export --format html` without a browser: every archived post appears exactly once as an
//! anchor in the channel pages (and once in its thread page), every relative link resolves,
//! nothing is loaded from the network, hostile content stays inert and nothing is written
//! outside the site; a rebuild rewrites only what changed.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use common::start;
use matterbak::catalog::{Access, Catalog};
use matterbak::export::html::{self, DeletedPosts, SiteOptions, safe_id};
use matterbak::mock::NewFile;

const HOSTILE_FILE: &str = "\"><img src=x onerror=alert(1)>";

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files(&path, out);
        } else {
            out.push(path);
        }
    }
}

fn html_pages(site: &Path) -> Vec<(String, String)> {
    let mut all = Vec::new();
    files(site, &mut all);
    let mut pages: Vec<(String, String)> = all
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "html"))
        .map(|p| {
            let rel = p.strip_prefix(site).unwrap().to_string_lossy().into_owned();
            (rel, std::fs::read_to_string(&p).unwrap())
        })
        .collect();
    pages.sort();
    pages
}

/// Values of `attr="…"` in a page (our templates always quote with `"`).
fn attr_values<'a>(html: &'a str, attr: &str) -> Vec<&'a str> {
    let needle = format!(" {attr}=\"");
    html.match_indices(&needle)
        .map(|(i, _)| {
            let rest = &html[i + needle.len()..];
            &rest[..rest.find('"').unwrap()]
        })
        .collect()
}

fn unescape(s: &str) -> String {
    s.replace("&amp;", "&")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 3 <= bytes.len()
            && let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap()
}

/// Post ids with content in the archive, by channel; and which are in a thread.
fn archived_posts(archive: &Path, deleted: DeletedPosts) -> (BTreeSet<String>, BTreeSet<String>) {
    let catalog = Catalog::open(archive, Access::ReadOnly).unwrap();
    let mut all = BTreeSet::new();
    let mut threaded = BTreeSet::new();
    let mut roots_with_replies = BTreeSet::new();
    let mut posts = Vec::new();
    for c in catalog.site_channels().unwrap() {
        posts.extend(catalog.site_posts(&c.id).unwrap());
    }
    posts.retain(|p| deleted == DeletedPosts::Mark || p.delete_at == 0);
    let ids: BTreeSet<String> = posts.iter().map(|p| p.id.clone()).collect();
    for p in &posts {
        all.insert(p.id.clone());
        if !p.root_id.is_empty() && ids.contains(&p.root_id) {
            threaded.insert(p.id.clone());
            roots_with_replies.insert(p.root_id.clone());
        }
    }
    threaded.extend(roots_with_replies);
    (all, threaded)
}

fn anchors(pages: &[(String, String)], pick: impl Fn(&str) -> bool) -> BTreeMap<String, usize> {
    let mut count = BTreeMap::new();
    for (rel, html) in pages.iter().filter(|(rel, _)| pick(rel)) {
        for id in attr_values(html, "id")
            .into_iter()
            .filter_map(|v| v.strip_prefix("p-"))
        {
            *count.entry(id.to_owned()).or_insert(0) += 1;
        }
        let _ = rel;
    }
    count
}

fn is_channel_page(rel: &str) -> bool {
    let name = rel.rsplit('/').next().unwrap();
    rel.starts_with("c/") && name != "index.html" && !name.starts_with("t-")
}

fn is_thread_page(rel: &str) -> bool {
    rel.starts_with("c/") && rel.rsplit('/').next().unwrap().starts_with("t-")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_post_once_links_resolve_nothing_remote_hostile_content_inert() {
    let env = start().await;
    let hostile_post = env.server.with_workspace(|w| {
        let town = w.channel_id("eng", "town-square");
        w.set_user_raw_field("dave", "username", "../../x".into());
        w.set_user_field("erin", "first_name", "<img src=x onerror=alert(2)>".into());
        w.create_post(&town, "alice", "<script>alert(1)</script> and [click](javascript:alert(1)) and ![r](https://evil.example/t.png)", None);
        w.create_post_with_files(
            &town,
            "bob",
            "see attached",
            None,
            vec![
                NewFile {
                    name: HOSTILE_FILE.into(),
                    bytes: b"boom".to_vec(),
                    mime_type: "text/html".into(),
                },
                NewFile {
                    name: format!("{}.txt", "long".repeat(2_500)),
                    bytes: b"a 10 kB name".to_vec(),
                    mime_type: "text/plain".into(),
                },
                NewFile {
                    name: "../..".into(),
                    bytes: b"dots".to_vec(),
                    mime_type: "text/plain".into(),
                },
            ],
        )
    });
    env.sync().await;
    let site = env.dir.path().join("site");
    let report = html::build_site(&env.archive, &site, &SiteOptions::default()).unwrap();
    let pages = html_pages(&site);
    let (all, threaded) = archived_posts(&env.archive, DeletedPosts::Mark);
    assert!(all.len() > 400, "the sample has hundreds of posts");
    assert_eq!(report.posts as usize, all.len());

    // Every post exactly once in the channel pages; every thread post once in thread pages.
    let in_channels = anchors(&pages, is_channel_page);
    let expected: BTreeMap<String, usize> = all.iter().map(|id| (safe_id(id), 1)).collect();
    assert_eq!(in_channels, expected);
    let in_threads = anchors(&pages, is_thread_page);
    let expected: BTreeMap<String, usize> = threaded.iter().map(|id| (safe_id(id), 1)).collect();
    assert!(!expected.is_empty());
    assert_eq!(in_threads, expected);

    // Every relative link resolves (file and, for post anchors, the anchor); no `src` is
    // remote; no page is bigger than 1.5 MB.
    let by_rel: BTreeMap<&str, &str> = pages
        .iter()
        .map(|(r, h)| (r.as_str(), h.as_str()))
        .collect();
    let mut checked = 0;
    for (rel, html) in &pages {
        assert!(html.len() <= 1_500_000, "{rel} is {} bytes", html.len());
        let dir = Path::new(rel).parent().unwrap();
        for src in attr_values(html, "src") {
            assert!(
                !src.starts_with("http") && !src.starts_with("//"),
                "{rel}: src {src}"
            );
        }
        for link in attr_values(html, "href")
            .into_iter()
            .chain(attr_values(html, "src"))
        {
            let link = unescape(link);
            if link.starts_with("http://")
                || link.starts_with("https://")
                || link.starts_with("mailto:")
            {
                continue;
            }
            assert!(
                !link.starts_with('/') && !link.contains(":/"),
                "{rel}: absolute link {link}"
            );
            let (path, fragment) = link.split_once('#').unwrap_or((&link, ""));
            let path = path.split('?').next().unwrap();
            let target = if path.is_empty() {
                PathBuf::from(rel)
            } else {
                normalize(&dir.join(percent_decode(path)))
            };
            assert!(
                site.join(&target).is_file(),
                "{rel}: {link} does not resolve"
            );
            if let Some(id) = fragment.strip_prefix("p-") {
                let page = by_rel[target.to_str().unwrap()];
                assert!(
                    page.contains(&format!("id=\"p-{id}\"")),
                    "{rel}: anchor {link} missing"
                );
            }
            checked += 1;
        }
    }
    assert!(checked > 1000, "only {checked} links checked");

    // Hostile content: no script but ours, no event handler, no javascript: URL in any tag.
    for (rel, html) in &pages {
        for tag in html
            .split('<')
            .skip(1)
            .map(|t| t.split('>').next().unwrap())
        {
            let lower = tag.to_lowercase();
            let name = lower.split([' ', '/']).next().unwrap();
            if name == "script" {
                assert!(lower.contains("assets/app.js"), "{rel}: <{tag}>");
            }
            assert!(!lower.contains(" on") || name == "meta", "{rel}: <{tag}>");
            assert!(!lower.contains("javascript:"), "{rel}: <{tag}>");
            assert!(
                !["iframe", "svg", "object", "embed"].contains(&name),
                "{rel}: <{tag}>"
            );
        }
    }
    let town_pages: String = pages
        .iter()
        .filter(|(rel, html)| {
            is_channel_page(rel) && html.contains(&format!("p-{}", safe_id(&hostile_post)))
        })
        .map(|(_, h)| h.clone())
        .collect();
    assert!(town_pages.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    let card = &town_pages[town_pages.find("see attached").unwrap()..];
    let card = &card[..card.find("</article>").unwrap()];
    assert!(
        card.contains("img src=x onerror=alert(1)") && !card.contains("<img src=x"),
        "the hostile file name is shown as text: {card}"
    );
    assert!(town_pages.contains("class=\"remote-image\" href=\"https://evil.example/t.png\""));
    // The user named `../../x` got a page by id, and nothing was written beside the site.
    assert!(pages.iter().any(|(_, h)| h.contains("@../../x")));
    let mut beside: Vec<String> = std::fs::read_dir(env.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    beside.sort();
    assert_eq!(beside, ["archive", "site"]);
    let mut everything = Vec::new();
    files(&site, &mut everything);
    assert!(everything.iter().all(|p| p.starts_with(&site)));
    // Attachments are hard links into the blob store (same filesystem here).
    assert!(
        report.files_linked > 0 && report.files_copied == 0,
        "{report:?}"
    );
}

fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            std::path::Component::ParentDir => {
                assert!(out.pop(), "{} leaves the site", path.display());
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebuild_rewrites_only_changed_pages_and_hide_leaves_deleted_posts_out() {
    let env = start().await;
    env.sync().await;
    let site = env.dir.path().join("site");
    let first = html::build_site(&env.archive, &site, &SiteOptions::default()).unwrap();
    assert!(
        first.pages_written > 20 && first.pages_kept == 0,
        "{first:?}"
    );

    let again = html::build_site(&env.archive, &site, &SiteOptions::default()).unwrap();
    assert_eq!(
        (again.pages_written, again.search_written),
        (0, 0),
        "{again:?}"
    );
    assert_eq!(again.pages_kept, first.pages_written);
    assert_eq!(
        (again.files_linked, again.files_copied),
        (0, 0),
        "{again:?}"
    );

    let (new_post, doomed) = env.server.with_workspace(|w| {
        let off = w.channel_id("eng", "off-topic");
        (
            w.create_post(&off, "carol", "a brand new post about zeppelins", None),
            w.create_post(&off, "bob", "this one goes away", None),
        )
    });
    env.sync().await;
    env.server.with_workspace(|w| w.delete_post(&doomed));
    env.sync().await;
    let third = html::build_site(&env.archive, &site, &SiteOptions::default()).unwrap();
    // The month page, the channel's index, the site index and the posters' user pages.
    assert!(
        (1..=6).contains(&third.pages_written),
        "only the pages the new post touches: {third:?}"
    );
    assert_eq!(third.pages_written + third.pages_kept, first.pages_written);
    let anchor = format!("id=\"p-{}\"", safe_id(&new_post));
    assert_eq!(
        html_pages(&site)
            .iter()
            .filter(|(_, h)| h.contains(&anchor))
            .count(),
        1
    );
    assert!(
        third.search_written > 0 && third.search_kept > 0,
        "{third:?}"
    );

    // --deleted hide: deleted posts are on no page; mark shows them marked.
    let hidden = env.dir.path().join("hidden");
    let options = SiteOptions {
        deleted: DeletedPosts::Hide,
        ..SiteOptions::default()
    };
    html::build_site(&env.archive, &hidden, &options).unwrap();
    let (kept, _) = archived_posts(&env.archive, DeletedPosts::Hide);
    let (all, _) = archived_posts(&env.archive, DeletedPosts::Mark);
    assert!(kept.len() < all.len(), "the sample has deleted posts");
    let shown = anchors(&html_pages(&hidden), is_channel_page);
    assert_eq!(shown.len(), kept.len());
    let marked = html_pages(&site);
    assert_eq!(all.difference(&kept).collect::<Vec<_>>(), [&doomed]);
    let deleted_id = &doomed;
    let page = marked
        .iter()
        .find(|(rel, h)| {
            is_channel_page(rel) && h.contains(&format!("id=\"p-{}\"", safe_id(deleted_id)))
        })
        .unwrap();
    assert!(page.1.contains("message deleted"));
}

/// `matterbak export --archive ARCHIVE --format html ARGS…`
fn export_html(archive: &Path, args: &[&std::ffi::OsStr]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_matterbak"))
        .arg("export")
        .arg("--archive")
        .arg(archive)
        .args(["--format", "html"])
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_builds_the_site_and_refuses_bad_input() {
    let env = start().await;
    env.sync().await;
    let site = env.dir.path().join("site");
    let (code, out, err) = export_html(
        &env.archive,
        &[
            "-o".as_ref(),
            site.as_os_str(),
            "--tz".as_ref(),
            "Europe/Berlin".as_ref(),
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), site.join("index.html").display().to_string());
    assert!(err.contains("pages:") && err.contains("written"), "{err}");
    let index = std::fs::read_to_string(site.join("index.html")).unwrap();
    assert!(index.contains("Times are in Europe/Berlin"));

    let (code, _, err) = export_html(&env.archive, &[]);
    assert_eq!(code, 2);
    assert!(err.contains("needs -o DIR"), "{err}");
    let other = env.dir.path().join("other");
    let (code, _, err) = export_html(
        &env.archive,
        &[
            "-o".as_ref(),
            other.as_os_str(),
            "--tz".as_ref(),
            "Mars/Olympus".as_ref(),
        ],
    );
    assert_eq!(code, 2);
    assert!(err.contains("unknown time zone \"Mars/Olympus\""), "{err}");
    assert!(!other.exists(), "nothing written on bad input");
    // A directory holding something else is refused.
    let foreign = env.dir.path().join("foreign");
    std::fs::create_dir_all(&foreign).unwrap();
    std::fs::write(foreign.join("notes.txt"), "mine").unwrap();
    let (code, _, err) = export_html(&env.archive, &["-o".as_ref(), foreign.as_os_str()]);
    assert_eq!(code, 2);
    assert!(err.contains("refusing to write into"), "{err}");
    assert_eq!(std::fs::read_dir(&foreign).unwrap().count(), 1);
}

#[test]
fn demo_builds_the_site_and_prints_its_index() {
    let dir = tempfile::tempdir().unwrap();
    let demo = dir.path().join("demo");
    let out = Command::new(env!("CARGO_BIN_EXE_matterbak"))
        .arg("demo")
        .arg(&demo)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let index = demo.join("site").join("index.html");
    assert!(
        stdout.contains(&format!("website (open in a browser): {}", index.display())),
        "{stdout}"
    );
    assert!(
        std::fs::read_to_string(&index)
            .unwrap()
            .contains("Town Square")
    );
}
