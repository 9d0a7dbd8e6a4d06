//! The site's search index: an inverted index split into many small classic `.js` files that
//! the page loads with `<script>` tags on demand (a browser refuses `fetch` on `file://`), so
//! a query reads a few shards, never the whole index.
//!
//! - Documents are numbered densely in global time order (oldest = 0), so date filters are
//!   id ranges (`days` in `meta.js`) and the newest hits are the highest ids.
//! - Terms are the words of [`tokens`], the rule of the catalog's FTS5 tokenizer
//!   (`unicode61 remove_diacritics 2`, behind `matterbak search`), so both searches find
//!   the same posts; and the filters as pseudo-terms: `in:<channel>`, `from:<username>`,
//!   `has:file`, `is:pinned`. A query word of several tokens (`#incident_42`, `a.b@c.com`)
//!   is a phrase, as `matterbak search` quotes it; a word of none (`🎉`) matches nothing.
//! - `t/<shard>.js`: `MB.shard("<shard>", {term: postings})`, the shard being the low bits of
//!   the term's FNV-1a hash; postings are ids newest first, delta-coded in base 36 and joined
//!   by `,`. A term with more than [`CHUNK`] postings is stored in chunks
//!   `c/<hash>-<k>.js` (`MB.chunk("<hash>-<k>", postings)`), its shard entry listing the id
//!   range of each, so a query loads the newest chunk first and more only while needed.
//! - `p/<two chars>.js`: the terms beginning with those characters, for `prefix*`.
//! - `d/<block>.js`: [`BLOCK`] documents each: channel, author, time, page, thread page
//!   (file names in the channel's directory), post id, the text's first [`TEXT_CHARS`]
//!   characters (for showing hits and confirming phrases), and `1` after them when the text
//!   is longer. Where a post lives is kept with it, not in `meta.js`, so what every query
//!   loads (`meta.js`: channels, users, days) does not grow with the number of pages or
//!   threads.
//! - `x/<block>.js`: the whole text of that block's longer documents, loaded only for a hit
//!   whose query words or phrase are not in its first characters, so a snippet shows and
//!   marks them wherever they are in a message of up to 16,383 characters.
//!
//! While posts are added, their texts wait in an unnamed temporary file, not in memory.
//!
//! `templates/site/app.js` holds the reading side; the tokenizer and hash must match it.
//! Files are written only when their bytes change, so an incremental rebuild keeps most.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, BufWriter, Write as _};
use std::path::{Path, PathBuf};

use super::postings::{Postings, unnamed_file};
use crate::catalog::PostRecord;
use crate::model::UserId;

/// Documents per `d/` block.
pub const BLOCK: usize = 32;
/// Postings per chunk of a frequent term.
pub const CHUNK: usize = 5_000;
/// Characters of a message kept in its document record.
pub const TEXT_CHARS: usize = 400;

/// Longest token indexed, in characters (longer runs are hashes and blobs, not words).
pub const TOKEN_CHARS: usize = 64;

/// Whether `c` is part of a word: a letter or number and not a combining mark, or a private
/// use character, as SQLite's `unicode61` (categories `L* N* Co`); `_`, punctuation, symbols
/// and emoji separate words. `app.js` has the same rule (`\p{Alphabetic}`, `\p{N}`,
/// `\p{Co}`, not `\p{M}`).
fn is_token_char(c: char) -> bool {
    (c.is_alphanumeric() && !unicode_normalization::char::is_combining_mark(c))
        || matches!(c, '\u{E000}'..='\u{F8FF}' | '\u{F0000}'..='\u{FFFFD}' | '\u{100000}'..='\u{10FFFD}')
}

/// The words of a text, the rule both searches share: canonical decomposition with the
/// combining diacritics (U+0300–U+036F) dropped (`Köln` → `koln`, as `remove_diacritics
/// 2`) and composed again (`で` stays one letter), lower case, split at every character not [`is_token_char`]. Words longer than
/// [`TOKEN_CHARS`] are left out.
pub fn tokens(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    each_token(text, |w| out.push(w.to_owned()));
    out
}

/// [`tokens`] without an allocation per word: calls `f` with each word in order. ASCII text
/// (most messages) skips the normalization, which leaves ASCII unchanged: no ASCII character
/// decomposes or composes, and its lower case is ASCII.
fn each_token(text: &str, mut f: impl FnMut(&str)) {
    use unicode_normalization::UnicodeNormalization;
    let folded: String = if text.is_ascii() {
        text.to_ascii_lowercase()
    } else {
        text.nfd()
            .filter(|c| !matches!(c, '\u{300}'..='\u{36F}'))
            .nfc()
            .collect::<String>()
            .to_lowercase()
    };
    for w in folded.split(|c: char| !is_token_char(c)) {
        if !w.is_empty() && w.chars().count() <= TOKEN_CHARS {
            f(w);
        }
    }
}

/// 32-bit FNV-1a over UTF-8 bytes (the same in app.js).
pub fn fnv1a(text: &str) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in text.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

/// A document while the index is built: small and fixed-size (its post id is in
/// [`IndexBuilder::ids`], its text in the spill file), as a build holds one per post.
struct Doc {
    create_at: i64,
    /// Where the post id is in `ids`, and its length.
    id_at: u32,
    id_len: u16,
    channel: u32,
    user: u32,
    page: u32,
    /// The thread's page, or `u32::MAX` for none.
    thread: u32,
    /// Where the message's text is in the spill file, and its length in bytes.
    text_at: u64,
    text_len: u32,
}

/// The documents' texts, written as posts are added and read back in time order when the
/// index is written ([`unnamed_file`]).
struct Spill {
    writer: BufWriter<File>,
    len: u64,
}

impl Spill {
    fn create() -> io::Result<Spill> {
        Ok(Spill {
            writer: BufWriter::with_capacity(1 << 16, unnamed_file()?),
            len: 0,
        })
    }

    fn push(&mut self, text: &str) -> io::Result<u64> {
        let at = self.len;
        self.writer.write_all(text.as_bytes())?;
        self.len += text.len() as u64;
        Ok(at)
    }

    /// The file to read back from.
    fn finish(self) -> io::Result<File> {
        self.writer
            .into_inner()
            .map_err(io::IntoInnerError::into_error)
    }
}

/// Reads a text back from the spill file (one `pread`, no seek).
fn read_text(file: &File, at: u64, len: u32, buf: &mut Vec<u8>) -> io::Result<String> {
    use std::os::unix::fs::FileExt;
    buf.resize(len as usize, 0);
    file.read_exact_at(buf, at)?;
    String::from_utf8(std::mem::take(buf))
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// One post as [`IndexBuilder::add`] hands it to the indexing thread.
struct Job {
    id: String,
    user_id: UserId,
    create_at: i64,
    message: String,
    channel: u32,
    page: String,
    thread: Option<String>,
    has_file: bool,
    pinned: bool,
}

/// Posts handed to the indexing thread at once, and how many such batches may wait for it:
/// the build blocks rather than hold more when the thread falls behind.
const JOB_BATCH: usize = 256;
const JOBS_WAITING: usize = 8;

/// The thread that tokenizes and records the posts [`IndexBuilder::add`] is given, while the
/// build renders pages: it runs on an index of its own and hands it back at
/// [`IndexBuilder::write`].
struct Worker {
    jobs: std::sync::mpsc::SyncSender<Vec<Job>>,
    thread: std::thread::JoinHandle<io::Result<IndexBuilder>>,
}

#[derive(Default)]
pub struct IndexBuilder {
    /// Posts not yet handed to the worker.
    batch: Vec<Job>,
    worker: Option<Worker>,
    docs: Vec<Doc>,
    /// Every document's post id, one after the other.
    ids: String,
    spill: Option<Spill>,
    postings: Postings,
    /// `in:<name>` by channel number (set before adding posts).
    pub channel_terms: Vec<String>,
    /// (username, display name) by user number.
    users: Vec<(String, String)>,
    user_ids: HashMap<String, u32>,
    pages: Vec<String>,
    page_ids: HashMap<String, u32>,
    /// Usernames by user id, for `from:` (set before adding posts).
    pub usernames: HashMap<UserId, String>,
    /// Display names by user id, for showing hits.
    pub display_names: HashMap<UserId, String>,
}

impl IndexBuilder {
    fn page_id(&mut self, page: &str) -> u32 {
        if let Some(&id) = self.page_ids.get(page) {
            return id;
        }
        let id = self.pages.len() as u32;
        self.pages.push(page.to_owned());
        self.page_ids.insert(page.to_owned(), id);
        id
    }

    /// Adds a post living on `page` (and with its thread on `thread`: file names in the
    /// channel's directory, without anchors). The post is indexed on a thread of its own
    /// (see [`Worker`]), in the order added; an error there is returned by a later call or
    /// by [`IndexBuilder::write`].
    pub fn add(
        &mut self,
        post: &PostRecord,
        channel: u32,
        page: &str,
        thread: Option<&str>,
        has_file: bool,
        pinned: bool,
    ) -> io::Result<()> {
        self.batch.push(Job {
            id: post.id.to_string(),
            user_id: post.user_id.clone(),
            create_at: post.create_at,
            message: post.message.clone(),
            channel,
            page: page.to_owned(),
            thread: thread.map(str::to_owned),
            has_file,
            pinned,
        });
        if self.batch.len() >= JOB_BATCH {
            self.hand_over()?;
        }
        Ok(())
    }

    /// Hands the waiting posts to the worker, started on the first call with what the
    /// index knows so far (names and channels, set before posts are added).
    fn hand_over(&mut self) -> io::Result<()> {
        if self.worker.is_none() {
            let mut index = IndexBuilder {
                channel_terms: self.channel_terms.clone(),
                usernames: std::mem::take(&mut self.usernames),
                display_names: std::mem::take(&mut self.display_names),
                ..IndexBuilder::default()
            };
            let (jobs, queue) = std::sync::mpsc::sync_channel::<Vec<Job>>(JOBS_WAITING);
            let thread = std::thread::Builder::new()
                .name("site-index".into())
                .spawn(move || {
                    for batch in queue {
                        for job in &batch {
                            index.index(job)?;
                        }
                    }
                    Ok(index)
                })?;
            self.worker = Some(Worker { jobs, thread });
        }
        let batch = std::mem::take(&mut self.batch);
        let worker = self.worker.as_ref().expect("started above");
        if worker.jobs.send(batch).is_err() {
            // The worker stopped at an error: collect it.
            return self.finish_worker();
        }
        Ok(())
    }

    /// Waits for the worker to index every post handed over and takes its index back.
    fn finish_worker(&mut self) -> io::Result<()> {
        if !self.batch.is_empty() {
            if self.worker.is_none() {
                let batch = std::mem::take(&mut self.batch);
                for job in &batch {
                    self.index(job)?;
                }
                return Ok(());
            }
            self.hand_over()?;
        }
        let Some(Worker { jobs, thread }) = self.worker.take() else {
            return Ok(());
        };
        drop(jobs);
        let index = match thread.join() {
            Ok(index) => index?,
            Err(panic) => std::panic::resume_unwind(panic),
        };
        *self = IndexBuilder {
            channel_terms: std::mem::take(&mut self.channel_terms),
            ..index
        };
        Ok(())
    }

    /// Indexes one post (on the worker's thread).
    fn index(&mut self, post: &Job) -> io::Result<()> {
        let Job {
            channel,
            has_file,
            pinned,
            ..
        } = *post;
        let page = post.page.as_str();
        let thread = post.thread.as_deref();
        let seq = self.docs.len() as u32;
        let spill = match &mut self.spill {
            Some(spill) => spill,
            None => self.spill.insert(Spill::create()?),
        };
        let text_at = spill.push(&post.message)?;
        let username = self
            .usernames
            .get(&post.user_id)
            .cloned()
            .unwrap_or_else(|| post.user_id.to_string());
        let user = match self.user_ids.get(&username) {
            Some(&u) => u,
            None => {
                let u = self.users.len() as u32;
                let display = self
                    .display_names
                    .get(&post.user_id)
                    .cloned()
                    .unwrap_or_else(|| username.clone());
                self.users.push((username.clone(), display));
                self.user_ids.insert(username.clone(), u);
                u
            }
        };
        let page = self.page_id(page);
        let thread = thread.map_or(u32::MAX, |t| self.page_id(t));
        let from = format!("from:{}", username.to_lowercase());
        // Each term once per post (its list ends with this post after the first time); a term
        // is allocated only the first time any post has it.
        let postings = &mut self.postings;
        each_token(&post.message, |term| postings.add(term, seq));
        postings.add(&from, seq);
        // Channel names may repeat across teams: one `in:` term holds both.
        postings.add(&self.channel_terms[channel as usize], seq);
        if has_file {
            postings.add("has:file", seq);
        }
        if pinned {
            postings.add("is:pinned", seq);
        }
        postings.maybe_spill()?;
        let id_at = self.ids.len() as u32;
        self.ids.push_str(&post.id);
        self.docs.push(Doc {
            create_at: post.create_at,
            id_at,
            id_len: post.id.len() as u16,
            channel,
            user,
            page,
            thread,
            text_at,
            text_len: post.message.len() as u32,
        });
        Ok(())
    }

    fn id(&self, d: &Doc) -> &str {
        &self.ids[d.id_at as usize..d.id_at as usize + usize::from(d.id_len)]
    }

    /// Writes the index under `site/search/`; returns (files written, files kept).
    /// `channels` are (name for `in:`, display name, directory) by channel number.
    pub fn write(
        mut self,
        site: &Path,
        channels: &[(String, String, String)],
        tz: &jiff::tz::TimeZone,
    ) -> Result<(u64, u64), (PathBuf, std::io::Error)> {
        let spill_err = |e| (std::env::temp_dir(), e);
        self.finish_worker().map_err(spill_err)?;
        let texts = self
            .spill
            .take()
            .map(Spill::finish)
            .transpose()
            .map_err(spill_err)?;
        let dir = site.join("search");
        let mut out = Output {
            dir: dir.clone(),
            written: 0,
            kept: 0,
            files: Vec::new(),
        };
        // Global time order: old sequence → dense id.
        let mut order: Vec<u32> = (0..self.docs.len() as u32).collect();
        order.sort_by(|&a, &b| {
            let (a, b) = (&self.docs[a as usize], &self.docs[b as usize]);
            (a.create_at, self.id(a)).cmp(&(b.create_at, self.id(b)))
        });
        let mut new_id = vec![0u32; order.len()];
        for (id, &seq) in order.iter().enumerate() {
            new_id[seq as usize] = id as u32;
        }
        let terms = self.postings.distinct();
        let shard_bits = (1..=12).find(|b| terms >> b <= 300).unwrap_or(12);
        let mask = (1u32 << shard_bits) - 1;
        let mut prefixes: HashMap<String, Vec<(String, usize)>> = HashMap::new();
        // Chunk file names start with the term's hash; two frequent terms of the same hash
        // get distinct names (the shard entry carries the name), or one would overwrite the
        // other's postings. Such terms are in the same shard, so named in term order.
        let mut chunk_bases: HashSet<String> = HashSet::new();
        let mut written = vec![false; 1 << shard_bits];
        // The terms come back a shard at a time (postings::shard_key); a shard is written
        // once all its terms are in, its terms in order.
        let mut merged = std::mem::take(&mut self.postings).merged();
        // The document blocks on a thread of their own while this one writes the shards:
        // the two share nothing but the order of the documents.
        let this = &self;
        std::thread::scope(|scope| {
            let docs = scope.spawn(|| this.write_docs(&order, texts.as_ref(), tz, &dir));
            let mut shard: Vec<(String, Vec<u32>)> = Vec::new();
            loop {
                let next = merged.next_term().map_err(spill_err)?;
                if let Some((first, _)) = shard.first()
                    && next
                        .as_ref()
                        .is_none_or(|(term, _)| fnv1a(term) & mask != fnv1a(first) & mask)
                {
                    let n = fnv1a(first) & mask;
                    shard.sort_unstable_by(|a, b| a.0.cmp(&b.0));
                    let mut entries = Vec::with_capacity(shard.len());
                    for (term, seqs) in shard.drain(..) {
                        let mut ids: Vec<u32> = seqs.iter().map(|&s| new_id[s as usize]).collect();
                        drop(seqs);
                        ids.sort_unstable_by(|a, b| b.cmp(a));
                        ids.dedup();
                        let value = postings_value(&term, &ids, &mut chunk_bases, &mut out)?;
                        if !term.contains(':') {
                            let key: String = term.chars().take(2).collect();
                            prefixes
                                .entry(key)
                                .or_default()
                                .push((term.clone(), ids.len()));
                        }
                        entries.push((term, value));
                    }
                    write_shard(n, &entries, &mut out)?;
                    written[n as usize] = true;
                }
                match next {
                    Some(term) => shard.push(term),
                    None => break,
                }
            }
            drop(merged);
            for (n, _) in written.iter().enumerate().filter(|(_, w)| !**w) {
                write_shard(n as u32, &[], &mut out)?;
            }
            for terms in prefixes.values_mut() {
                terms.sort();
            }
            // One file per hash of a two-character key; keys of the same hash share it.
            let mut prefix_list: Vec<_> = prefixes.into_iter().collect();
            prefix_list.sort();
            let mut prefix_files: BTreeMap<u32, String> = BTreeMap::new();
            for (key, terms) in prefix_list {
                let body = prefix_files.entry(fnv1a(&key)).or_default();
                let _ = write!(body, "MB.prefix({},[", js_string(&key));
                for (i, (term, n)) in terms.iter().enumerate() {
                    if i > 0 {
                        body.push(',');
                    }
                    let _ = write!(body, "[{},{n}]", js_string(term));
                }
                body.push_str("]);\n");
            }
            for (hash, body) in prefix_files {
                out.file(&format!("p/{hash}.js"), body.as_bytes())?;
            }
            let (docs_out, days) = match docs.join() {
                Ok(done) => done?,
                Err(panic) => std::panic::resume_unwind(panic),
            };
            out.written += docs_out.written;
            out.kept += docs_out.kept;
            out.files.extend(docs_out.files);
            let mut meta = format!(
                "MB.meta({{\"bits\":{shard_bits},\"docs\":{},\"block\":{BLOCK},\"channels\":[",
                self.docs.len()
            );
            for (i, (name, display, dir)) in channels.iter().enumerate() {
                if i > 0 {
                    meta.push(',');
                }
                let _ = write!(
                    meta,
                    "[{},{},{}]",
                    js_string(name),
                    js_string(display),
                    js_string(dir)
                );
            }
            meta.push_str("],\"users\":[");
            for (i, (name, display)) in self.users.iter().enumerate() {
                if i > 0 {
                    meta.push(',');
                }
                let _ = write!(meta, "[{},{}]", js_string(name), js_string(display));
            }
            meta.push_str("],\"days\":[");
            for (i, (day, id)) in days.iter().enumerate() {
                if i > 0 {
                    meta.push(',');
                }
                let _ = write!(meta, "[\"{day}\",{id}]");
            }
            meta.push_str("]});\n");
            out.file("meta.js", meta.as_bytes())?;
            out.remove_stale();
            Ok((out.written, out.kept))
        })
    }

    /// Writes the document blocks (`d/`, `x/`) of the documents in `order` (their time
    /// order); returns what it wrote and the first document of each day.
    fn write_docs(
        &self,
        order: &[u32],
        texts: Option<&File>,
        tz: &jiff::tz::TimeZone,
        dir: &Path,
    ) -> Result<(Output, Days), (PathBuf, std::io::Error)> {
        let spill_err = |e| (std::env::temp_dir(), e);
        let mut out = Output {
            dir: dir.to_owned(),
            written: 0,
            kept: 0,
            files: Vec::new(),
        };
        // Document blocks.
        let mut days: Vec<(String, u32)> = Vec::new();
        let mut buf = Vec::new();
        for (block, ids) in order.chunks(BLOCK).enumerate() {
            let mut body = format!("MB.docs({block},[");
            let mut long = String::new();
            for (i, &seq) in ids.iter().enumerate() {
                let d = &self.docs[seq as usize];
                let text = match texts {
                    Some(file) => {
                        read_text(file, d.text_at, d.text_len, &mut buf).map_err(spill_err)?
                    }
                    None => String::new(),
                };
                let cut = text.char_indices().nth(TEXT_CHARS).map(|(at, _)| at);
                let id = (block * BLOCK + i) as u32;
                let day = super::pages::day_of(d.create_at, tz);
                if days.last().is_none_or(|(last, _)| *last != day) {
                    days.push((day, id));
                }
                if i > 0 {
                    body.push(',');
                }
                let _ = write!(
                    body,
                    "[{},{},{},{},{},{},{}]",
                    d.channel,
                    d.user,
                    d.create_at,
                    js_string(&self.pages[d.page as usize]),
                    if d.thread == u32::MAX {
                        "0".into()
                    } else {
                        js_string(&self.pages[d.thread as usize])
                    },
                    js_string(&super::safe_id(self.id(d))),
                    js_string(&text[..cut.unwrap_or(text.len())])
                );
                if cut.is_some() {
                    // Marked in the record; the whole text goes to the block's `x/` file.
                    body.insert_str(body.len() - 1, ",1");
                    let _ = write!(
                        long,
                        "{}{i}:{}",
                        if long.is_empty() { "" } else { "," },
                        js_string(&text)
                    );
                }
                buf = text.into_bytes();
            }
            body.push_str("]);\n");
            out.file(&format!("d/{block}.js"), body.as_bytes())?;
            if !long.is_empty() {
                let body = format!("MB.texts({block},{{{long}}});\n");
                out.file(&format!("x/{block}.js"), body.as_bytes())?;
            }
        }
        Ok((out, days))
    }
}

/// Each day with a document (`YYYY-MM-DD`) and the id of its first.
type Days = Vec<(String, u32)>;

/// A term's entry in its shard: its postings, or for a frequent term the list of its chunk
/// files (written here) with their id ranges.
fn postings_value(
    term: &str,
    ids: &[u32],
    chunk_bases: &mut HashSet<String>,
    out: &mut Output,
) -> Result<String, (PathBuf, io::Error)> {
    if ids.len() <= CHUNK {
        return Ok(js_string(&encode(ids)));
    }
    let hash = fnv1a(term);
    let mut base = format!("{hash:08x}");
    let mut n = 0;
    while !chunk_bases.insert(base.clone()) {
        n += 1;
        base = format!("{hash:08x}_{n}");
    }
    let mut ranges = String::from("[");
    for (k, chunk) in ids.chunks(CHUNK).enumerate() {
        let name = format!("{base}-{k}");
        let body = format!(
            "MB.chunk({},{});\n",
            js_string(&name),
            js_string(&encode(chunk))
        );
        out.file(&format!("c/{name}.js"), body.as_bytes())?;
        if k > 0 {
            ranges.push(',');
        }
        let _ = write!(ranges, "[{},{}]", chunk[0], chunk[chunk.len() - 1]);
    }
    ranges.push(']');
    Ok(format!(
        "{{\"n\":{},\"h\":\"{base}\",\"k\":{ranges}}}",
        ids.len()
    ))
}

/// `t/<n>.js`: the shard's terms (in order) and their entries.
fn write_shard(
    n: u32,
    entries: &[(String, String)],
    out: &mut Output,
) -> Result<(), (PathBuf, io::Error)> {
    let name = format!("{n:x}");
    let mut body = format!("MB.shard({},{{", js_string(&name));
    for (i, (term, value)) in entries.iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        let _ = write!(body, "{}:{value}", js_string(term));
    }
    body.push_str("});\n");
    out.file(&format!("t/{name}.js"), body.as_bytes())
}

/// Newest-first ids as base-36 deltas joined by `,` (the first is the id itself).
fn encode(ids: &[u32]) -> String {
    let mut out = String::with_capacity(ids.len() * 3);
    let mut prev = None;
    for &id in ids {
        if prev.is_some() {
            out.push(',');
        }
        let delta = prev.map_or(id, |p: u32| p - id);
        out.push_str(&base36(delta));
        prev = Some(id);
    }
    out
}

fn base36(mut n: u32) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    if n == 0 {
        return "0".into();
    }
    let mut buf = Vec::new();
    while n > 0 {
        buf.push(DIGITS[(n % 36) as usize]);
        n /= 36;
    }
    buf.reverse();
    String::from_utf8(buf).expect("ASCII")
}

/// A JSON string literal that is also safe inside a classic script: `<` is escaped so
/// no text can close the script element, and U+2028/2029 so older engines parse it.
pub fn js_string(text: &str) -> String {
    let json = serde_json::to_string(text).expect("strings serialize");
    json.replace('<', "\\u003c")
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029")
}

struct Output {
    dir: PathBuf,
    written: u64,
    kept: u64,
    files: Vec<String>,
}

impl Output {
    fn file(&mut self, rel: &str, bytes: &[u8]) -> Result<(), (PathBuf, std::io::Error)> {
        let path = self.dir.join(rel);
        self.files.push(rel.to_owned());
        if std::fs::read(&path).is_ok_and(|old| old == bytes) {
            self.kept += 1;
            return Ok(());
        }
        super::paths::write_file(&path, bytes).map_err(|e| (path, e))?;
        self.written += 1;
        Ok(())
    }

    /// Removes index files an earlier build wrote that this one did not.
    fn remove_stale(&self) {
        let keep: std::collections::HashSet<&str> = self.files.iter().map(String::as_str).collect();
        for sub in ["t", "c", "p", "d", "x"] {
            let Ok(entries) = std::fs::read_dir(self.dir.join(sub)) else {
                continue;
            };
            for entry in entries.flatten() {
                let name = entry.file_name();
                let rel = format!("{sub}/{}", name.to_string_lossy());
                if !keep.contains(rel.as_str()) {
                    let _ = std::fs::remove_file(entry.path());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::PostId;

    #[test]
    fn postings_are_newest_first_deltas_in_base36() {
        assert_eq!(encode(&[100, 64, 63, 0]), "2s,10,1,1r");
        assert_eq!(base36(35), "z");
    }

    #[test]
    fn tokens_split_at_punctuation_and_underscore_fold_case_and_accents() {
        let t = tokens("Deploy-v2 of Köln's API_key! Ça señor #incident_42 C++ 🎉");
        assert_eq!(
            t,
            [
                "deploy", "v2", "of", "koln", "s", "api", "key", "ca", "senor", "incident", "42",
                "c"
            ]
        );
        // Combining marks of other scripts separate words, as in SQLite's unicode61.
        let t = tokens("हिन्दी 会議は明日です");
        assert_eq!(t, ["ह", "न", "द", "会議は明日です"]);
    }

    #[test]
    fn fnv1a_matches_the_reference_values() {
        assert_eq!(fnv1a(""), 0x811c_9dc5);
        assert_eq!(fnv1a("a"), 0xe40c_292c);
    }

    /// Two frequent terms of the same hash keep their own chunks, and two prefix keys of the
    /// same hash both stay findable (before: the second file written replaced the first, and
    /// a search for the other term or prefix missed its posts).
    #[test]
    fn terms_and_prefixes_of_the_same_hash_keep_their_postings() {
        let (a, b) = ("11gvozfb", "6j3p2ap0");
        let (ka, kb) = ("\u{9749}\u{6948}", "\u{6a97}\u{78b8}");
        assert_eq!(fnv1a(a), fnv1a(b));
        assert_eq!(fnv1a(ka), fnv1a(kb));
        let mut index = IndexBuilder {
            channel_terms: vec!["in:x".into()],
            ..IndexBuilder::default()
        };
        for i in 0..(2 * CHUNK + 4) {
            let word = if i % 2 == 0 { a } else { b };
            let post = PostRecord {
                id: format!("p{i}").into(),
                root_id: PostId::default(),
                user_id: "u".into(),
                create_at: i as i64,
                update_at: i as i64,
                edit_at: 0,
                delete_at: 0,
                seen_live: true,
                kind: String::new(),
                message: format!("{word} {ka}x {kb}y"),
                json: String::new(),
            };
            index.add(&post, 0, "p.html", None, false, false).unwrap();
        }
        let dir = tempfile::tempdir().unwrap();
        index
            .write(
                dir.path(),
                &[("x".into(), "X".into(), "c/x".into())],
                &jiff::tz::TimeZone::UTC,
            )
            .unwrap();
        let read = |rel: &str| std::fs::read_to_string(dir.path().join("search").join(rel));
        let shards: String = std::fs::read_dir(dir.path().join("search/t"))
            .unwrap()
            .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
            .collect();
        let mut postings = 0;
        let mut bases = HashSet::new();
        for term in [a, b] {
            let at = shards.find(&format!("\"{term}\":{{")).expect(term);
            let entry = &shards[at..];
            let base = entry
                .split("\"h\":\"")
                .nth(1)
                .unwrap()
                .split('"')
                .next()
                .unwrap();
            assert!(bases.insert(base.to_owned()), "{base}");
            for k in 0..2 {
                let name = format!("{base}-{k}");
                let chunk = read(&format!("c/{name}.js")).unwrap();
                assert!(
                    chunk.starts_with(&format!("MB.chunk(\"{name}\"")),
                    "{chunk}"
                );
                postings += chunk.matches(',').count();
            }
        }
        // Every post is in one of the four chunks (ids separated by commas, one call each).
        assert_eq!(postings, 2 * CHUNK + 4);
        let prefixes = read(&format!("p/{}.js", fnv1a(ka))).unwrap();
        for key in [ka, kb] {
            assert!(
                prefixes.contains(&format!("MB.prefix(\"{key}\"")),
                "{prefixes}"
            );
        }
    }

    /// Every file under `dir`, by path.
    fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
        let mut out = BTreeMap::new();
        let mut todo = vec![dir.to_owned()];
        while let Some(d) = todo.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let path = e.unwrap().path();
                if path.is_dir() {
                    todo.push(path);
                } else {
                    let rel = path.strip_prefix(dir).unwrap().display().to_string();
                    out.insert(rel, std::fs::read(&path).unwrap());
                }
            }
        }
        out
    }

    /// An index whose postings went to disk in many small runs is the same, file for file
    /// and byte for byte, as one held in memory; texts longer than a record holds are whole
    /// in the block's `x/` file, and the record says so.
    #[test]
    fn postings_spilled_in_runs_write_the_same_index() {
        let build = |run_postings: usize| {
            let mut index = IndexBuilder {
                channel_terms: vec!["in:town".into(), "in:town".into(), "in:dev".into()],
                ..IndexBuilder::default()
            };
            index.postings.run_postings = run_postings;
            let words = [
                "alpha",
                "beta",
                "gamma",
                "Grüße",
                "会議",
                "zx_42",
                "C++",
                "ops@x.test",
            ];
            for i in 0..3_000usize {
                let mut message: String = (0..1 + i % 7)
                    .map(|k| format!("{} w{} ", words[(i * 7 + k) % words.len()], i % 401))
                    .collect();
                if i % 500 == 0 {
                    message.push_str(&"long ".repeat(100));
                    message.push_str("needle");
                }
                let post = PostRecord {
                    id: format!("p{i:05}").into(),
                    root_id: PostId::default(),
                    user_id: format!("u{}", i % 3).into(),
                    create_at: (i * 7919 % 3_000) as i64 * 1000,
                    update_at: 0,
                    edit_at: 0,
                    delete_at: 0,
                    seen_live: true,
                    kind: String::new(),
                    message,
                    json: String::new(),
                };
                index
                    .add(
                        &post,
                        (i % 3) as u32,
                        "1.html",
                        None,
                        i % 5 == 0,
                        i % 11 == 0,
                    )
                    .unwrap();
            }
            let dir = tempfile::tempdir().unwrap();
            let channels = [
                ("town".into(), "Town".into(), "c/a".into()),
                ("town".into(), "Town".into(), "c/b".into()),
                ("dev".into(), "Dev".into(), "c/c".into()),
            ];
            index
                .write(dir.path(), &channels, &jiff::tz::TimeZone::UTC)
                .unwrap();
            let runs = files(dir.path());
            (runs, dir)
        };
        let (whole, _a) = build(usize::MAX);
        let (spilled, _b) = build(700);
        assert_eq!(
            whole.keys().collect::<Vec<_>>(),
            spilled.keys().collect::<Vec<_>>()
        );
        for (path, bytes) in &whole {
            assert!(spilled[path] == *bytes, "{path} differs");
        }
        // Post 0 and every 500th: 500 more characters, "needle" last.
        let x: Vec<&String> = whole
            .keys()
            .filter(|p| p.starts_with("search/x/"))
            .collect();
        assert_eq!(x.len(), 6, "{x:?}");
        let all_x: String = x
            .iter()
            .map(|p| String::from_utf8_lossy(&whole[*p]).into_owned())
            .collect();
        assert_eq!(all_x.matches("needle").count(), 6);
        let docs: String = whole
            .iter()
            .filter(|(p, _)| p.starts_with("search/d/"))
            .map(|(_, b)| String::from_utf8_lossy(b).into_owned())
            .collect();
        assert_eq!(docs.matches("\",1]").count(), 6);
        assert!(!docs.contains("needle"));
    }

    #[test]
    fn js_strings_cannot_close_a_script() {
        let s = js_string("</script><script>alert(1)</script>\u{2028}");
        assert!(!s.contains('<'), "{s}");
        assert!(s.contains("\\u2028"));
    }
}
