//! `export --format html` without a browser: every archived post appears exactly once as an
//! anchor in the channel pages (and once in its thread page), every relative link resolves,
//! nothing is loaded from the network, hostile content stays inert and nothing is written
//! outside the site; a rebuild rewrites only what changed.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use common::start;
use matterbak::catalog::{Access, Catalog};
use matterbak::export::html::{self, DeletedPosts, SiteOptions};
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

/// Post ids with content in the archive; and the threads among them (root id → reply ids,
/// oldest first).
fn archived_posts(
    archive: &Path,
    deleted: DeletedPosts,
) -> (BTreeSet<String>, BTreeMap<String, Vec<String>>) {
    let catalog = Catalog::open(&archive.join("catalog.sqlite"), Access::ReadOnly).unwrap();
    let mut posts = Vec::new();
    for c in catalog.load_channels().unwrap() {
        let content = catalog.channel_content(&c.id).unwrap();
        posts.extend(content.posts.into_iter().filter(|p| p.seen_live));
    }
    posts.retain(|p| deleted == DeletedPosts::Mark || p.delete_at == 0);
    posts.sort_by(|a, b| (a.create_at, &a.id).cmp(&(b.create_at, &b.id)));
    let ids: BTreeSet<String> = posts.iter().map(|p| p.id.to_string()).collect();
    let mut threads: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for p in &posts {
        if !p.root_id.is_empty() && ids.contains(p.root_id.as_str()) {
            threads
                .entry(p.root_id.to_string())
                .or_default()
                .push(p.id.to_string());
        }
    }
    (ids, threads)
}

/// The README's rule: a thread of more than 8 replies shows its first 2 and latest 3
/// replies under its root, and all its posts on its own pages; a shorter one is shown whole
/// under its root and has no page of its own. Returns (posts shown once in the channel
/// pages, posts shown once in thread pages).
fn expected_places(
    all: &BTreeSet<String>,
    threads: &BTreeMap<String, Vec<String>>,
) -> (BTreeMap<String, usize>, BTreeMap<String, usize>) {
    let mut in_channels: BTreeMap<String, usize> = all.iter().map(|id| (id.clone(), 1)).collect();
    let mut in_threads = BTreeMap::new();
    for (root, replies) in threads {
        if replies.len() <= 8 {
            continue;
        }
        in_threads.insert(root.clone(), 1);
        for (k, id) in replies.iter().enumerate() {
            in_threads.insert(id.clone(), 1);
            if k >= 2 && k < replies.len() - 3 {
                in_channels.remove(id);
            }
        }
    }
    (in_channels, in_threads)
}

/// The anchor the README promises for a post, `p-<post id>`, written out here rather than
/// asked of the code under test: the sample's ids are Mattermost's 26 lower-case letters and
/// digits, which need no escaping.
fn anchor_id(post_id: &str) -> String {
    assert!(
        post_id.len() == 26
            && post_id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()),
        "{post_id:?} is not a Mattermost id"
    );
    format!("p-{post_id}")
}

/// Every post anchor (`id="p-…"`) of the pages `pick` selects, as the post id it names, with
/// how often it appears.
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

/// A channel's pages of posts: its newest page `index.html` and the older numbered ones (its
/// `info.html` lists members and pinned posts).
fn is_channel_page(rel: &str) -> bool {
    let name = rel.rsplit('/').next().unwrap();
    rel.starts_with("c/") && name != "info.html" && !name.starts_with("t-")
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
    let report = html::build_site(&env.read(), &site, &SiteOptions::default()).unwrap();
    let pages = html_pages(&site);
    let (all, threads) = archived_posts(&env.archive, DeletedPosts::Mark);
    assert!(all.len() > 400, "the sample has hundreds of posts");
    assert_eq!(report.posts as usize, all.len());

    // Every post once in the channel pages but the middle of long threads; every post of a
    // long thread once in its thread pages.
    assert!(all.iter().all(|id| anchor_id(id).len() == 28));
    let (in_channels, in_threads) = expected_places(&all, &threads);
    assert_eq!(anchors(&pages, is_channel_page), in_channels);
    assert_eq!(anchors(&pages, is_thread_page), in_threads);

    let checked = check_links(&site, &pages);
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
            is_channel_page(rel) && html.contains(&format!("id=\"{}\"", anchor_id(&hostile_post)))
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

/// Every relative link of every page resolves (file and, for post anchors, the anchor); no
/// `src` is remote; no page is bigger than 1.5 MB. Returns how many links were checked.
fn check_links(site: &Path, pages: &[(String, String)]) -> usize {
    let by_rel: BTreeMap<&str, &str> = pages
        .iter()
        .map(|(r, h)| (r.as_str(), h.as_str()))
        .collect();
    let mut checked = 0;
    for (rel, html) in pages {
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
            // Every place a link names is on its page: posts, day dividers, the newest
            // messages, the menu (a search address `index.html#q=…` names no place).
            if !fragment.is_empty() && !fragment.starts_with("q=") {
                let page = by_rel[target.to_str().unwrap()];
                assert!(
                    page.contains(&format!("id=\"{fragment}\"")),
                    "{rel}: anchor {link} missing"
                );
            }
            checked += 1;
        }
    }
    checked
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
    let first = html::build_site(&env.read(), &site, &SiteOptions::default()).unwrap();
    assert!(
        first.pages_written > 20 && first.pages_kept == 0,
        "{first:?}"
    );

    let again = html::build_site(&env.read(), &site, &SiteOptions::default()).unwrap();
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
    let third = html::build_site(&env.read(), &site, &SiteOptions::default()).unwrap();
    // The channel's newest page, its info page (pages by month, with counts), the site
    // index and the posters' user pages.
    assert!(
        (1..=6).contains(&third.pages_written),
        "only the pages the new post touches: {third:?}"
    );
    assert_eq!(third.pages_written + third.pages_kept, first.pages_written);
    let anchor = format!("id=\"{}\"", anchor_id(&new_post));
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
    html::build_site(&env.read(), &hidden, &options).unwrap();
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
            is_channel_page(rel) && h.contains(&format!("id=\"{}\"", anchor_id(deleted_id)))
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

    // A channel page that cannot be written (a directory stands where the page goes; pages
    // are written by the render threads) fails the build naming it, and the manifest of
    // the last good build stays as it was.
    let manifest = std::fs::read(site.join(".matterbak-site.json")).unwrap();
    let channel = std::fs::read_dir(site.join("c"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|d| d.join("index.html").is_file())
        .expect("a channel page was written");
    let blocked = channel.join("index.html");
    std::fs::remove_file(&blocked).unwrap();
    std::fs::create_dir(&blocked).unwrap();
    std::fs::write(blocked.join("keep"), "x").unwrap();
    let (code, _, err) = export_html(&env.archive, &["-o".as_ref(), site.as_os_str()]);
    assert_ne!(code, 0, "{err}");
    assert!(
        err.contains(&format!("cannot write {}", blocked.display())),
        "{err}"
    );
    assert_eq!(
        std::fs::read(site.join(".matterbak-site.json")).unwrap(),
        manifest
    );
    std::fs::remove_dir_all(&blocked).unwrap();
    let (code, _, err) = export_html(&env.archive, &["-o".as_ref(), site.as_os_str()]);
    assert_eq!(code, 0, "{err}");
    assert!(blocked.is_file());

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

/// The site's HTML pages, path → content.
fn snapshot(site: &Path) -> BTreeMap<String, String> {
    html_pages(site).into_iter().collect()
}

/// Rebuilds and returns the report and the pages whose content changed.
fn rebuild(archive: &Path, site: &Path) -> (html::SiteReport, BTreeSet<String>) {
    let before = snapshot(site);
    let report = html::build_site(
        &common::read_archive(archive),
        site,
        &SiteOptions::default(),
    )
    .unwrap();
    let changed = snapshot(site)
        .into_iter()
        .filter(|(rel, html)| before.get(rel) != Some(html))
        .map(|(rel, _)| rel)
        .collect();
    (report, changed)
}

/// Pages holding a post's anchor.
fn pages_with(site: &Path, post_id: &str) -> BTreeSet<String> {
    let anchor = format!("id=\"{}\"", anchor_id(post_id));
    html_pages(site)
        .into_iter()
        .filter(|(_, html)| html.contains(&anchor))
        .map(|(rel, _)| rel)
        .collect()
}

fn one(conn: &rusqlite::Connection, sql: &str) -> String {
    conn.query_row(sql, [], |r| r.get(0)).unwrap()
}

/// A no-op rebuild keeps every page without reading posts; each change the catalog can take
/// without a post's `update_at` moving (sync and import write such rows) still rewrites
/// exactly the pages that show it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebuild_notices_every_kind_of_change_and_keeps_the_rest() {
    let env = start().await;
    env.sync().await;
    let site = env.dir.path().join("site");
    let first = html::build_site(&env.read(), &site, &SiteOptions::default()).unwrap();
    let conn = rusqlite::Connection::open(env.archive.join("catalog.sqlite")).unwrap();

    let (noop, changed) = rebuild(&env.archive, &site);
    assert_eq!(
        (noop.pages_written, noop.search_written),
        (0, 0),
        "{noop:?}"
    );
    assert_eq!(noop.pages_kept, first.pages_written);
    assert_eq!(noop.posts, first.posts);
    assert!(changed.is_empty());

    // An edit that keeps every time of the post: its pages only, and the search index.
    let edited = one(
        &conn,
        "SELECT id FROM posts WHERE seen_live = 1 AND delete_at = 0 AND type = '' ORDER BY create_at LIMIT 1",
    );
    conn.execute(
        "UPDATE posts SET message = 'quietly rewritten zeppelin', json = json_set(json, '$.message', 'quietly rewritten zeppelin') WHERE id = ?1",
        [&edited],
    )
    .unwrap();
    let (report, changed) = rebuild(&env.archive, &site);
    assert_eq!(changed, pages_with(&site, &edited), "{report:?}");
    assert_eq!(report.pages_written as usize, changed.len(), "{report:?}");
    assert!(report.search_written > 0, "{report:?}");
    for rel in &changed {
        assert!(
            snapshot(&site)[rel].contains("quietly rewritten zeppelin"),
            "{rel}"
        );
    }

    // A reaction removed, with nothing else touched.
    let (post, emoji) = conn
        .query_row(
            "SELECT r.post_id, r.emoji_name FROM reactions r JOIN posts p ON p.id = r.post_id
             WHERE r.removed_at IS NULL AND p.seen_live = 1 LIMIT 1",
            [],
            |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)),
        )
        .expect("the sample has reactions");
    conn.execute(
        "UPDATE reactions SET removed_at = 1 WHERE post_id = ?1 AND emoji_name = ?2",
        [&post, &emoji],
    )
    .unwrap();
    let (report, changed) = rebuild(&env.archive, &site);
    assert_eq!(changed, pages_with(&site, &post), "{report:?}");
    assert_eq!(report.pages_written as usize, changed.len(), "{report:?}");

    // A file row added to an old post.
    let old = one(
        &conn,
        "SELECT id FROM posts WHERE seen_live = 1 AND delete_at = 0 AND id <> (SELECT post_id FROM files LIMIT 1)
         ORDER BY create_at LIMIT 1 OFFSET 1",
    );
    conn.execute(
        "INSERT INTO files (id, post_id, channel_id, user_id, name, extension, size, mime_type, create_at, json)
         SELECT 'latefile00000000000000000a', id, channel_id, user_id, 'late-report.pdf', 'pdf', 1234, 'application/pdf', create_at, '{}'
         FROM posts WHERE id = ?1",
        [&old],
    )
    .unwrap();
    let (report, changed) = rebuild(&env.archive, &site);
    assert_eq!(changed, pages_with(&site, &old), "{report:?}");
    for rel in &changed {
        assert!(snapshot(&site)[rel].contains("late-report.pdf"), "{rel}");
    }

    // A reply to an old root, dated a month later: the root's page shows it (a short thread
    // has no page of its own; plus the site index's counts and the author's page); no other
    // channel page.
    let root = one(
        &conn,
        "SELECT id FROM posts WHERE seen_live = 1 AND delete_at = 0 AND root_id = '' AND type = '' ORDER BY create_at LIMIT 1",
    );
    conn.execute(
        "INSERT INTO posts (id, channel_id, root_id, user_id, create_at, update_at, edit_at, delete_at, type, message, seen_live, json)
         SELECT 'latereply00000000000000000', channel_id, id, user_id, create_at + 40 * 86400000, create_at + 40 * 86400000, 0, 0, '',
                'a late reply about airships', 1, '{\"id\":\"latereply00000000000000000\",\"message\":\"a late reply about airships\"}'
         FROM posts WHERE id = ?1",
        [&root],
    )
    .unwrap();
    let root_pages = pages_with(&site, &root);
    let (report, changed) = rebuild(&env.archive, &site);
    let reply_pages = pages_with(&site, "latereply00000000000000000");
    assert_eq!(reply_pages.len(), 1, "{reply_pages:?}");
    assert!(reply_pages.iter().all(|rel| changed.contains(rel)));
    let root_page = root_pages.iter().find(|rel| is_channel_page(rel)).unwrap();
    assert!(reply_pages.contains(root_page));
    let channel_dir = root_page.rsplit_once('/').unwrap().0;
    for rel in &changed {
        assert!(
            rel.starts_with(channel_dir) || rel == "index.html" || rel.starts_with("u/"),
            "{rel} changed: {report:?}"
        );
    }

    // A post brought in by an import (older than everything, times unchanged elsewhere).
    let channel = one(
        &conn,
        "SELECT channel_id FROM posts ORDER BY create_at DESC LIMIT 1",
    );
    conn.execute(
        "INSERT INTO posts (id, channel_id, root_id, user_id, create_at, update_at, edit_at, delete_at, type, message, seen_live, json, imported_from)
         SELECT 'importedpost00000000000000', ?1, '', user_id, 1000, 1000, 0, 0, '', 'recovered from an old backup', 1,
                '{\"id\":\"importedpost00000000000000\",\"message\":\"recovered from an old backup\"}', 'old.zip:x.json'
         FROM posts WHERE channel_id = ?1 LIMIT 1",
        [&channel],
    )
    .unwrap();
    let (report, _) = rebuild(&env.archive, &site);
    let imported = pages_with(&site, "importedpost00000000000000");
    assert_eq!(imported.len(), 1, "{report:?}");
    assert!(snapshot(&site)[imported.first().unwrap()].contains("recovered from an old backup"));

    // A user renamed: every page naming them shows the new name, none the old one.
    let (user, old_name) = conn
        .query_row(
            "SELECT u.id, json_extract(u.json, '$.first_name') || ' ' || json_extract(u.json, '$.last_name')
             FROM users u JOIN posts p ON p.user_id = u.id
             WHERE json_extract(u.json, '$.first_name') <> '' LIMIT 1",
            [],
            |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)),
        )
        .unwrap();
    conn.execute(
        "UPDATE users SET json = json_set(json, '$.first_name', 'Renamedperson') WHERE id = ?1",
        [&user],
    )
    .unwrap();
    let (report, changed) = rebuild(&env.archive, &site);
    assert!(!changed.is_empty(), "{report:?}");
    let pages = snapshot(&site);
    assert!(
        pages.values().all(|html| !html.contains(&old_name)),
        "{old_name}"
    );
    assert!(
        pages
            .values()
            .filter(|html| html.contains("Renamedperson"))
            .count()
            >= 2
    );

    let (noop, changed) = rebuild(&env.archive, &site);
    assert_eq!(
        (noop.pages_written, noop.search_written),
        (0, 0),
        "{noop:?}"
    );
    assert!(changed.is_empty());
}

/// A permalink's target moves to another page when a change in its channel splits the page
/// it was on; the page holding the permalink, in another channel, follows it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebuild_follows_a_permalink_whose_target_moved_page() {
    let env = start().await;
    env.sync().await;
    let conn = rusqlite::Connection::open(env.archive.join("catalog.sqlite")).unwrap();
    // A root with a later root in its channel: the target.
    let (target, channel) = conn
        .query_row(
            "SELECT b.id, b.channel_id FROM posts b
             WHERE b.root_id = '' AND b.seen_live = 1 AND EXISTS (
               SELECT 1 FROM posts c WHERE c.channel_id = b.channel_id AND c.root_id = ''
                 AND c.seen_live = 1 AND c.create_at > b.create_at)
             LIMIT 1",
            [],
            |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)),
        )
        .expect("the sample has two roots in a channel");
    let other: String = conn
        .query_row(
            "SELECT channel_id FROM posts WHERE channel_id <> ?1 AND seen_live = 1 LIMIT 1",
            [&channel],
            |r| r.get(0),
        )
        .unwrap();
    conn.execute(
        "INSERT INTO posts (id, channel_id, root_id, user_id, create_at, update_at, edit_at, delete_at, type, message, seen_live, json)
         SELECT 'linkingpost000000000000000', ?1, '', user_id, create_at + 1, create_at + 1, 0, 0, '', ?2, 1, '{}'
         FROM posts WHERE channel_id = ?1 AND seen_live = 1 LIMIT 1",
        [&other, &format!("see https://chat.example.com/eng/pl/{target} for details")],
    )
    .unwrap();
    let site = env.dir.path().join("site");
    let options = SiteOptions {
        tz: Some("UTC".into()),
        ..SiteOptions::default()
    };
    html::build_site(&env.read(), &site, &options).unwrap();
    let linking = pages_with(&site, "linkingpost000000000000000");
    let link_page = linking
        .iter()
        .find(|rel| is_channel_page(rel))
        .unwrap()
        .clone();
    let target_page = pages_with(&site, &target)
        .into_iter()
        .find(|rel| is_channel_page(rel))
        .unwrap();
    let href = |page: &str| format!("../../{page}#{}", anchor_id(&target));
    assert!(snapshot(&site)[&link_page].contains(&href(&target_page)));

    // The target grows past a page's budget: it closes its page, the roots after it start
    // the channel's newest page, and the target moves from that page to a numbered one.
    conn.execute(
        "UPDATE posts SET message = ?2, update_at = update_at + 1 WHERE id = ?1",
        [&target, &"long ".repeat(100_000)],
    )
    .unwrap();
    let report = html::build_site(&env.read(), &site, &options).unwrap();
    let moved = pages_with(&site, &target)
        .into_iter()
        .find(|rel| is_channel_page(rel))
        .unwrap();
    assert_ne!(moved, target_page, "{report:?}");
    let html = &snapshot(&site)[&link_page];
    assert!(html.contains(&href(&moved)), "{report:?}");
}

/// A thread of 3,000 replies of about 1 kB each (3 MB of messages): no page is over 1.5 MB;
/// its replies are on the pages `t-<root>.html`, `t-<root>-2.html`, … in order, each once;
/// the channel page shows the root, the first 2 and the latest 3 replies and "2995 more
/// replies" linking to the page that holds the first one left out; permalinks to replies
/// anywhere in the thread land on the page holding them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thread_of_3000_replies_is_paged_and_every_anchor_resolves() {
    let env = start().await;
    let filler = "the quick brown fox jumps over the lazy dog ".repeat(23);
    let (root, replies, linking) = env.server.with_workspace(|w| {
        let town = w.channel_id("eng", "town-square");
        let root = w.create_post(&town, "alice", "the long thread starts here", None);
        let replies: Vec<String> = (0..3000)
            .map(|k| {
                let user = if k % 2 == 0 { "bob" } else { "alice" };
                w.create_post(&town, user, &format!("reply {k}: {filler}"), Some(&root))
            })
            .collect();
        let linking = w.create_post(
            &town,
            "bob",
            &format!(
                "see https://chat.example.com/eng/pl/{} and https://chat.example.com/eng/pl/{} and https://chat.example.com/eng/pl/{}",
                replies[0], replies[1500], replies[2999]
            ),
            None,
        );
        (root, replies, linking)
    });
    env.sync().await;
    let site = env.dir.path().join("site");
    html::build_site(&env.read(), &site, &SiteOptions::default()).unwrap();
    let pages = html_pages(&site);
    check_links(&site, &pages);

    // Every page has the sidebar, linking every channel's page (check_links resolved them);
    // the direct messages are named by the other person's display name.
    let channel_pages = pages
        .iter()
        .filter(|(rel, _)| rel.starts_with("c/") && rel.ends_with("/index.html"))
        .count();
    assert!(channel_pages > 5, "{channel_pages}");
    for (rel, html) in &pages {
        let nav = html
            .split("<nav class=\"sidebar\"")
            .nth(1)
            .unwrap_or_else(|| panic!("{rel} has no sidebar"));
        let nav = &nav[..nav.find("</nav>").unwrap()];
        assert_eq!(
            nav.matches("/index.html\">").count(),
            channel_pages,
            "{rel}"
        );
    }
    let nav = pages[0].1.split("<nav class=\"sidebar\"").nth(1).unwrap();
    assert!(nav.contains(">Dave Dawson</a>"), "{nav}");

    // The thread's pages, in order, named t-<root>.html, t-<root>-2.html, …
    let dir = pages
        .iter()
        .find(|(rel, html)| {
            is_channel_page(rel) && html.contains(&format!("id=\"{}\"", anchor_id(&root)))
        })
        .map(|(rel, _)| rel.rsplit_once('/').unwrap().0.to_owned())
        .expect("the root is on a channel page");
    let mut thread_pages = Vec::new();
    for part in 1.. {
        let name = if part == 1 {
            format!("{dir}/t-{root}.html")
        } else {
            format!("{dir}/t-{root}-{part}.html")
        };
        match pages.iter().find(|(rel, _)| *rel == name) {
            Some((_, html)) => thread_pages.push(html),
            None => break,
        }
    }
    // 3 MB of messages cannot fit on two pages of at most 1.5 MB.
    assert!(
        thread_pages.len() >= 3,
        "{} thread pages",
        thread_pages.len()
    );
    let on_thread_pages: usize = pages
        .iter()
        .filter(|(rel, _)| rel.starts_with(&format!("{dir}/t-{root}")))
        .count();
    assert_eq!(
        on_thread_pages,
        thread_pages.len(),
        "thread pages not numbered 1, 2, …"
    );
    // Every reply exactly once, in order; the root once, on the first page.
    let mut next = 0;
    for (k, html) in thread_pages.iter().enumerate() {
        let ids: Vec<&str> = attr_values(html, "id")
            .into_iter()
            .filter(|v| v.starts_with("p-"))
            .collect();
        let mut ids = ids.as_slice();
        if k == 0 {
            assert_eq!(ids[0], anchor_id(&root));
            ids = &ids[1..];
        }
        for id in ids {
            assert_eq!(*id, anchor_id(&replies[next]), "page {}", k + 1);
            next += 1;
        }
    }
    assert_eq!(next, 3000);

    // The channel page: root, replies 0, 1, 2997, 2998, 2999 and the link to reply 2.
    let channel_html = &pages
        .iter()
        .find(|(rel, html)| {
            is_channel_page(rel) && html.contains(&format!("id=\"{}\"", anchor_id(&root)))
        })
        .unwrap()
        .1;
    let shown: Vec<&str> = attr_values(channel_html, "id")
        .into_iter()
        .filter(|v| v.starts_with("p-"))
        .collect();
    let at = shown.iter().position(|id| *id == anchor_id(&root)).unwrap();
    let expected: Vec<String> = [0, 1, 2997, 2998, 2999]
        .iter()
        .map(|&k| anchor_id(&replies[k]))
        .collect();
    assert_eq!(&shown[at + 1..at + 6], expected.as_slice());
    assert!(
        channel_html.contains(&format!(
            "href=\"t-{root}.html#{}\">2995 more replies</a>",
            anchor_id(&replies[2])
        )),
        "no link to the replies left out"
    );

    // The permalinks point at the pages holding replies 0, 1500 and 2999 (check_links
    // verified each anchor is on the page its link names).
    let linking_html = &pages
        .iter()
        .find(|(rel, html)| {
            is_channel_page(rel) && html.contains(&format!("id=\"{}\"", anchor_id(&linking)))
        })
        .unwrap()
        .1;
    for (k, page) in [(0, 0), (1500, usize::MAX), (2999, thread_pages.len() - 1)] {
        let anchor = anchor_id(&replies[k]);
        let href = attr_values(linking_html, "href")
            .into_iter()
            .find(|h| h.starts_with("../../") && h.ends_with(&format!("#{anchor}")))
            .unwrap_or_else(|| panic!("no permalink to reply {k}"));
        assert!(href.contains(&format!("/t-{root}")), "{href}");
        if page != usize::MAX {
            assert!(thread_pages[page].contains(&format!("id=\"{anchor}\"")));
        }
    }
}

/// A permalink (`…/pl/<post id>`) becomes a link to the page holding its target from every
/// text the site renders: a message, an earlier version of an edited message, a bot's card
/// (`props.attachments`) and a channel's header. The build keeps the page of only the posts
/// some archived text names after a `/pl/` (not of every post), so each of these texts must
/// be among those it reads; a link to a post the archive lacks stays the server's URL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permalinks_resolve_from_messages_versions_cards_and_headers() {
    let env = start().await;
    let url = |id: &str| format!("https://chat.example.com/eng/pl/{id}");
    let (targets, off_topic, linking, edited, card) = env.server.with_workspace(|w| {
        let town = w.channel_id("eng", "town-square");
        let off_topic = w.channel_id("eng", "off-topic");
        let targets: Vec<String> = (0..4)
            .map(|k| w.create_post(&town, "alice", &format!("target number {k}"), None))
            .collect();
        let linking = w.create_post(
            &off_topic,
            "bob",
            &format!(
                "[the first]({}) and [a missing one]({})",
                url(&targets[0]),
                url("nosuchpost000000000000000a")
            ),
            None,
        );
        let edited = w.create_post(
            &off_topic,
            "bob",
            &format!("was {}", url(&targets[1])),
            None,
        );
        let card = w.create_post(&off_topic, "bob", "a bot's card", None);
        (targets, off_topic, linking, edited, card)
    });
    env.sync().await;
    env.server.with_workspace(|w| {
        w.edit_post(&edited, "now without the link");
        let mut props = serde_json::Map::new();
        props.insert(
            "attachments".into(),
            serde_json::json!([{ "text": format!("see {}", url(&targets[2])) }]),
        );
        w.set_post_kind(&card, "", props, false);
        w.update_channel(
            &off_topic,
            "header",
            &format!("start at {}", url(&targets[3])),
        );
    });
    env.sync().await;
    let conn = rusqlite::Connection::open(env.archive.join("catalog.sqlite")).unwrap();
    assert_eq!(
        one(
            &conn,
            &format!("SELECT message FROM post_versions WHERE post_id = '{edited}'")
        ),
        format!("was {}", url(&targets[1])),
        "the earlier version's text is archived"
    );
    let site = env.dir.path().join("site");
    html::build_site(&env.read(), &site, &SiteOptions::default()).unwrap();
    let pages = snapshot(&site);
    let href = |target: &str| {
        let page = pages_with(&site, target)
            .into_iter()
            .find(|rel| is_channel_page(rel))
            .expect("the target is on a channel page");
        format!("href=\"../../{page}#{}\"", anchor_id(target))
    };
    let page_of = |post: &str| {
        let rel = pages_with(&site, post)
            .into_iter()
            .find(|rel| is_channel_page(rel))
            .expect("the post is on a channel page");
        pages[&rel].clone()
    };
    let linking_page = page_of(&linking);
    assert!(linking_page.contains(&href(&targets[0])), "message");
    assert!(
        linking_page.contains(&format!("href=\"{}\"", url("nosuchpost000000000000000a"))),
        "a missing target stays the server's link"
    );
    assert!(
        page_of(&edited).contains(&href(&targets[1])),
        "earlier version"
    );
    assert!(page_of(&card).contains(&href(&targets[2])), "card");
    let dir = pages_with(&site, &card)
        .into_iter()
        .find(|rel| is_channel_page(rel))
        .unwrap()
        .rsplit_once('/')
        .unwrap()
        .0
        .to_owned();
    for page in ["index.html", "info.html"] {
        assert!(
            pages[&format!("{dir}/{page}")].contains(&href(&targets[3])),
            "header on {page}"
        );
    }
    check_links(&site, &html_pages(&site));
}
