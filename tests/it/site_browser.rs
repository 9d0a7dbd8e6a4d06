//! The website in a real browser: Debian's `chromium`, headless, opening the site from
//! `file://` as a user's double-click does (no flag that relaxes file access). Searches by
//! address (`index.html#q=…`) list the expected posts, a thread link opens the thread, every
//! page logs no console error or exception and loads nothing from outside the site, and with
//! JavaScript off the channel pages still show the messages. Console messages and requests
//! are read from the browser itself through the DevTools protocol, never from the page's own
//! report. `scripts/test-deps` installs chromium; set `MATTERBAK_CHROMIUM` to use another
//! binary.

use crate::common;

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

#[derive(Debug)]
struct Hit {
    channel: String,
    user: String,
    text: String,
    /// The words the hit's snippet marks.
    marked: Vec<String>,
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
                .replace("<mark>", "")
                .replace("</mark>", ""),
            marked: between(li, "class=\"hit-text\">", "</span>")
                .unwrap()
                .split("<mark>")
                .skip(1)
                .map(|m| m.split("</mark>").next().unwrap().to_owned())
                .collect(),
            href: between(li, "class=\"hit-link\" href=\"", "\"")
                .unwrap()
                .to_owned(),
            thread: between(li, "class=\"hit-thread\" href=\"", "\"").map(str::to_owned),
        })
        .collect()
}

/// Opens `index.html#q=…` in a freshly loaded page, waits until the search is done, checks
/// from the browser itself (DevTools protocol, not the page's own report) that it logged no
/// error and loaded nothing from outside the site, and returns the hits.
fn search(cdp: &mut Cdp, base: &str, q: &str) -> Vec<Hit> {
    cdp.search(&format!("{base}/index.html#q={q}"));
    let requests = cdp.check_clean(base);
    assert!(
        requests >= 4,
        "{q}: page, css, js and index files: {requests}"
    );
    hits(&cdp.html())
}

/// Builds the site of the synced archive in `site`, times in UTC.
fn build_utc(env: &common::Env, site: &Path) {
    let utc = SiteOptions {
        tz: Some("UTC".into()),
        ..SiteOptions::default()
    };
    html::build_site(&env.read(), site, &utc).unwrap();
}

/// The site's `file://` address and a browser started in the test's directory.
fn browser(env: &common::Env, site: &Path) -> (String, Cdp) {
    let base = format!("file://{}", site.display());
    (base, Cdp::start(&env.dir.path().join("profile")))
}

/// Syncs the mock's workspace, builds its site in the test's directory (times in UTC when
/// `utc`, else in the machine's zone) and starts a browser: (the site's address, browser).
async fn synced_site(env: &common::Env, utc: bool) -> (String, Cdp) {
    env.sync().await;
    let site = env.dir.path().join("site");
    if utc {
        build_utc(env, &site);
    } else {
        html::build_site(&env.read(), &site, &SiteOptions::default()).unwrap();
    }
    browser(env, &site)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_from_disk_finds_posts_and_opens_threads_without_network() {
    let env = start().await;
    let (base, mut cdp) = synced_site(&env, true).await;
    // A word.
    let found = search(&mut cdp, &base, "welcome");
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].text, "Welcome to Engineering!");
    assert_eq!(found[0].marked, ["Welcome"]);
    // Shown by the channel's and the author's display names.
    assert_eq!(
        (found[0].channel.as_str(), found[0].user.as_str()),
        ("Town Square", "Alice Archer")
    );
    // A short thread has no page of its own: its link opens the channel page, which holds
    // the post and its replies.
    assert_eq!(found[0].thread, None);
    let href = found[0].href.clone();
    cdp.open(&format!("{base}/{href}"));
    let page = cdp.html();
    let anchor = href.split_once('#').unwrap().1;
    assert!(page.contains(&format!("id=\"{anchor}\"")));
    assert!(page.contains("Thanks! Glad to be here."));
    assert!(page.contains("Same here."));
    cdp.check_clean(&base);

    // A phrase: only the post with the words in that order.
    let found = search(&mut cdp, &base, "%22glad%20to%20be%20here%22");
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].text, "Thanks! Glad to be here.");
    let found = search(&mut cdp, &base, "%22here%20glad%22");
    assert!(found.is_empty(), "{found:?}");

    // A prefix.
    let found = search(&mut cdp, &base, "welc*");
    assert!(
        found.iter().any(|h| h.text == "Welcome to Engineering!"),
        "{found:?}"
    );
    assert!(
        found.iter().all(|h| h.text.to_lowercase().contains("welc")),
        "{found:?}"
    );

    // from: and in: filters.
    let found = search(&mut cdp, &base, "from%3Abob");
    assert!(!found.is_empty());
    assert!(found.iter().all(|h| h.user == "Bob Builder"), "{found:?}");
    let found = search(&mut cdp, &base, "in%3Aoff-topic%20lunch");
    assert!(
        found.iter().any(|h| h.text == "Anyone up for lunch?"),
        "{found:?}"
    );
    assert!(found.iter().all(|h| h.channel == "Off-Topic"), "{found:?}");
    let found = search(&mut cdp, &base, "in%3Atown-square%20lunch");
    assert!(found.is_empty(), "{found:?}");

    // Dates (the site is in UTC; the welcome post is of 2023-11-15), pins and files.
    assert_eq!(
        search(&mut cdp, &base, "welcome%20on%3A2023-11-15").len(),
        1
    );
    assert_eq!(
        search(&mut cdp, &base, "welcome%20after%3A2023-11-14").len(),
        1
    );
    assert!(search(&mut cdp, &base, "welcome%20before%3A2023-11-15").is_empty());
    assert!(search(&mut cdp, &base, "welcome%20after%3A2023-11-15").is_empty());
    assert_eq!(search(&mut cdp, &base, "welcome%20is%3Apinned").len(), 1);
    let found = search(&mut cdp, &base, "standup%20has%3Afile");
    assert!(
        found.iter().any(|h| h.text.starts_with("Standup moved")),
        "{found:?}"
    );
    assert!(search(&mut cdp, &base, "welcome%20has%3Afile").is_empty());
}

/// A minimal DevTools-protocol client over a WebSocket on loopback: enough to open a page
/// with JavaScript disabled, read its DOM, and see every request, console error and
/// exception (what `--dump-dom` cannot show).
struct Cdp {
    child: std::process::Child,
    stream: std::net::TcpStream,
    session: String,
    next_id: u64,
    events: Vec<serde_json::Value>,
}

impl Cdp {
    fn start(profile: &Path) -> Cdp {
        use std::io::{BufRead, BufReader, Read, Write};
        let mut child = Command::new(chromium())
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("about:blank")
            .stderr(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let ws = loop {
            let line = lines
                .next()
                .expect("chromium prints its DevTools address")
                .unwrap();
            if let Some(at) = line.find("ws://") {
                break line[at..].trim().to_owned();
            }
        };
        // Keep draining stderr so chromium never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        let rest = ws.strip_prefix("ws://").unwrap();
        let (host, path) = rest.split_at(rest.find('/').unwrap());
        let mut stream = std::net::TcpStream::connect(host).unwrap();
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: bWF0dGVyYmFrLXRlc3RzLTE=\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        .unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            stream.read_exact(&mut byte).unwrap();
            head.push(byte[0]);
        }
        assert!(
            head.starts_with(b"HTTP/1.1 101"),
            "{}",
            String::from_utf8_lossy(&head)
        );
        let mut cdp = Cdp {
            child,
            stream,
            session: String::new(),
            next_id: 0,
            events: Vec::new(),
        };
        let target = cdp.call(
            "Target.createTarget",
            serde_json::json!({"url": "about:blank"}),
        );
        let attached = cdp.call(
            "Target.attachToTarget",
            serde_json::json!({"targetId": target["targetId"], "flatten": true}),
        );
        cdp.session = attached["sessionId"].as_str().unwrap().to_owned();
        for domain in ["Page", "Network", "Runtime", "Log"] {
            cdp.call(&format!("{domain}.enable"), serde_json::json!({}));
        }
        cdp
    }

    fn send(&mut self, text: &str) {
        use std::io::Write;
        let bytes = text.as_bytes();
        let mut frame = vec![0x81u8];
        match bytes.len() {
            n if n < 126 => frame.push(0x80 | n as u8),
            n if n < 65536 => {
                frame.push(0x80 | 126);
                frame.extend((n as u16).to_be_bytes());
            }
            n => {
                frame.push(0x80 | 127);
                frame.extend((n as u64).to_be_bytes());
            }
        }
        frame.extend([0u8; 4]); // mask key 0: the payload goes as is
        frame.extend(bytes);
        self.stream.write_all(&frame).unwrap();
    }

    fn receive(&mut self) -> serde_json::Value {
        use std::io::Read;
        let mut message = Vec::new();
        loop {
            let mut head = [0u8; 2];
            self.stream.read_exact(&mut head).unwrap();
            let mut len = u64::from(head[1] & 0x7f);
            if len == 126 {
                let mut b = [0u8; 2];
                self.stream.read_exact(&mut b).unwrap();
                len = u64::from(u16::from_be_bytes(b));
            } else if len == 127 {
                let mut b = [0u8; 8];
                self.stream.read_exact(&mut b).unwrap();
                len = u64::from_be_bytes(b);
            }
            let mut payload = vec![0u8; len as usize];
            self.stream.read_exact(&mut payload).unwrap();
            match head[0] & 0x0f {
                0x0..=0x2 => message.extend(payload),
                _ => continue, // ping/pong/close: nothing to read
            }
            if head[0] & 0x80 != 0 {
                return serde_json::from_slice(&message).unwrap();
            }
        }
    }

    /// Sends a command (in the page's session once attached) and waits for its answer;
    /// events that arrive meanwhile are kept.
    fn call(&mut self, method: &str, params: serde_json::Value) -> serde_json::Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut msg = serde_json::json!({"id": id, "method": method, "params": params});
        if !self.session.is_empty() {
            msg["sessionId"] = self.session.clone().into();
        }
        self.send(&msg.to_string());
        loop {
            let answer = self.receive();
            if answer["id"] == id {
                assert!(answer.get("error").is_none(), "{method}: {answer}");
                return answer["result"].clone();
            }
            self.events.push(answer);
        }
    }

    fn wait_for(&mut self, method: &str) {
        self.wait_until(|events| events.iter().any(|e| e["method"] == method));
    }

    /// Reads events until `done` holds for them (a generous guard against a hung browser,
    /// not a speed check).
    fn wait_until(&mut self, done: impl Fn(&[serde_json::Value]) -> bool) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(600);
        while !done(&self.events) {
            assert!(std::time::Instant::now() < deadline, "the browser hangs");
            let event = self.receive();
            self.events.push(event);
        }
    }

    /// Loads `url` as a new document (through about:blank, so that a URL differing from the
    /// current one only in its `#…` loads afresh too); events start anew.
    fn open(&mut self, url: &str) {
        for url in ["about:blank", url] {
            self.events.clear();
            self.call("Page.navigate", serde_json::json!({"url": url}));
            // The load that follows this navigation, not a late one of the page before.
            let address = url.split('#').next().unwrap().to_owned();
            self.wait_until(|events| {
                events
                    .iter()
                    .position(|e| {
                        e["method"] == "Page.frameNavigated"
                            && e["params"]["frame"]["parentId"].is_null()
                            && e["params"]["frame"]["url"] == address.as_str()
                    })
                    .is_some_and(|at| {
                        events[at..]
                            .iter()
                            .any(|e| e["method"] == "Page.loadEventFired")
                    })
            });
        }
    }

    /// Opens a search page and waits (for the page's `data-search-done`, without polling)
    /// until its search ran.
    fn search(&mut self, url: &str) {
        self.open(url);
        let done = self.call(
            "Runtime.evaluate",
            serde_json::json!({
                "expression": "new Promise(resolve => { \
                    const done = () => document.body && document.body.getAttribute('data-search-done') === '1'; \
                    if (done()) return resolve(true); \
                    new MutationObserver((_, o) => { if (done()) { o.disconnect(); resolve(true); } }) \
                        .observe(document.documentElement, {attributes: true, subtree: true}); })",
                "awaitPromise": true,
                "returnByValue": true,
            }),
        );
        assert_eq!(done["result"]["value"], true, "search of {url}: {done}");
    }

    /// URLs of every request the page made since the last `open`, as the browser saw them.
    fn requested(&self) -> Vec<String> {
        self.events
            .iter()
            .filter(|e| e["method"] == "Network.requestWillBeSent")
            .filter_map(|e| e["params"]["request"]["url"].as_str().map(str::to_owned))
            .collect()
    }

    /// Turns the page's scripts on or off (off: as a reader with JavaScript disabled).
    fn javascript(&mut self, on: bool) {
        self.call(
            "Emulation.setScriptExecutionDisabled",
            serde_json::json!({"value": !on}),
        );
    }

    fn eval(&mut self, expression: &str) -> serde_json::Value {
        let r = self.call(
            "Runtime.evaluate",
            serde_json::json!({"expression": expression, "returnByValue": true}),
        );
        r["result"]["value"].clone()
    }

    /// The page's HTML, read through the DOM domain (works with scripts disabled).
    fn html(&mut self) -> String {
        let doc = self.call("DOM.getDocument", serde_json::json!({"depth": 0}));
        let out = self.call(
            "DOM.getOuterHTML",
            serde_json::json!({"nodeId": doc["root"]["nodeId"]}),
        );
        out["outerHTML"].as_str().unwrap().to_owned()
    }

    /// Requests, console errors and exceptions seen since the last `open`.
    fn check_clean(&self, site_url: &str) -> usize {
        check_events(&self.events, site_url)
    }
}

/// Fails on a request outside `site_url`, an exception, or an error on the console or in the
/// browser's log among DevTools `events`; returns the number of requests.
fn check_events(events: &[serde_json::Value], site_url: &str) -> usize {
    {
        let mut requests = 0;
        for e in events {
            match e["method"].as_str() {
                Some("Network.requestWillBeSent") => {
                    let url = e["params"]["request"]["url"].as_str().unwrap();
                    assert!(
                        url.starts_with(&format!("{site_url}/")) || url.starts_with("data:"),
                        "request outside the site: {url}"
                    );
                    requests += 1;
                }
                Some("Runtime.exceptionThrown") => panic!("exception: {}", e["params"]),
                Some("Runtime.consoleAPICalled") if e["params"]["type"] == "error" => {
                    panic!("console error: {}", e["params"])
                }
                Some("Log.entryAdded") if e["params"]["entry"]["level"] == "error" => {
                    panic!("logged error: {}", e["params"]["entry"])
                }
                _ => {}
            }
        }
        requests
    }
}

impl Drop for Cdp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_stays_in_the_site_and_pages_read_with_javascript_off() {
    let env = start().await;
    let (site_url, mut cdp) = synced_site(&env, false).await;

    // With JavaScript: a search by address, its link, clicked.
    cdp.search(&format!("{site_url}/index.html#q=welcome"));
    assert_eq!(
        cdp.eval("document.querySelector('#results .hit-text').textContent"),
        "Welcome to Engineering!"
    );
    assert!(
        cdp.check_clean(&site_url) >= 4,
        "page, css, js and index files"
    );
    // `/` focuses the search box.
    assert_eq!(
        cdp.eval(
            "document.body.dispatchEvent(new KeyboardEvent('keydown', {key: '/', bubbles: true})); \
             document.activeElement === document.querySelector('form.search input')"
        ),
        true
    );
    cdp.events.clear();
    cdp.eval("document.querySelector('#results .hit-link').click()");
    cdp.wait_for("Page.loadEventFired");
    let url = cdp.eval("location.href");
    assert!(url.as_str().unwrap().contains("#p-"), "{url}");
    assert!(cdp.html().contains("Thanks! Glad to be here."));
    cdp.check_clean(&site_url);

    // Without JavaScript: the index links the channels, and a channel's link opens its
    // latest messages (before this layout it opened a list of month pages).
    cdp.javascript(false);
    cdp.open(&format!("{site_url}/index.html"));
    let index = cdp.html();
    assert!(index.contains("Town Square") && index.contains("Search needs JavaScript"));
    let href = index
        .split("<a href=\"")
        .find_map(|s| {
            s.split_once("\">Town Square</a>")
                .map(|(h, _)| h.to_owned())
        })
        .expect("the index links Town Square");
    assert!(href.ends_with("/index.html"), "{href}");
    cdp.open(&format!("{site_url}/{href}"));
    let page = cdp.html();
    assert!(page.contains("Welcome to Engineering!"));
    assert!(page.contains("2 replies"));
    assert!(page.matches("<article id=\"p-").count() >= 3);
    cdp.check_clean(&site_url);

    // The checks see what they claim to: a console error whatever its text, an exception,
    // and an attempt to load from outside the site, each made in a page of the site.
    cdp.javascript(true);
    for (script, what) in [
        ("console.error('x')", "console error"),
        ("setTimeout(() => { throw new Error('y') })", "exception"),
        (
            // The site's own policy refuses it before it is sent, and the browser says so.
            "fetch('http://127.0.0.1:9/outside').catch(() => {})",
            "violates the following Content Security Policy",
        ),
    ] {
        cdp.open(&format!("{site_url}/index.html"));
        cdp.eval(script);
        // Until the page's timers ran and the browser reported what followed.
        cdp.call(
            "Runtime.evaluate",
            serde_json::json!({
                "expression": "new Promise(resolve => setTimeout(resolve, 200))",
                "awaitPromise": true,
            }),
        );
        let events = cdp.events.clone();
        let seen = std::panic::catch_unwind(|| check_events(&events, &site_url));
        let message = seen
            .expect_err(&format!("{script} went unseen"))
            .downcast_ref::<String>()
            .cloned()
            .unwrap_or_default();
        assert!(message.contains(what), "{script}: {message}");
    }
}

/// Search on terms too frequent for one file: their postings are in chunks, and a query
/// loads only the chunks it needs (the newest, or those where a rarer term's posts fall).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frequent_terms_load_only_the_chunks_a_query_needs() {
    let env = start().await;
    let posts = 2 * html::search::CHUNK + 500;
    env.server.with_workspace(|w| {
        let dev = w.channel_id("eng", "town-square");
        w.create_post(&dev, "bob", "common needle in the oldest chunk", None);
        for i in 0..posts {
            w.create_post(&dev, "alice", &format!("common filler {i}"), None);
        }
    });
    let (base, mut cdp) = synced_site(&env, false).await;
    // Chunks loaded, counted from the browser's own list of requests.
    let mut run = |q: &str| {
        let found = search(&mut cdp, &base, q);
        let chunks = cdp
            .requested()
            .into_iter()
            .filter(|r| r.contains("/search/c/"))
            .collect::<std::collections::BTreeSet<_>>()
            .len();
        (found, chunks)
    };
    let (found, chunks) = run("needle%20common");
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].text, "common needle in the oldest chunk");
    assert_eq!(
        chunks, 1,
        "only the chunk of `common` that holds the needle"
    );

    let (found, chunks) = run("common%20filler");
    assert_eq!(found.len(), 20);
    assert_eq!(found[0].text, format!("common filler {}", posts - 1));
    assert_eq!(chunks, 2, "the newest chunk of each term");
}

/// One tokenizer for both searches: a table of queries (hashtags, snake_case, C++, emails,
/// URLs, umlauts and accents, CJK, emoji, code, prefixes, `from:`/`in:`) finds the same posts
/// in `matterbak search` (the catalog's FTS5 index) and in the site (in Chromium, from
/// `file://`), and those are the posts written down here for each query.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_searches_find_the_same_posts_for_a_table_of_queries() {
    let env = start().await;
    // "user channel text", with words no sample post has (zorblax, quuxify…), so the
    // expected sets are these posts.
    let messages = [
        "alice town-square see #incident_zx42 for the zorblax outage",
        "bob town-square rename quux_snake_name to quuxCamel",
        "alice town-square C++ zorblax templates are hard",
        "bob off-topic mail ops@zorblax.test about quuxify",
        "alice town-square read https://zorblax.test/docs/quuxsetup?x=1 first",
        "bob town-square Grüße aus Kölnquux, Cafézz für alle",
        "alice off-topic plain: Grusse aus Kolnquux, cafezz",
        "bob town-square 会議は明日ですquux",
        "alice town-square ship zorbship 🎉 today",
        "bob off-topic call fn quux_parse(argvzz) -> Result<Args>",
        "alice town-square the incident zx42 review is done",
    ];
    let ids: Vec<String> = env.server.with_workspace(|w| {
        messages
            .iter()
            .map(|line| {
                let (user, rest) = line.split_once(' ').unwrap();
                let (channel, text) = rest.split_once(' ').unwrap();
                let channel = w.channel_id("eng", channel);
                w.create_post(&channel, user, text, None)
            })
            .collect()
    });
    env.sync().await;
    // (site query, the CLI's words and flags, the posts both must find by index above)
    let table: &[(&str, &[&str], &[usize])] = &[
        ("zx42", &["zx42"], &[0, 10]),
        // `_` separates words (as in FTS5's unicode61): a phrase of two words.
        ("#incident_zx42", &["#incident_zx42"], &[0, 10]),
        ("incident_zx42", &["incident_zx42"], &[0, 10]),
        ("quux_snake_name", &["quux_snake_name"], &[1]),
        ("quux", &["quux"], &[1, 9]),
        ("C++ zorblax", &["C++", "zorblax"], &[2]),
        ("ops@zorblax.test", &["ops@zorblax.test"], &[3]),
        ("zorblax", &["zorblax"], &[0, 2, 3, 4]),
        (
            "https://zorblax.test/docs/quuxsetup",
            &["https://zorblax.test/docs/quuxsetup"],
            &[4],
        ),
        ("Kölnquux", &["Kölnquux"], &[5, 6]),
        ("kolnquux", &["kolnquux"], &[5, 6]),
        ("CAFÉZZ", &["CAFÉZZ"], &[5, 6]),
        // ß is a letter of its own, not "ss" (diacritics fold, letters do not).
        ("grüße kölnquux", &["grüße", "kölnquux"], &[5]),
        ("grusse", &["grusse"], &[6]),
        ("会議は明日ですquux", &["会議は明日ですquux"], &[7]),
        ("会議*", &["会議*"], &[7]),
        ("明日ですquux", &["明日ですquux"], &[]),
        ("🎉", &["🎉"], &[]),
        // A word of no token is left out (FTS5 ignores an empty phrase beside others).
        ("zorbship 🎉", &["zorbship", "🎉"], &[8]),
        ("from:alice 🎉", &["🎉", "--from", "alice"], &[]),
        ("zorbship", &["zorbship"], &[8]),
        ("quux_parse(argvzz)", &["quux_parse(argvzz)"], &[9]),
        ("argvzz", &["argvzz"], &[9]),
        ("zorbl*", &["zorbl*"], &[0, 2, 3, 4]),
        ("from:bob zorblax", &["zorblax", "--from", "bob"], &[3]),
        (
            "in:off-topic kolnquux",
            &["kolnquux", "--channel", "off-topic"],
            &[6],
        ),
        ("\"incident zx42\"", &["incident zx42"], &[0, 10]),
        ("\"zx42 incident\"", &["zx42 incident"], &[]),
    ];
    let (base, mut cdp) = synced_site(&env, false).await;
    for (query, cli, expected) in table {
        let expected: std::collections::BTreeSet<&str> =
            expected.iter().map(|&k| ids[k].as_str()).collect();
        let encoded: String = query
            .bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect();
        let found = search(&mut cdp, &base, &encoded);
        let in_site: std::collections::BTreeSet<&str> = found
            .iter()
            .map(|h| h.href.rsplit_once("#p-").expect("a post anchor").1)
            .collect();
        let out = Command::new(env!("CARGO_BIN_EXE_matterbak"))
            .env_remove("MATTERBAK_ARCHIVE")
            .arg("search")
            .args(*cli)
            .args(["--json", "--limit", "100", "--archive"])
            .arg(&env.archive)
            .output()
            .unwrap();
        let stdout = String::from_utf8(out.stdout).unwrap();
        let hits: serde_json::Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
            panic!(
                "{query}: `matterbak search` printed no JSON ({e}): {stdout} {}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
        let in_cli: std::collections::BTreeSet<&str> = hits
            .as_array()
            .expect("an array")
            .iter()
            .map(|h| h["post_id"].as_str().unwrap())
            .collect();
        assert_eq!(in_cli, expected, "matterbak search {cli:?}");
        assert_eq!(in_site, expected, "site search {query}");
    }
}

/// The reader's fixture: a channel "History" (team eng) of 200 roots "history root K:
/// noteK", one every 6 hours from 2024-03-01 09:00 UTC; root 30 has 12 replies a minute
/// apart; root 198 has a long unbroken URL and a code block (for the phone width). In
/// town-square, a post links root 5 and reply 7 by permalink. The site is in UTC.
struct History {
    channel: String,
    town: String,
    roots: Vec<String>,
    replies: Vec<String>,
    site: PathBuf,
}

/// 2024-03-01T09:00:00Z.
const HISTORY_START: i64 = 1_709_283_600_000;
const HOUR: i64 = 3_600_000;

async fn history(env: &common::Env) -> History {
    let (channel, town, roots, replies) = env.server.with_workspace(|w| {
        let channel = w.create_channel("eng", "history", "History", 'O', &["alice", "bob"]);
        let town = w.channel_id("eng", "town-square");
        let mut roots = Vec::new();
        let mut replies = Vec::new();
        for k in 0..200i64 {
            w.advance_clock_to(HISTORY_START + k * 6 * HOUR - 1000);
            let user = if k % 2 == 0 { "alice" } else { "bob" };
            let text = if k == 198 {
                format!(
                    "history root 198: note198 https://example.com/{}\n```\n{}\n```",
                    "a".repeat(300),
                    "let x = 1; ".repeat(40)
                )
            } else {
                format!("history root {k}: note{k}")
            };
            roots.push(w.create_post(&channel, user, &text, None));
            if k == 30 {
                for m in 0..12 {
                    let reply = format!("reply {m} to root 30: answer{m}");
                    replies.push(w.create_post(&channel, "bob", &reply, Some(&roots[30])));
                }
            }
        }
        w.create_post(
            &town,
            "carol",
            &format!(
                "old stuff: https://chat.example.com/eng/pl/{} and https://chat.example.com/eng/pl/{}",
                roots[5], replies[7]
            ),
            None,
        );
        (channel, town, roots, replies)
    });
    env.sync().await;
    let site = env.dir.path().join("site");
    build_utc(env, &site);
    History {
        channel,
        town,
        roots,
        replies,
        site,
    }
}

/// The post anchors of a page, in order, as post ids.
fn post_ids(html: &str) -> Vec<String> {
    html.split("<article id=\"p-")
        .skip(1)
        .map(|s| s[..s.find('"').unwrap()].to_owned())
        .collect()
}

/// The day dividers of a page: (datetime, text).
fn dividers(html: &str) -> Vec<(String, String)> {
    html.split("<h3 class=\"day-sep\"><time datetime=\"")
        .skip(1)
        .map(|s| {
            let (day, rest) = s.split_once("\">").unwrap();
            (day.to_owned(), rest[..rest.find('<').unwrap()].to_owned())
        })
        .collect()
}

/// The `href` of the first `<a …>` whose attributes contain `marker`.
fn link(html: &str, marker: &str) -> String {
    let at = html
        .find(marker)
        .unwrap_or_else(|| panic!("no link {marker}"));
    let tag = &html[html[..at].rfind("<a ").unwrap()..];
    let tag = &tag[..tag.find('>').unwrap()];
    between(tag, "href=\"", "\"")
        .unwrap_or_else(|| panic!("{tag}"))
        .replace("&amp;", "&")
}

/// `href` taken from the page at `page` (a path in the site), as a path in the site with
/// its `#…`.
fn resolve(page: &str, href: &str) -> String {
    let mut parts: Vec<&str> = page.split('/').collect();
    parts.pop();
    let (path, fragment) = href
        .split_once('#')
        .map_or((href, None), |(p, f)| (p, Some(f)));
    if path.is_empty() {
        parts.push(page.rsplit('/').next().unwrap());
    }
    for seg in path.split('/').filter(|s| !s.is_empty()) {
        match seg {
            ".." => {
                parts.pop().expect("stays in the site");
            }
            "." => {}
            s => parts.push(s),
        }
    }
    let joined = parts.join("/");
    match fragment {
        Some(f) => format!("{joined}#{f}"),
        None => joined,
    }
}

/// A channel opens on its latest messages (its newest page, the sidebar's link); older and
/// newer pages of 60 roots follow with JavaScript off, a divider per day with the dates
/// written out here, the month menu leads to the days, a long thread's link opens its page
/// and its way back leads to the page holding the root.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_channel_opens_on_its_latest_messages_and_pages_read_with_javascript_off() {
    let env = start().await;
    let h = history(&env).await;
    let (base, mut cdp) = browser(&env, &h.site);
    cdp.javascript(false);
    let dir = format!("c/{}", h.channel);
    let visit = |cdp: &mut Cdp, rel: &str| {
        cdp.open(&format!("{base}/{rel}"));
        cdp.check_clean(&base);
        cdp.html()
    };
    let ids = |range: std::ops::Range<usize>| -> Vec<String> { h.roots[range].to_vec() };

    // The sidebar of the site's index links the channel's newest page.
    let index = visit(&mut cdp, "index.html");
    let sidebar = between(&index, "<nav class=\"sidebar\"", "</nav>").unwrap();
    let newest = link(sidebar, ">History</a>");
    assert_eq!(newest, format!("{dir}/index.html"));

    // The newest page: roots 120-199 (the last 60 and the 20 after them), 2024-03-31 to
    // 2024-04-20, a divider per day.
    let page = visit(&mut cdp, &newest);
    assert_eq!(post_ids(&page), ids(120..200));
    let days = dividers(&page);
    assert_eq!(days.len(), 21, "{days:?}");
    assert_eq!(
        days[0],
        ("2024-03-31".to_owned(), "Sun, Mar 31, 2024".to_owned())
    );
    assert_eq!(
        days[1],
        ("2024-04-01".to_owned(), "Mon, Apr 01, 2024".to_owned())
    );
    assert_eq!(
        days[20],
        ("2024-04-20".to_owned(), "Sat, Apr 20, 2024".to_owned())
    );
    assert!(page.contains("<title>History</title>"), "its title");
    // The month menu: each month's first day, on the page that holds it.
    let menu = between(&page, "<ul class=\"jump-months\">", "</ul>").unwrap();
    assert_eq!(
        menu,
        "<li><a href=\"1.html#d-2024-03-01\">2024-03</a></li><li><a href=\"index.html#d-2024-04-01\">2024-04</a></li>"
    );
    assert!(page.contains("id=\"d-2024-04-01\""));
    assert_eq!(link(&page, "rel=\"prev\""), "2.html");
    assert!(!page.contains("rel=\"next\""), "nothing is newer");

    // Older: roots 60-119, then 0-59 (with root 30's first 2 and latest 3 replies).
    let page = visit(&mut cdp, &format!("{dir}/2.html"));
    assert_eq!(post_ids(&page), ids(60..120));
    let days = dividers(&page);
    assert_eq!(
        (days[0].1.as_str(), days[days.len() - 1].1.as_str()),
        ("Sat, Mar 16, 2024", "Sun, Mar 31, 2024")
    );
    assert_eq!(link(&page, "rel=\"next\""), "index.html#page-top");
    assert_eq!(link(&page, "rel=\"prev\""), "1.html");
    // The month menu is the newest page's; older pages link it.
    assert_eq!(link(&page, ">months</a>"), "index.html#jump");
    let page = visit(&mut cdp, &format!("{dir}/1.html"));
    let mut expected = ids(0..31);
    expected.extend([0, 1, 9, 10, 11].map(|m| h.replies[m].clone()));
    expected.extend(ids(31..60));
    assert_eq!(post_ids(&page), expected);
    let days = dividers(&page);
    assert_eq!(
        (days[0].1.as_str(), days[days.len() - 1].1.as_str()),
        ("Fri, Mar 01, 2024", "Sat, Mar 16, 2024")
    );
    assert_eq!(days.len(), 16);
    assert!(!page.contains("rel=\"prev\""), "nothing is older");
    assert_eq!(link(&page, "rel=\"next\""), "2.html");

    // The long thread: its link, its page (the root and all 12 replies, one day), the way
    // back to the root on its page.
    let more = link(&page, "class=\"more-replies\"");
    assert_eq!(more, format!("t-{}.html#p-{}", h.roots[30], h.replies[2]));
    let thread_rel = resolve(&format!("{dir}/1.html"), &more);
    let thread = visit(&mut cdp, thread_rel.split('#').next().unwrap());
    let mut expected = vec![h.roots[30].clone()];
    expected.extend(h.replies.iter().cloned());
    assert_eq!(post_ids(&thread), expected);
    assert_eq!(
        dividers(&thread),
        [("2024-03-08".to_owned(), "Fri, Mar 08, 2024".to_owned())]
    );
    let back = link(&thread, ">channel</a>");
    assert_eq!(back, format!("1.html#p-{}", h.roots[30]));
    let page = visit(&mut cdp, &resolve(&thread_rel, &back));
    assert!(page.contains(&format!("id=\"p-{}\"", h.roots[30])));

    // Every link of the sidebar and of the pager, on every page visited, opens a page.
    for rel in [
        format!("{dir}/index.html"),
        format!("{dir}/2.html"),
        format!("{dir}/1.html"),
        thread_rel.split('#').next().unwrap().to_owned(),
    ] {
        let page = std::fs::read_to_string(h.site.join(&rel)).unwrap();
        let sidebar = between(&page, "<nav class=\"sidebar\"", "</nav>").unwrap();
        let pagers = page.split("<nav class=\"pager\"").skip(1);
        for part in std::iter::once(sidebar).chain(pagers.map(|p| &p[..p.find("</nav>").unwrap()]))
        {
            for href in part
                .split("href=\"")
                .skip(1)
                .map(|s| &s[..s.find('"').unwrap()])
            {
                let target = resolve(&rel, href);
                let (file, fragment) = target.split_once('#').unwrap_or((&target, ""));
                let html = std::fs::read_to_string(h.site.join(file))
                    .unwrap_or_else(|e| panic!("{rel}: {href} does not resolve: {e}"));
                assert!(
                    fragment.is_empty() || html.contains(&format!("id=\"{fragment}\"")),
                    "{rel}: {href}"
                );
            }
        }
    }
}

/// The page shown is `page` (a path in the site) at post `post`: highlighted (`:target` takes
/// the mark colour) and in view below the page's sticky header (which hid the post's first
/// line before); nothing logged an error or left the site.
fn assert_shown(cdp: &mut Cdp, base: &str, page: &str, post: &str) {
    let url = cdp.eval("location.href");
    assert_eq!(url.as_str().unwrap(), format!("{base}/{page}#p-{post}"));
    assert_eq!(
        cdp.eval(
            "(() => { const t = document.querySelector(':target'); const r = t.getBoundingClientRect(); \
             const top = document.querySelector('header.top').getBoundingClientRect().bottom; \
             return [t.id, getComputedStyle(t).backgroundColor, r.top >= top && r.top < innerHeight]; })()"
        ),
        serde_json::json!([format!("p-{post}"), "rgb(255, 243, 191)", true])
    );
    cdp.check_clean(base);
}

/// A permalink to an old post (in another channel's message, and as a search hit) lands on
/// the page that holds it (written out here: root 5 on `1.html`, reply 7 of root 30 on the
/// thread's page), scrolled to and highlighted; the hit shows the channel's and the author's
/// display names, the time in the site's zone and the marked word.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permalink_to_an_old_post_lands_on_its_page_scrolled_to_and_highlighted() {
    let env = start().await;
    let h = history(&env).await;
    let (base, mut cdp) = browser(&env, &h.site);
    let town = format!("c/{}/index.html", h.town);
    cdp.open(&format!("{base}/{town}"));
    let page = cdp.html();
    let to_root = format!("../../c/{}/1.html#p-{}", h.channel, h.roots[5]);
    let to_reply = format!(
        "../../c/{}/t-{}.html#p-{}",
        h.channel, h.roots[30], h.replies[7]
    );
    assert!(page.contains(&format!("href=\"{to_root}\"")), "{to_root}");
    assert!(page.contains(&format!("href=\"{to_reply}\"")), "{to_reply}");
    let lands = |cdp: &mut Cdp, click: &str, post: &str, page: &str| {
        cdp.events.clear();
        cdp.eval(click);
        cdp.wait_for("Page.loadEventFired");
        assert_shown(cdp, &base, &format!("c/{}/{page}", h.channel), post);
    };
    lands(
        &mut cdp,
        &format!("document.querySelector('a[href=\"{to_root}\"]').click()"),
        &h.roots[5],
        "1.html",
    );
    cdp.open(&format!("{base}/{town}"));
    lands(
        &mut cdp,
        &format!("document.querySelector('a[href=\"{to_reply}\"]').click()"),
        &h.replies[7],
        &format!("t-{}.html", h.roots[30]),
    );

    // As a search hit: names, time (2024-03-02 15:00 UTC), marked word, link.
    let found = search(&mut cdp, &base, "note5");
    assert_eq!(found.len(), 1, "{found:?}");
    let hit = &found[0];
    assert_eq!(
        (hit.channel.as_str(), hit.user.as_str(), hit.text.as_str()),
        ("History", "Bob Builder", "history root 5: note5")
    );
    assert_eq!(hit.marked, ["note5"]);
    assert_eq!(hit.href, format!("c/{}/1.html#p-{}", h.channel, h.roots[5]));
    assert_eq!(
        cdp.eval("document.querySelector('#results .hit-time').textContent"),
        "2024-03-02 15:00"
    );
    lands(
        &mut cdp,
        "document.querySelector('#results .hit-link').click()",
        &h.roots[5],
        "1.html",
    );
    let found = search(&mut cdp, &base, "answer7");
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(
        found[0].href,
        format!("c/{}/t-{}.html#p-{}", h.channel, h.roots[30], h.replies[7])
    );

    // With JavaScript the month menu opens when an older page's link names it.
    cdp.open(&format!("{base}/c/{}/index.html#jump", h.channel));
    assert_eq!(cdp.eval("document.getElementById('jump').open"), true);

    // With JavaScript the newest page opens at its end (its latest messages in view).
    cdp.open(&format!("{base}/c/{}/index.html", h.channel));
    assert_eq!(
        cdp.eval(
            "(() => { const r = document.getElementById('latest').getBoundingClientRect(); \
             return [scrollY > 0, r.bottom <= innerHeight + 1]; })()"
        ),
        serde_json::json!([true, true])
    );
}

/// Dark mode follows the system (prefers-color-scheme, emulated) and the toggle; at a
/// phone's 360 px nothing is wider than the screen and the sidebar moves below the page.
/// Colours are the stylesheet's, written out here.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dark_mode_and_a_phone_width_in_chromium() {
    let env = start().await;
    let h = history(&env).await;
    let (base, mut cdp) = browser(&env, &h.site);
    let newest = format!("{base}/c/{}/index.html", h.channel);
    let colours = "(() => { const b = getComputedStyle(document.body); \
        const a = getComputedStyle(document.querySelector('main a')); \
        const d = getComputedStyle(document.querySelector('.day-sep')); \
        return [b.backgroundColor, b.color, a.color, d.color]; })()";
    let scheme = |cdp: &mut Cdp, value: &str| {
        cdp.call(
            "Emulation.setEmulatedMedia",
            serde_json::json!({"features": [{"name": "prefers-color-scheme", "value": value}]}),
        );
    };
    scheme(&mut cdp, "dark");
    cdp.open(&newest);
    assert_eq!(
        cdp.eval(colours),
        serde_json::json!([
            "rgb(23, 25, 28)",
            "rgb(230, 230, 230)",
            "rgb(122, 167, 255)",
            "rgb(230, 230, 230)"
        ])
    );
    // The toggle turns a dark page light, and the choice stays for the next page.
    cdp.eval("document.querySelector('button.theme').click()");
    assert_eq!(
        cdp.eval("getComputedStyle(document.body).backgroundColor"),
        "rgb(255, 255, 255)"
    );
    cdp.open(&format!("{base}/index.html"));
    assert_eq!(
        cdp.eval("getComputedStyle(document.body).backgroundColor"),
        "rgb(255, 255, 255)"
    );
    cdp.eval("localStorage.removeItem('mb-theme')");
    scheme(&mut cdp, "light");
    cdp.open(&newest);
    assert_eq!(
        cdp.eval(colours),
        serde_json::json!([
            "rgb(255, 255, 255)",
            "rgb(31, 35, 41)",
            "rgb(28, 88, 217)",
            "rgb(31, 35, 41)"
        ])
    );
    cdp.check_clean(&base);

    // A phone: 360 px.
    cdp.call(
        "Emulation.setDeviceMetricsOverride",
        serde_json::json!({"width": 360, "height": 740, "deviceScaleFactor": 1, "mobile": true}),
    );
    for rel in [
        format!("c/{}/index.html#p-{}", h.channel, h.roots[198]),
        format!("c/{}/1.html", h.channel),
        format!("c/{}/t-{}.html", h.channel, h.roots[30]),
        format!("c/{}/info.html", h.channel),
        "index.html".to_owned(),
    ] {
        cdp.open(&format!("{base}/{rel}"));
        assert_eq!(
            cdp.eval(
                "(() => { const m = document.querySelector('main').getBoundingClientRect(); \
                 const s = document.querySelector('nav.sidebar').getBoundingClientRect(); \
                 return [innerWidth, document.documentElement.scrollWidth, m.right <= 360, s.top >= m.bottom]; })()"
            ),
            serde_json::json!([360, 360, true, true]),
            "{rel}"
        );
        cdp.check_clean(&base);
    }
    cdp.search(&format!("{base}/index.html#q=note198"));
    assert_eq!(
        cdp.eval("[document.querySelectorAll('#results li').length, document.documentElement.scrollWidth]"),
        serde_json::json!([1, 360])
    );
}

/// A link saved from outside the site to a post on a channel's newest page
/// (`index.html#p-<id>`) still lands on the post after later exports moved it to an older
/// page: root 150 of the History fixture is on `index.html` (roots 120-199) until 60 more
/// roots follow; then it is on `3.html` (roots 120-179, written out here), where app.js
/// goes, through the channel's `homes.js`, when the anchor is not on the page. With
/// JavaScript off the page stays, and its month menu leads to the post's page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saved_link_to_a_post_that_left_the_newest_page_still_lands_on_it() {
    let env = start().await;
    let h = history(&env).await;
    let (base, mut cdp) = browser(&env, &h.site);
    let dir = format!("c/{}", h.channel);
    let saved = format!("{base}/{dir}/index.html#p-{}", h.roots[150]);
    let first = std::fs::read_to_string(h.site.join(&dir).join("index.html")).unwrap();
    assert!(first.contains(&format!("id=\"p-{}\"", h.roots[150])));

    let later: Vec<String> = env.server.with_workspace(|w| {
        (200..260i64)
            .map(|k| {
                w.advance_clock_to(HISTORY_START + k * 6 * HOUR - 1000);
                w.create_post(
                    &h.channel,
                    "alice",
                    &format!("history root {k}: note{k}"),
                    None,
                )
            })
            .collect()
    });
    env.sync().await;
    build_utc(&env, &h.site);
    let newest = std::fs::read_to_string(h.site.join(&dir).join("index.html")).unwrap();
    assert!(
        !newest.contains(&format!("id=\"p-{}\"", h.roots[150])),
        "moved"
    );

    cdp.open(&saved);
    let to = format!("{base}/{dir}/3.html");
    cdp.wait_until(|events| {
        events
            .iter()
            .position(|e| {
                e["method"] == "Page.frameNavigated" && e["params"]["frame"]["url"] == to.as_str()
            })
            .is_some_and(|at| {
                events[at..]
                    .iter()
                    .any(|e| e["method"] == "Page.loadEventFired")
            })
    });
    assert_shown(&mut cdp, &base, &format!("{dir}/3.html"), &h.roots[150]);
    // A post still on the page it names stays where it is (no look-up, no homes.js).
    cdp.open(&format!("{base}/{dir}/index.html#p-{}", later[30]));
    assert_shown(&mut cdp, &base, &format!("{dir}/index.html"), &later[30]);
    assert!(
        !cdp.requested().iter().any(|u| u.ends_with("/homes.js")),
        "{:?}",
        cdp.requested()
    );

    // JavaScript off: the saved link opens the newest page, whose month menu leads to the
    // page holding April 2024's first day and root 150.
    cdp.javascript(false);
    cdp.open(&saved);
    let page = cdp.html();
    let menu = between(&page, "<ul class=\"jump-months\">", "</ul>").unwrap();
    assert_eq!(
        menu,
        "<li><a href=\"1.html#d-2024-03-01\">2024-03</a></li><li><a href=\"3.html#d-2024-04-01\">2024-04</a></li><li><a href=\"index.html#d-2024-05-01\">2024-05</a></li>"
    );
    cdp.open(&format!("{base}/{dir}/3.html#d-2024-04-01"));
    assert!(cdp.html().contains(&format!("id=\"p-{}\"", h.roots[150])));
    cdp.check_clean(&base);
}

/// A search hit in a message of 16,000 characters whose query words come only at its end
/// (far past the 400 characters a search record keeps) shows them in its snippet, marked,
/// for a word and for a phrase; a hit whose words are at the start loads no whole text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_match_deep_in_a_long_message_is_shown_and_marked() {
    let env = start().await;
    // 15,960 characters of filler, then 40 characters holding the words searched for.
    let deep = format!(
        "{}{}",
        "filler ".repeat(2_280),
        "and at the very end: needle zebraquuxes."
    );
    let early = format!("okapizzz first, then {}", "filler ".repeat(2_280));
    assert_eq!(
        (deep.chars().count(), early.chars().count()),
        (16_000, 15_981)
    );
    let (deep_id, early_id) = env.server.with_workspace(|w| {
        let town = w.channel_id("eng", "town-square");
        (
            w.create_post(&town, "alice", &deep, None),
            w.create_post(&town, "bob", &early, None),
        )
    });
    let (base, mut cdp) = synced_site(&env, false).await;
    for (query, marked) in [
        ("zebraquuxes", &["zebraquuxes"][..]),
        ("%22needle%20zebraquuxes%22", &["needle", "zebraquuxes"][..]),
        ("zebraq*", &["zebraquuxes"][..]),
    ] {
        let found = search(&mut cdp, &base, query);
        assert_eq!(found.len(), 1, "{query}: {found:?}");
        assert!(found[0].href.ends_with(&format!("#p-{deep_id}")), "{query}");
        assert_eq!(found[0].marked, marked, "{query}");
        assert!(
            found[0]
                .text
                .ends_with("and at the very end: needle zebraquuxes."),
            "{query}: {}",
            found[0].text
        );
    }
    let found = search(&mut cdp, &base, "okapizzz");
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].href.ends_with(&format!("#p-{early_id}")));
    assert_eq!(found[0].marked, ["okapizzz"]);
    assert!(
        !cdp.requested().iter().any(|u| u.contains("/search/x/")),
        "{:?}",
        cdp.requested()
    );
}
