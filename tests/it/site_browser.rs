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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_from_disk_finds_posts_and_opens_threads_without_network() {
    let env = start().await;
    env.sync().await;
    let site = env.dir.path().join("site");
    let utc = SiteOptions {
        tz: Some("UTC".into()),
        ..SiteOptions::default()
    };
    html::build_site(&env.read(), &site, &utc).unwrap();
    let base = format!("file://{}", site.display());
    let mut cdp = Cdp::start(&env.dir.path().join("profile"));
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
    env.sync().await;
    let site = env.dir.path().join("site");
    html::build_site(&env.read(), &site, &SiteOptions::default()).unwrap();
    let site_url = format!("file://{}", site.display());
    let mut cdp = Cdp::start(&env.dir.path().join("profile"));

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

    // Without JavaScript: the index links the channels, and a month page shows messages.
    cdp.call(
        "Emulation.setScriptExecutionDisabled",
        serde_json::json!({"value": true}),
    );
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
    cdp.open(&format!("{site_url}/{href}"));
    let channel = cdp.html();
    let month = between(&channel, "<ul class=\"months\"><li>", "</li>")
        .and_then(|li| between(li, "href=\"", "\""))
        .expect("a month page link")
        .to_owned();
    let dir = Path::new(&href).parent().unwrap().display().to_string();
    cdp.open(&format!("{site_url}/{dir}/{month}"));
    let page = cdp.html();
    assert!(page.contains("Welcome to Engineering!"));
    assert!(page.contains("2 replies"));
    assert!(page.matches("<article id=\"p-").count() >= 3);
    cdp.check_clean(&site_url);

    // The checks see what they claim to: a console error whatever its text, an exception,
    // and an attempt to load from outside the site, each made in a page of the site.
    cdp.call(
        "Emulation.setScriptExecutionDisabled",
        serde_json::json!({"value": false}),
    );
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
    env.sync().await;
    let site = env.dir.path().join("site");
    html::build_site(&env.read(), &site, &SiteOptions::default()).unwrap();
    let base = format!("file://{}", site.display());
    let mut cdp = Cdp::start(&env.dir.path().join("profile"));
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
    // Words no sample post has (zorblax, quuxify…), so the expected sets are these posts.
    let messages = [
        (
            "alice",
            "town-square",
            "see #incident_zx42 for the zorblax outage",
        ),
        ("bob", "town-square", "rename quux_snake_name to quuxCamel"),
        ("alice", "town-square", "C++ zorblax templates are hard"),
        ("bob", "off-topic", "mail ops@zorblax.test about quuxify"),
        (
            "alice",
            "town-square",
            "read https://zorblax.test/docs/quuxsetup?x=1 first",
        ),
        ("bob", "town-square", "Grüße aus Kölnquux, Cafézz für alle"),
        ("alice", "off-topic", "plain: Grusse aus Kolnquux, cafezz"),
        ("bob", "town-square", "会議は明日ですquux"),
        ("alice", "town-square", "ship zorbship 🎉 today"),
        (
            "bob",
            "off-topic",
            "call fn quux_parse(argvzz) -> Result<Args>",
        ),
        ("alice", "town-square", "the incident zx42 review is done"),
    ];
    let ids: Vec<String> = env.server.with_workspace(|w| {
        messages
            .iter()
            .map(|(user, channel, text)| {
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
    let site = env.dir.path().join("site");
    html::build_site(&env.read(), &site, &SiteOptions::default()).unwrap();
    let base = format!("file://{}", site.display());
    let mut cdp = Cdp::start(&env.dir.path().join("profile"));
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
