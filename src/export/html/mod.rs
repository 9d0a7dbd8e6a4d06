//! `export --format html`: the archive as a website that works opened from disk (`file://`),
//! with no server and no network. A browser refuses `fetch`, XHR and ES modules there, so
//! everything reaches the page as plain HTML pages (readable with JavaScript off) or as
//! classic `<script>` files that call a callback (the search index, see [`search`]).
//!
//! Layout (all links relative):
//! - `index.html`: teams and channels, and the search (`index.html#q=<query>`);
//! - `c/<channel>/index.html`: header, purpose, members, pinned posts, pages by month;
//! - `c/<channel>/<YYYY-MM>[-N].html`: root posts of a month (at most [`PAGE_ROOTS`] roots
//!   or about [`PAGE_BYTES`]), each reply under its root in a collapsed list;
//! - `c/<channel>/t-<root>.html`: a thread (root and every reply);
//! - `u/<user>.html`; `f/<file>/<name>` attachments (hard links into the blob store where
//!   the filesystem allows, else copies); `e/` custom emojis; `assets/`; `search/`.
//!
//! Invariants: every post shown has the anchor `id="p-<post id>"` once in the channel pages
//! and once in its thread page; every string from the server is escaped (templates) or
//! rendered by [`markdown`], which keeps it inert; paths are built from ids checked to be
//! plain ASCII, never from names. Rebuilds are incremental: each page's inputs are hashed
//! into [`MANIFEST`], and a page whose hash is unchanged is neither rendered nor written.
//! Before that, each channel is fingerprinted from its row, members and sums of its rows
//! ([`Catalog::site_fingerprints`]); a channel whose fingerprint, context (users, emojis,
//! teams, channel names, options, format) and permalink targets' channels are those of the
//! last build keeps all its pages without its posts being read, so a rebuild after a no-op
//! sync reads no posts at all. Permalink targets are page inputs (a target's page can move).
//! Reads the catalog through named reads only, never SQL.

pub mod markdown;
pub mod search;

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io;
use std::path::{Path, PathBuf};

use askama::Template;
use serde_json::Value;

use crate::blobs::BlobStore;
use crate::catalog::{
    Access, Catalog, CatalogError, ImageOwnerRow, SiteChannel, SiteFile, SitePost, SiteReaction,
    SiteVersion, TeamRow,
};
use crate::outdir::{self, OutputDirError, OutputKind};
use markdown::{Names, UP};

/// The `outdir` kind of a site directory.
pub const SITE_KIND: OutputKind = OutputKind::Marked("site");
/// The build manifest: page path → hash of its inputs (JSON).
pub const MANIFEST: &str = ".matterbak-site.json";
/// At most this many root posts on one channel page.
pub const PAGE_ROOTS: usize = 500;
/// A page is closed once its posts' estimated HTML passes this many bytes.
pub const PAGE_BYTES: usize = 900_000;
/// Bumped when the HTML of pages changes, so a rebuild rewrites every page.
const SITE_FORMAT: &str = "matterbak-site-2";

#[derive(Debug, thiserror::Error)]
pub enum SiteError {
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error(transparent)]
    BlobStore(#[from] crate::blobs::BlobError),
    #[error(transparent)]
    OutputDir(#[from] OutputDirError),
    #[error("unknown time zone {name:?} (expected an IANA name such as Europe/Berlin)")]
    TimeZone {
        name: String,
        #[source]
        source: jiff::Error,
    },
    #[error("cannot write {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot render {what}")]
    Template {
        what: String,
        #[source]
        source: askama::Error,
    },
}

/// What `--deleted` chooses for posts deleted on the server.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DeletedPosts {
    /// Show their archived content, marked deleted.
    #[default]
    Mark,
    /// Leave them out of pages and search.
    Hide,
}

#[derive(Clone, Debug, Default)]
pub struct SiteOptions {
    pub deleted: DeletedPosts,
    /// IANA zone for times on pages; None: the machine's zone.
    pub tz: Option<String>,
    /// Load images linked from messages from their servers when viewed (off: links).
    pub remote_images: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct SiteReport {
    pub posts: u64,
    pub pages_written: u64,
    pub pages_kept: u64,
    pub pages_removed: u64,
    pub files_linked: u64,
    pub files_copied: u64,
    pub files_kept: u64,
    pub search_written: u64,
    pub search_kept: u64,
    /// Attachments, avatars and emojis whose bytes the archive does not hold.
    pub missing_blobs: Vec<String>,
}

/// Builds (or brings up to date) the site in `site` from the archive.
pub fn build_site(
    archive: &Path,
    site: &Path,
    options: &SiteOptions,
) -> Result<SiteReport, SiteError> {
    let tz = match &options.tz {
        Some(name) => jiff::tz::TimeZone::get(name).map_err(|source| SiteError::TimeZone {
            name: name.clone(),
            source,
        })?,
        None => jiff::tz::TimeZone::system(),
    };
    let catalog = Catalog::open(archive, Access::ReadOnly)?;
    outdir::claim_dir(site, SITE_KIND)?;
    let blobs = BlobStore::open_remembered(archive, catalog.blob_location()?)?;
    catalog.begin_snapshot()?;
    let result = Builder::new(&catalog, &blobs, site, options, tz).and_then(|mut b| {
        b.build()?;
        Ok(b.report)
    });
    catalog.end_snapshot()?;
    result
}

/// A path segment made from a server id: the id itself when it is plain ASCII, else a hash
/// (a hostile id can never name another directory).
pub fn safe_id(id: &str) -> String {
    if !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        id.to_owned()
    } else {
        format!("x{}", &blake3::hash(id.as_bytes()).to_hex()[..24])
    }
}

/// HTML-escapes text for element content and quoted attributes.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// Percent-encodes a path segment (a file name) for use in an `href`/`src`.
fn url_segment(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn channel_dir(id: &str) -> String {
    format!("c/{}", safe_id(id))
}

fn user_page(id: &str) -> String {
    format!("u/{}.html", safe_id(id))
}

fn thread_page(root: &str) -> String {
    format!("t-{}.html", safe_id(root))
}

fn human_size(bytes: i64) -> String {
    let b = bytes.max(0) as f64;
    match b {
        b if b >= 1e9 => format!("{:.1} GB", b / 1e9),
        b if b >= 1e6 => format!("{:.1} MB", b / 1e6),
        b if b >= 1e3 => format!("{:.1} kB", b / 1e3),
        _ => format!("{bytes} B"),
    }
}

/// A user as pages name them.
#[derive(Clone, Debug)]
struct Person {
    username: String,
    display: String,
    nickname: String,
    position: String,
    is_bot: bool,
    avatar: Option<String>,
}

impl Person {
    fn from_row(row: &ImageOwnerRow) -> Person {
        let v: Value = serde_json::from_str(&row.json).unwrap_or(Value::Null);
        let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
        let full = format!("{} {}", s("first_name"), s("last_name"))
            .trim()
            .to_owned();
        Person {
            username: row.name.clone(),
            display: if full.is_empty() {
                row.name.clone()
            } else {
                full
            },
            nickname: s("nickname"),
            position: s("position"),
            is_bot: v.get("is_bot").and_then(Value::as_bool).unwrap_or(false),
            avatar: None,
        }
    }
}

/// One channel page: its file name and the indices (into the channel's posts) of its roots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PagePlan {
    pub name: String,
    pub roots: Vec<usize>,
}

/// The channel's pages: roots grouped by month (in `tz`), a month split after
/// [`PAGE_ROOTS`] roots or about [`PAGE_BYTES`] of content (a root counts with its
/// replies). `replies[i]` lists the replies of root `i`. Depends on the posts only, so a
/// post keeps its page while later posts arrive.
pub fn plan_pages(
    posts: &[SitePost],
    is_root: &[bool],
    replies: &[Vec<usize>],
    tz: &jiff::tz::TimeZone,
) -> Vec<PagePlan> {
    let mut pages: Vec<PagePlan> = Vec::new();
    let mut month = String::new();
    let mut part = 0;
    let mut bytes = 0usize;
    for (i, post) in posts.iter().enumerate() {
        if !is_root[i] {
            continue;
        }
        let this_month = month_of(post.create_at, tz);
        let weight: usize = std::iter::once(i)
            .chain(replies[i].iter().copied())
            .map(|j| posts[j].message.len() * 2 + 600)
            .sum();
        let full = pages
            .last()
            .is_some_and(|p| p.roots.len() >= PAGE_ROOTS || bytes + weight > PAGE_BYTES);
        if this_month != month || full {
            part = if this_month == month { part + 1 } else { 1 };
            month = this_month.clone();
            let name = if part == 1 {
                format!("{month}.html")
            } else {
                format!("{month}-{part}.html")
            };
            pages.push(PagePlan {
                name,
                roots: Vec::new(),
            });
            bytes = 0;
        }
        bytes += weight;
        pages.last_mut().expect("pushed").roots.push(i);
    }
    pages
}

fn zoned(ms: i64, tz: &jiff::tz::TimeZone) -> jiff::ZonedDateTime {
    jiff::Timestamp::from_millisecond(ms)
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
        .to_zoned_datetime(tz.clone())
}

fn month_of(ms: i64, tz: &jiff::tz::TimeZone) -> String {
    zoned(ms, tz).strftime("%Y-%m").to_string()
}

fn day_of(ms: i64, tz: &jiff::tz::TimeZone) -> String {
    zoned(ms, tz).strftime("%Y-%m-%d").to_string()
}

fn time_text(ms: i64, tz: &jiff::tz::TimeZone) -> String {
    zoned(ms, tz).strftime("%Y-%m-%d %H:%M").to_string()
}

fn time_iso(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

// ---- templates -------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "site/base.html")]
struct BaseT<'a> {
    title: &'a str,
    up: &'a str,
    zone: &'a str,
    crumbs: &'a str,
    body: &'a str,
}

#[derive(Template)]
#[template(path = "site/post.html")]
struct PostT<'a> {
    p: &'a PostView,
}

#[derive(Template)]
#[template(path = "site/index.html")]
struct IndexT<'a> {
    groups: &'a [ChannelGroup],
}

#[derive(Template)]
#[template(path = "site/channel.html")]
struct ChannelT<'a> {
    c: &'a ChannelView,
}

#[derive(Template)]
#[template(path = "site/page.html")]
struct PageT<'a> {
    title: &'a str,
    index: &'a str,
    prev: Option<&'a str>,
    next: Option<&'a str>,
    days: &'a [DayView],
}

#[derive(Template)]
#[template(path = "site/user.html")]
struct UserT<'a> {
    person: &'a Person,
    avatar: Option<String>,
    posts: u64,
    query: String,
}

struct PostView {
    anchor: String,
    author: String,
    author_href: String,
    avatar: Option<String>,
    bot: bool,
    iso: String,
    time: String,
    body: String,
    system: bool,
    deleted: bool,
    pinned: bool,
    all_emoji: bool,
    edited: Option<String>,
    versions: Vec<(String, String)>,
    files: Vec<FileView>,
    reactions: Vec<ReactionView>,
    cards: String,
}

struct FileView {
    href: Option<String>,
    name: String,
    size: String,
    kind: &'static str,
}

struct ReactionView {
    emoji: String,
    count: usize,
    who: String,
}

struct ChannelGroup {
    title: String,
    channels: Vec<ChannelLine>,
}

struct ChannelLine {
    href: String,
    name: String,
    kind: &'static str,
    archived: bool,
    posts: u64,
    first: String,
    last: String,
}

struct ChannelView {
    name: String,
    kind: &'static str,
    archived: bool,
    header: String,
    purpose: String,
    members: Vec<(String, String)>,
    pinned: Vec<(String, String, String)>,
    months: Vec<(String, Vec<(String, String)>)>,
}

struct DayView {
    day: String,
    items: Vec<String>,
}

fn render<T: Template>(t: &T, what: impl Fn() -> String) -> Result<String, SiteError> {
    t.render().map_err(|source| SiteError::Template {
        what: what(),
        source,
    })
}

fn kind_name(kind: &str) -> &'static str {
    match kind {
        "O" => "public",
        "P" => "private",
        "D" => "direct",
        "G" => "group",
        _ => "other",
    }
}

// ---- builder ---------------------------------------------------------------------------

/// The previous build's manifest and the one being written.
#[derive(Default, serde::Serialize, serde::Deserialize)]
struct Manifest {
    format: String,
    pages: BTreeMap<String, String>,
    /// Hash of everything the search index is made from, and how many files it has.
    #[serde(default)]
    search: String,
    #[serde(default)]
    search_files: u64,
    /// Hash of what every page depends on (see [`Builder::load_names`]).
    #[serde(default)]
    context: String,
    /// Channel id → what its pages were built from.
    #[serde(default)]
    channels: BTreeMap<String, ChannelState>,
}

/// What a channel's pages were built from: when a rebuild finds the same, with the same
/// context and no channel its permalinks point into changed, every page of the channel is
/// kept without reading its posts.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
struct ChannelState {
    /// Hash of the channel's row, its members and the sums of its rows
    /// ([`Catalog::site_fingerprints`]).
    fingerprint: String,
    /// Directories (`c/<dir>`) of the channels its permalinks resolve into: their page
    /// plans are part of its pages.
    links: Vec<String>,
    /// Some `…/pl/<id>` resolved to no post: a post arriving anywhere may resolve it.
    open_links: bool,
    /// Posts shown.
    posts: u64,
}

struct Builder<'a> {
    catalog: &'a Catalog,
    blobs: &'a BlobStore,
    site: &'a Path,
    options: &'a SiteOptions,
    tz: jiff::tz::TimeZone,
    zone: String,
    report: SiteReport,
    old: Manifest,
    new: Manifest,
    /// Hash of everything every page depends on (names, options, format).
    context: blake3::Hash,
    names: Names,
    teams: Vec<TeamRow>,
    channels: Vec<SiteChannel>,
    people: HashMap<String, Person>,
    /// Channel id → fingerprint of this build.
    fingerprints: HashMap<String, String>,
    index: search::IndexBuilder,
    /// False when the search index's inputs are those of the last build (it is kept whole).
    index_needed: bool,
    /// Blob placement counts; pages render through `&self`, hence cells.
    linked: Cell<u64>,
    copied: Cell<u64>,
    kept: Cell<u64>,
    missing: RefCell<Vec<String>>,
}

impl<'a> Builder<'a> {
    fn new(
        catalog: &'a Catalog,
        blobs: &'a BlobStore,
        site: &'a Path,
        options: &'a SiteOptions,
        tz: jiff::tz::TimeZone,
    ) -> Result<Builder<'a>, SiteError> {
        let old = std::fs::read(site.join(MANIFEST))
            .ok()
            .and_then(|b| serde_json::from_slice::<Manifest>(&b).ok())
            .filter(|m| m.format == SITE_FORMAT)
            .unwrap_or_default();
        let zone = tz.iana_name().unwrap_or("local time").to_owned();
        Ok(Builder {
            catalog,
            blobs,
            site,
            options,
            tz,
            zone,
            report: SiteReport::default(),
            old,
            new: Manifest {
                format: SITE_FORMAT.into(),
                ..Manifest::default()
            },
            index_needed: true,
            context: blake3::hash(b""),
            names: Names {
                remote_images: options.remote_images,
                ..Names::default()
            },
            teams: Vec::new(),
            channels: Vec::new(),
            people: HashMap::new(),
            fingerprints: HashMap::new(),
            index: search::IndexBuilder::default(),
            linked: Cell::new(0),
            copied: Cell::new(0),
            kept: Cell::new(0),
            missing: RefCell::new(Vec::new()),
        })
    }

    fn build(&mut self) -> Result<(), SiteError> {
        self.load_names()?;
        self.write_asset(
            "assets/app.css",
            include_str!("../../../templates/site/app.css"),
        )?;
        self.write_asset(
            "assets/app.js",
            include_str!("../../../templates/site/app.js"),
        )?;
        let channels = std::mem::take(&mut self.channels);
        let clean = self.clean_channels(&channels)?;
        let all_clean = clean.iter().all(|c| *c);
        if !all_clean {
            self.load_permalinks(&channels)?;
        }
        for (n, channel) in channels.iter().enumerate() {
            if clean[n] {
                self.keep_channel(n, channel)?;
            } else {
                self.channel(n, channel)?;
            }
        }
        self.channels = channels;
        self.index_page()?;
        self.user_pages(all_clean)?;
        if !self.index_needed {
            self.report.search_kept = self.old.search_files;
            self.new.search_files = self.old.search_files;
            return self.finish();
        }
        let index = std::mem::take(&mut self.index);
        let channel_names: Vec<(String, String)> = self
            .channels
            .iter()
            .map(|c| (search_channel_name(c), c.display_name.clone()))
            .collect();
        let (written, kept) = index
            .write(self.site, &channel_names, &self.tz)
            .map_err(|(path, source)| SiteError::Write { path, source })?;
        self.report.search_written = written;
        self.report.search_kept = kept;
        self.new.search_files = written + kept;
        self.finish()
    }

    /// Names every message may refer to, the permalink targets of every post, and the
    /// context hash.
    fn load_names(&mut self) -> Result<(), SiteError> {
        let mut ctx = blake3::Hasher::new();
        ctx.update(SITE_FORMAT.as_bytes());
        ctx.update(env!("CARGO_PKG_VERSION").as_bytes());
        ctx.update(format!("{:?}{}", self.options, self.zone).as_bytes());
        self.teams = self.catalog.export_teams()?;
        for team in &self.teams {
            self.names.teams.insert(team.name.clone(), team.id.clone());
            ctx.update(team.name.as_bytes());
        }
        for user in self.catalog.export_users()? {
            let mut person = Person::from_row(&user);
            if let Some((blob, content_type)) = &user.image
                && let Some(ext) = crate::export::layout::image_extension(content_type)
            {
                let rel = format!("a/{}.{}", safe_id(&user.id), ext.as_str());
                if self.link_blob(&rel, blob, &format!("picture of user {}", user.name))? {
                    person.avatar = Some(rel);
                }
            }
            ctx.update(
                format!(
                    "{}{}{}{}{}{:?}",
                    person.username,
                    person.display,
                    person.nickname,
                    person.position,
                    person.is_bot,
                    person.avatar
                )
                .as_bytes(),
            );
            self.index
                .usernames
                .insert(user.id.clone(), user.name.clone());
            self.names.users.insert(
                user.name.to_lowercase(),
                (user_page(&user.id), person.display.clone()),
            );
            self.people.insert(user.id.clone(), person);
        }
        for emoji in self.catalog.export_emojis()? {
            if let Some((blob, content_type)) = &emoji.image
                && let Some(ext) = crate::export::layout::image_extension(content_type)
            {
                let rel = format!("e/{}.{}", safe_id(&emoji.id), ext.as_str());
                if self.link_blob(&rel, blob, &format!("image of emoji {}", emoji.name))? {
                    ctx.update(emoji.name.as_bytes());
                    ctx.update(rel.as_bytes());
                    self.names.emojis.insert(emoji.name.clone(), rel);
                }
            }
        }
        self.channels = self.catalog.site_channels()?;
        for c in &self.channels {
            // Only what other pages show of a channel: its counts and last post change
            // with every sync and must not rewrite every page.
            ctx.update(
                format!(
                    "{}{}{}{}{}\0",
                    c.id,
                    c.team_id,
                    c.name,
                    c.display_name,
                    c.delete_at > 0
                )
                .as_bytes(),
            );
            self.names
                .channels
                .entry(c.name.clone())
                .or_default()
                .push((
                    c.team_id.clone(),
                    format!("{}/index.html", channel_dir(&c.id)),
                ));
        }
        self.context = ctx.finalize();
        self.new.context = self.context.to_hex().to_string();
        Ok(())
    }

    /// Fingerprints every channel and says which ones keep all their pages: same context,
    /// same fingerprint, no channel their permalinks point into changed (nor any channel at
    /// all when one of their permalinks is unresolved), and every page still on disk. Also
    /// decides whether the search index is made again.
    fn clean_channels(&mut self, channels: &[SiteChannel]) -> Result<Vec<bool>, SiteError> {
        let sums = self.catalog.site_fingerprints()?;
        let mut search = blake3::Hasher::new();
        search.update(self.context.as_bytes());
        for c in channels {
            let mut h = blake3::Hasher::new();
            for part in [
                &c.id,
                &c.team_id,
                &c.kind,
                &c.name,
                &c.display_name,
                &c.json,
            ] {
                h.update(part.as_bytes());
                h.update(&[0]);
            }
            h.update(format!("{}{:?}\0", c.delete_at, c.export_name).as_bytes());
            for member in self.catalog.site_members(&c.id)? {
                h.update(member.as_bytes());
                h.update(&[0]);
            }
            for sum in sums.get(&c.id).into_iter().flatten() {
                h.update(&sum.to_le_bytes());
            }
            let fingerprint = h.finalize().to_hex().to_string();
            search.update(format!("{}\0{fingerprint}\0", c.id).as_bytes());
            self.fingerprints.insert(c.id.clone(), fingerprint);
        }
        self.new.search = search.finalize().to_hex().to_string();
        self.index_needed =
            self.old.search != self.new.search || !self.site.join("search/meta.js").is_file();

        let same_context = self.old.context == self.new.context;
        let changed: HashSet<String> = channels
            .iter()
            .filter(|c| {
                !same_context
                    || self
                        .old
                        .channels
                        .get(&c.id)
                        .is_none_or(|s| s.fingerprint != self.fingerprints[&c.id])
            })
            .map(|c| safe_id(&c.id))
            .collect();
        let dirs: HashSet<String> = channels.iter().map(|c| safe_id(&c.id)).collect();
        Ok(channels
            .iter()
            .map(|c| {
                let dir = safe_id(&c.id);
                let Some(state) = self.old.channels.get(&c.id) else {
                    return false;
                };
                !changed.contains(&dir)
                    && state
                        .links
                        .iter()
                        .all(|d| dirs.contains(d) && !changed.contains(d))
                    && (!state.open_links || changed.is_empty())
                    && self
                        .old_channel_pages(&c.id)
                        .all(|(rel, _)| self.site.join(rel).is_file())
            })
            .collect())
    }

    /// The previous build's pages of a channel (everything under its directory).
    fn old_channel_pages(&self, channel_id: &str) -> impl Iterator<Item = (&String, &String)> {
        let prefix = format!("{}/", channel_dir(channel_id));
        self.old
            .pages
            .range(prefix.clone()..)
            .take_while(move |(rel, _)| rel.starts_with(&prefix))
    }

    /// Permalink targets: every post's page, planned from the same rows as the pages.
    fn load_permalinks(&mut self, channels: &[SiteChannel]) -> Result<(), SiteError> {
        for c in channels {
            let posts = self.visible_posts(&c.id)?;
            let (is_root, replies) = threads(&posts);
            let dir = channel_dir(&c.id);
            for page in plan_pages(&posts, &is_root, &replies, &self.tz) {
                for &r in &page.roots {
                    for j in std::iter::once(r).chain(replies[r].iter().copied()) {
                        let p = &posts[j];
                        let href = format!("{dir}/{}#p-{}", page.name, safe_id(&p.id));
                        self.names.posts.insert(p.id.clone(), href);
                    }
                }
            }
        }
        Ok(())
    }

    /// Keeps every page of a clean channel; reads its posts only when the search index is
    /// made again (another channel changed).
    fn keep_channel(&mut self, n: usize, channel: &SiteChannel) -> Result<(), SiteError> {
        let kept: Vec<(String, String)> = self
            .old_channel_pages(&channel.id)
            .map(|(rel, hash)| (rel.clone(), hash.clone()))
            .collect();
        self.report.pages_kept += kept.len() as u64;
        self.new.pages.extend(kept);
        let state = self.old.channels[&channel.id].clone();
        self.report.posts += state.posts;
        self.new.channels.insert(channel.id.clone(), state);
        if self.index_needed {
            let posts = self.visible_posts(&channel.id)?;
            let files = group_by(self.catalog.site_files(&channel.id)?, |f: &SiteFile| {
                f.post_id.clone()
            });
            let (is_root, replies) = threads(&posts);
            let pages = plan_pages(&posts, &is_root, &replies, &self.tz);
            for page in &pages {
                self.index_page_posts(n, channel, page, &posts, &replies, &files);
            }
        }
        Ok(())
    }

    /// Adds the posts of one channel page to the search index.
    fn index_page_posts(
        &mut self,
        n: usize,
        channel: &SiteChannel,
        page: &PagePlan,
        posts: &[SitePost],
        replies: &[Vec<usize>],
        files: &HashMap<String, Vec<SiteFile>>,
    ) {
        let dir = channel_dir(&channel.id);
        let page_href = format!("{dir}/{}", page.name);
        for &r in &page.roots {
            let thread =
                (!replies[r].is_empty()).then(|| format!("{dir}/{}", thread_page(&posts[r].id)));
            for j in std::iter::once(r).chain(replies[r].iter().copied()) {
                let post = &posts[j];
                self.index.add(
                    post,
                    n as u32,
                    &page_href,
                    thread.as_deref(),
                    files.contains_key(&post.id),
                    is_pinned(post),
                );
            }
        }
    }

    fn visible_posts(&self, channel_id: &str) -> Result<Vec<SitePost>, SiteError> {
        let mut posts = self.catalog.site_posts(channel_id)?;
        if self.options.deleted == DeletedPosts::Hide {
            posts.retain(|p| p.delete_at == 0);
        }
        Ok(posts)
    }

    fn channel(&mut self, n: usize, channel: &SiteChannel) -> Result<(), SiteError> {
        let posts = self.visible_posts(&channel.id)?;
        let files = group_by(self.catalog.site_files(&channel.id)?, |f: &SiteFile| {
            f.post_id.clone()
        });
        let reactions = group_by(
            self.catalog.site_reactions(&channel.id)?,
            |r: &SiteReaction| r.post_id.clone(),
        );
        let versions = group_by(
            self.catalog.site_versions(&channel.id)?,
            |v: &SiteVersion| v.post_id.clone(),
        );
        let (is_root, replies) = threads(&posts);
        let pages = plan_pages(&posts, &is_root, &replies, &self.tz);
        let dir = channel_dir(&channel.id);

        // Inputs of each post, hashed once; pages combine them. A permalink's target page
        // is an input too, and where it points is remembered for the next build.
        let mut links = Links::default();
        links.scan(&channel.json, &self.names);
        let hashes: Vec<blake3::Hash> = posts
            .iter()
            .map(|p| {
                let mut h = blake3::Hasher::new();
                h.update(links.scan(&p.message, &self.names).as_bytes());
                h.update(links.scan(&p.json, &self.names).as_bytes());
                for part in [&p.id, &p.message, &p.json, &p.kind] {
                    h.update(part.as_bytes());
                    h.update(&[0]);
                }
                for v in [p.update_at, p.edit_at, p.delete_at] {
                    h.update(&v.to_le_bytes());
                }
                for f in files.get(&p.id).into_iter().flatten() {
                    h.update(format!("{}{}{:?}", f.id, f.name, f.blob).as_bytes());
                }
                for r in reactions.get(&p.id).into_iter().flatten() {
                    h.update(format!("{}{}", r.user_id, r.emoji_name).as_bytes());
                }
                for v in versions.get(&p.id).into_iter().flatten() {
                    h.update(v.message.as_bytes());
                    h.update(links.scan(&v.message, &self.names).as_bytes());
                }
                h.finalize()
            })
            .collect();

        let team_id = channel.team_id.clone();
        let rows = ChannelRows {
            posts: &posts,
            files: &files,
            reactions: &reactions,
            versions: &versions,
            team_id: &team_id,
            rendered: RefCell::new(HashMap::new()),
        };
        let mut pinned = Vec::new();
        let page_names: Vec<&str> = pages.iter().map(|p| p.name.as_str()).collect();
        for (k, page) in pages.iter().enumerate() {
            let mut h = blake3::Hasher::new();
            h.update(self.context.as_bytes());
            h.update(
                format!(
                    "{:?}{:?}",
                    page_names.get(k.wrapping_sub(1)),
                    page_names.get(k + 1)
                )
                .as_bytes(),
            );
            for &r in &page.roots {
                h.update(hashes[r].as_bytes());
                for &j in &replies[r] {
                    h.update(hashes[j].as_bytes());
                }
            }
            if self.index_needed {
                self.index_page_posts(n, channel, page, &posts, &replies, &files);
            }
            for &r in &page.roots {
                for j in std::iter::once(r).chain(replies[r].iter().copied()) {
                    let post = &posts[j];
                    self.report.posts += 1;
                    if is_pinned(post) {
                        pinned.push((
                            format!("{}#p-{}", page.name, safe_id(&post.id)),
                            self.author_name(post),
                            snippet(&post.message),
                        ));
                    }
                }
            }
            let rel = format!("{dir}/{}", page.name);
            let hash = h.finalize().to_hex().to_string();
            if self.keep(&rel, &hash) {
                continue;
            }
            let mut days: Vec<DayView> = Vec::new();
            for &r in &page.roots {
                let day = day_of(posts[r].create_at, &self.tz);
                let mut item = self.post_html(&rows, r)?;
                if !replies[r].is_empty() {
                    item.push_str(&self.replies_html(&rows, r, &replies[r])?);
                }
                match days.last_mut() {
                    Some(d) if d.day == day => d.items.push(item),
                    _ => days.push(DayView {
                        day,
                        items: vec![item],
                    }),
                }
            }
            let title = format!(
                "{} · {}",
                channel_title(channel),
                page.name.trim_end_matches(".html")
            );
            let body = render(
                &PageT {
                    title: &title,
                    index: "index.html",
                    prev: k.checked_sub(1).map(|i| page_names[i]),
                    next: page_names.get(k + 1).copied(),
                    days: &days,
                },
                || rel.clone(),
            )?;
            self.page(&rel, &hash, &title, UP, &self.crumbs(channel), &body)?;
        }
        // Thread pages.
        for (r, reps) in replies.iter().enumerate() {
            if reps.is_empty() || !is_root[r] {
                continue;
            }
            let mut h = blake3::Hasher::new();
            h.update(self.context.as_bytes());
            h.update(b"thread");
            h.update(
                self.names
                    .posts
                    .get(&posts[r].id)
                    .map_or("", String::as_str)
                    .as_bytes(),
            );
            h.update(hashes[r].as_bytes());
            for &j in reps {
                h.update(hashes[j].as_bytes());
            }
            let rel = format!("{dir}/{}", thread_page(&posts[r].id));
            let hash = h.finalize().to_hex().to_string();
            if self.keep(&rel, &hash) {
                continue;
            }
            let mut items = Vec::new();
            for j in std::iter::once(r).chain(reps.iter().copied()) {
                items.push(self.post_html(&rows, j)?);
            }
            let back = self
                .names
                .posts
                .get(&posts[r].id)
                .cloned()
                .unwrap_or_default();
            let title = format!("Thread in {}", channel_title(channel));
            let days = [DayView {
                day: format!("{} replies", reps.len()),
                items,
            }];
            let body = render(
                &PageT {
                    title: &title,
                    index: back.rsplit('/').next().unwrap_or("index.html"),
                    prev: None,
                    next: None,
                    days: &days,
                },
                || rel.clone(),
            )?;
            self.page(&rel, &hash, &title, UP, &self.crumbs(channel), &body)?;
        }
        self.new.channels.insert(
            channel.id.clone(),
            ChannelState {
                fingerprint: self.fingerprints[&channel.id].clone(),
                links: links.dirs.into_iter().collect(),
                open_links: links.open,
                posts: posts.len() as u64,
            },
        );
        self.channel_index(channel, &pages, &posts, pinned)
    }

    fn channel_index(
        &mut self,
        channel: &SiteChannel,
        pages: &[PagePlan],
        posts: &[SitePost],
        pinned: Vec<(String, String, String)>,
    ) -> Result<(), SiteError> {
        let dir = channel_dir(&channel.id);
        let v: Value = serde_json::from_str(&channel.json).unwrap_or(Value::Null);
        let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
        let members: Vec<(String, String)> = self
            .catalog
            .site_members(&channel.id)?
            .iter()
            .map(|id| {
                let name = self
                    .people
                    .get(id)
                    .map_or_else(|| id.clone(), |p| p.display.clone());
                (format!("{UP}{}", user_page(id)), name)
            })
            .collect();
        let mut months: Vec<(String, Vec<(String, String)>)> = Vec::new();
        for page in pages {
            let month = month_of(posts[page.roots[0]].create_at, &self.tz);
            let label = format!("{} roots", page.roots.len());
            match months.last_mut() {
                Some((m, list)) if *m == month => list.push((page.name.clone(), label)),
                _ => months.push((month, vec![(page.name.clone(), label)])),
            }
        }
        let view = ChannelView {
            name: channel_title(channel),
            kind: kind_name(&channel.kind),
            archived: channel.delete_at > 0,
            header: markdown::render(&s("header"), &self.names, &channel.team_id),
            purpose: s("purpose"),
            members,
            pinned,
            months,
        };
        let mut h = blake3::Hasher::new();
        h.update(self.context.as_bytes());
        h.update(
            format!(
                "{:?}{:?}{:?}{}{}{}{}",
                view.members,
                view.pinned,
                view.months,
                view.header,
                view.purpose,
                view.name,
                view.archived
            )
            .as_bytes(),
        );
        let rel = format!("{dir}/index.html");
        let hash = h.finalize().to_hex().to_string();
        if self.keep(&rel, &hash) {
            return Ok(());
        }
        let body = render(&ChannelT { c: &view }, || rel.clone())?;
        let crumbs = self.crumbs(channel);
        self.page(&rel, &hash, &view.name, UP, &crumbs, &body)
    }

    fn crumbs(&self, channel: &SiteChannel) -> String {
        format!(
            "<a href=\"index.html\">{}</a>",
            escape(&channel_title(channel))
        )
    }

    fn author_name(&self, post: &SitePost) -> String {
        override_username(post)
            .or_else(|| self.people.get(&post.user_id).map(|p| p.display.clone()))
            .unwrap_or_else(|| post.user_id.clone())
    }

    fn replies_html(
        &self,
        rows: &ChannelRows<'_>,
        root: usize,
        replies: &[usize],
    ) -> Result<String, SiteError> {
        let posts = rows.posts;
        let last = posts[*replies.last().expect("non-empty")].create_at;
        let mut participants: Vec<String> = Vec::new();
        for &j in replies {
            let name = self.author_name(&posts[j]);
            if !participants.contains(&name) {
                participants.push(name);
            }
        }
        let mut out = format!(
            "<details class=\"replies\"><summary>{} repl{} · last reply {} · {}</summary>",
            replies.len(),
            if replies.len() == 1 { "y" } else { "ies" },
            escape(&time_text(last, &self.tz)),
            escape(&participants.join(", "))
        );
        for &j in replies {
            out.push_str(&self.post_html(rows, j)?);
        }
        out.push_str(&format!(
            "<a class=\"thread-link\" href=\"{}\">Open thread</a></details>",
            thread_page(&posts[root].id)
        ));
        Ok(out)
    }

    /// A post's HTML, rendered once per build (a reply shows in its channel page and its
    /// thread page alike: both sit at the same depth).
    fn post_html(&self, rows: &ChannelRows<'_>, i: usize) -> Result<String, SiteError> {
        if let Some(html) = rows.rendered.borrow().get(&i) {
            return Ok(html.clone());
        }
        let ChannelRows {
            posts,
            files,
            reactions,
            versions,
            team_id,
            ..
        } = *rows;
        let post = &posts[i];
        let person = self.people.get(&post.user_id);
        let props: Option<Value> = (post.json.contains("\"attachments\"")
            || post.json.contains("\"from_"))
        .then(|| serde_json::from_str::<Value>(&post.json).ok())
        .flatten()
        .and_then(|v| v.get("props").cloned());
        let bot = person.is_some_and(|p| p.is_bot)
            || props.as_ref().is_some_and(|p| {
                p.get("from_bot").is_some_and(|v| v == "true" || v == true)
                    || p.get("from_webhook")
                        .is_some_and(|v| v == "true" || v == true)
            });
        let mut file_views = Vec::new();
        for f in files.get(&post.id).into_iter().flatten() {
            file_views.push(self.file_view(f)?);
        }
        let mut grouped: Vec<(String, Vec<String>)> = Vec::new();
        for r in reactions.get(&post.id).into_iter().flatten() {
            let who = self
                .people
                .get(&r.user_id)
                .map_or_else(|| r.user_id.clone(), |p| p.display.clone());
            match grouped.iter_mut().find(|(e, _)| *e == r.emoji_name) {
                Some((_, list)) => list.push(who),
                None => grouped.push((r.emoji_name.clone(), vec![who])),
            }
        }
        let view = PostView {
            anchor: format!("p-{}", safe_id(&post.id)),
            author: self.author_name(post),
            author_href: format!("{UP}{}", user_page(&post.user_id)),
            avatar: person
                .and_then(|p| p.avatar.as_ref())
                .map(|a| format!("{UP}{a}")),
            bot,
            iso: time_iso(post.create_at),
            time: time_text(post.create_at, &self.tz),
            body: markdown::render(&post.message, &self.names, team_id),
            system: post.kind.starts_with("system_"),
            deleted: post.delete_at > 0,
            pinned: is_pinned(post),
            all_emoji: markdown::all_emoji(&post.message, &self.names),
            edited: (post.edit_at > 0).then(|| time_text(post.edit_at, &self.tz)),
            versions: versions
                .get(&post.id)
                .into_iter()
                .flatten()
                .map(|v| {
                    (
                        time_text(v.replaced_at, &self.tz),
                        markdown::render(&v.message, &self.names, team_id),
                    )
                })
                .collect(),
            files: file_views,
            reactions: grouped
                .into_iter()
                .map(|(name, who)| ReactionView {
                    emoji: markdown::emoji(&name, &self.names)
                        .unwrap_or_else(|| format!(":{}:", escape(&name))),
                    count: who.len(),
                    who: who.join(", "),
                })
                .collect(),
            cards: props
                .as_ref()
                .and_then(|p| p.get("attachments"))
                .map(|a| self.cards(a, team_id))
                .unwrap_or_default(),
        };
        let html = render(&PostT { p: &view }, || format!("post {}", post.id))?;
        rows.rendered.borrow_mut().insert(i, html.clone());
        Ok(html)
    }

    /// Bot and webhook `props.attachments` as cards (Slack's message attachments).
    fn cards(&self, attachments: &Value, team_id: &str) -> String {
        let Some(list) = attachments.as_array() else {
            return String::new();
        };
        let mut out = String::new();
        let text = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
        for a in list {
            let color = text(a, "color");
            let color = if color.starts_with('#')
                && color.len() <= 7
                && color[1..].bytes().all(|b| b.is_ascii_hexdigit())
            {
                color
            } else {
                String::from("#888")
            };
            out.push_str(&format!(
                "<div class=\"card\" style=\"border-left-color:{color}\">"
            ));
            let pretext = text(a, "pretext");
            if !pretext.is_empty() {
                out.push_str(&markdown::render(&pretext, &self.names, team_id));
            }
            let author = text(a, "author_name");
            if !author.is_empty() {
                out.push_str(&format!(
                    "<div class=\"card-author\">{}</div>",
                    escape(&author)
                ));
            }
            let title = text(a, "title");
            if !title.is_empty() {
                let link = text(a, "title_link");
                let safe = link.starts_with("https://") || link.starts_with("http://");
                if safe {
                    out.push_str(&format!(
                        "<div class=\"card-title\"><a href=\"{}\" rel=\"noopener noreferrer\">{}</a></div>",
                        escape(&link),
                        escape(&title)
                    ));
                } else {
                    out.push_str(&format!(
                        "<div class=\"card-title\">{}</div>",
                        escape(&title)
                    ));
                }
            }
            let body = text(a, "text");
            if !body.is_empty() {
                out.push_str(&markdown::render(&body, &self.names, team_id));
            }
            if let Some(fields) = a.get("fields").and_then(Value::as_array) {
                out.push_str("<div class=\"card-fields\">");
                for f in fields {
                    let short = f.get("short").and_then(Value::as_bool).unwrap_or(false);
                    let value = match f.get("value") {
                        Some(Value::String(s)) => s.clone(),
                        Some(Value::Null) | None => String::new(),
                        Some(other) => other.to_string(),
                    };
                    out.push_str(&format!(
                        "<div class=\"card-field{}\"><b>{}</b>{}</div>",
                        if short { " short" } else { "" },
                        escape(&text(f, "title")),
                        markdown::render(&value, &self.names, team_id)
                    ));
                }
                out.push_str("</div>");
            }
            let image = text(a, "image_url");
            if !image.is_empty() {
                out.push_str(&markdown::render(
                    &format!("![image]({image})"),
                    &self.names,
                    team_id,
                ));
            }
            let footer = text(a, "footer");
            if !footer.is_empty() {
                out.push_str(&format!(
                    "<div class=\"card-footer\">{}</div>",
                    escape(&footer)
                ));
            }
            out.push_str("</div>");
        }
        out
    }

    fn file_view(&self, f: &SiteFile) -> Result<FileView, SiteError> {
        let name = crate::export::layout::safe_name(&f.name, 0).into_owned();
        let name = if name.is_empty() {
            "file".to_owned()
        } else {
            name
        };
        let rel = format!("f/{}/{}", safe_id(&f.id), name);
        let href = match &f.blob {
            Some(blob) => {
                // Files are linked while pages render, so a kept page still has its files.
                self.link_blob_shared(&rel, blob, &format!("file {} ({})", f.id, f.name))?
                    .then(|| format!("{UP}f/{}/{}", safe_id(&f.id), url_segment(&name)))
            }
            None => None,
        };
        let kind = match f.mime_type.split('/').next() {
            Some("image") if href.is_some() => "image",
            Some("video") if href.is_some() => "video",
            Some("audio") if href.is_some() => "audio",
            _ => "file",
        };
        Ok(FileView {
            href,
            name: f.name.clone(),
            size: human_size(f.size),
            kind,
        })
    }

    fn link_blob(
        &mut self,
        rel: &str,
        blob: &crate::model::BlobId,
        what: &str,
    ) -> Result<bool, SiteError> {
        self.link_blob_shared(rel, blob, what)
    }

    /// Puts a blob at `rel`: kept when a file of the same size is there, else a hard link
    /// into the blob store, else a copy. A blob missing from the store is reported.
    fn link_blob_shared(
        &self,
        rel: &str,
        blob: &crate::model::BlobId,
        what: &str,
    ) -> Result<bool, SiteError> {
        let dest = self.site.join(rel);
        // A bucket that keeps failing stops the build rather than leave the file out.
        let Some(size) = self.blobs.stored_size(blob)? else {
            self.missing
                .borrow_mut()
                .push(format!("{what}: blob {blob} missing from the store"));
            return Ok(false);
        };
        if std::fs::metadata(&dest).is_ok_and(|m| m.len() == size) {
            self.kept.set(self.kept.get() + 1);
            return Ok(true);
        }
        let fail = |source| SiteError::Write {
            path: dest.clone(),
            source,
        };
        std::fs::create_dir_all(dest.parent().expect("has a parent")).map_err(fail)?;
        let _ = std::fs::remove_file(&dest);
        let source = self.blobs.local_path(blob);
        if source
            .as_ref()
            .is_some_and(|source| std::fs::hard_link(source, &dest).is_ok())
        {
            self.linked.set(self.linked.get() + 1);
        } else {
            // Blobs in a bucket (or on another file system) are copied, streamed.
            let mut reader = self.blobs.open_blob(blob)?;
            let mut file = std::fs::File::create(&dest).map_err(fail)?;
            std::io::copy(&mut reader, &mut file).map_err(fail)?;
            self.copied.set(self.copied.get() + 1);
        }
        Ok(true)
    }

    fn index_page(&mut self) -> Result<(), SiteError> {
        let mut groups: Vec<ChannelGroup> = Vec::new();
        for team in &self.teams {
            let v: Value = serde_json::from_str(&team.json).unwrap_or(Value::Null);
            let display = v
                .get("display_name")
                .and_then(Value::as_str)
                .unwrap_or(&team.name)
                .to_owned();
            groups.push(ChannelGroup {
                title: display,
                channels: self
                    .channels
                    .iter()
                    .filter(|c| c.team_id == team.id)
                    .map(|c| self.channel_line(c))
                    .collect(),
            });
        }
        for (kind, title) in [("D", "Direct messages"), ("G", "Group messages")] {
            let channels: Vec<ChannelLine> = self
                .channels
                .iter()
                .filter(|c| c.kind == kind)
                .map(|c| self.channel_line(c))
                .collect();
            if !channels.is_empty() {
                groups.push(ChannelGroup {
                    title: title.into(),
                    channels,
                });
            }
        }
        let body = render(&IndexT { groups: &groups }, || "index.html".into())?;
        let hash = self.body_hash(&body);
        if self.keep("index.html", &hash) {
            return Ok(());
        }
        self.page("index.html", &hash, "Mattermost archive", "", "", &body)
    }

    fn channel_line(&self, c: &SiteChannel) -> ChannelLine {
        ChannelLine {
            href: format!("{}/index.html", channel_dir(&c.id)),
            name: channel_title(c),
            kind: kind_name(&c.kind),
            archived: c.delete_at > 0,
            posts: c.posts,
            first: if c.posts > 0 {
                day_of(c.first_at, &self.tz)
            } else {
                String::new()
            },
            last: if c.posts > 0 {
                day_of(c.last_at, &self.tz)
            } else {
                String::new()
            },
        }
    }

    /// User pages; when no channel changed (nor the context, which holds the users), their
    /// post counts are the same and every page is kept without counting.
    fn user_pages(&mut self, all_clean: bool) -> Result<(), SiteError> {
        let mut ids: Vec<String> = self.people.keys().cloned().collect();
        ids.sort();
        if all_clean && self.old.context == self.new.context {
            let kept: Option<Vec<(String, String)>> = ids
                .iter()
                .map(|id| {
                    let rel = user_page(id);
                    let hash = self.old.pages.get(&rel)?.clone();
                    self.site.join(&rel).is_file().then_some((rel, hash))
                })
                .collect();
            if let Some(kept) = kept {
                self.report.pages_kept += kept.len() as u64;
                self.new.pages.extend(kept);
                return Ok(());
            }
        }
        let counts = self
            .catalog
            .site_post_counts(self.options.deleted == DeletedPosts::Hide)?;
        let mut pages = Vec::new();
        for id in &ids {
            let person = &self.people[id];
            let posts = counts.get(id).copied().unwrap_or(0);
            let t = UserT {
                person,
                avatar: person.avatar.as_ref().map(|a| format!("../{a}")),
                posts,
                query: url_segment(&format!("from:{}", person.username)),
            };
            let body = render(&t, || format!("user {id}"))?;
            pages.push((user_page(id), person.display.clone(), body));
        }
        for (rel, title, body) in pages {
            let hash = self.body_hash(&body);
            if self.keep(&rel, &hash) {
                continue;
            }
            self.page(&rel, &hash, &title, "../", "", &body)?;
        }
        Ok(())
    }

    /// A page's hash from its rendered body and the context (the zone every page states).
    fn body_hash(&self, body: &str) -> String {
        let mut h = blake3::Hasher::new();
        h.update(self.context.as_bytes());
        h.update(body.as_bytes());
        h.finalize().to_hex().to_string()
    }

    /// Whether the page at `rel` is up to date (same input hash, file present); records it.
    fn keep(&mut self, rel: &str, hash: &str) -> bool {
        let same =
            self.old.pages.get(rel).is_some_and(|h| h == hash) && self.site.join(rel).is_file();
        if same {
            self.new.pages.insert(rel.to_owned(), hash.to_owned());
            self.report.pages_kept += 1;
        }
        same
    }

    fn page(
        &mut self,
        rel: &str,
        hash: &str,
        title: &str,
        up: &str,
        crumbs: &str,
        body: &str,
    ) -> Result<(), SiteError> {
        let html = render(
            &BaseT {
                title,
                up,
                zone: &self.zone,
                crumbs,
                body,
            },
            || rel.to_owned(),
        )?;
        self.write(rel, html.as_bytes())?;
        self.new.pages.insert(rel.to_owned(), hash.to_owned());
        self.report.pages_written += 1;
        Ok(())
    }

    fn write_asset(&mut self, rel: &str, text: &str) -> Result<(), SiteError> {
        let hash = blake3::hash(text.as_bytes()).to_hex().to_string();
        if !self.keep(rel, &hash) {
            self.write(rel, text.as_bytes())?;
            self.new.pages.insert(rel.to_owned(), hash);
            self.report.pages_written += 1;
        }
        Ok(())
    }

    fn write(&self, rel: &str, bytes: &[u8]) -> Result<(), SiteError> {
        let path = self.site.join(rel);
        write_file(&path, bytes).map_err(|source| SiteError::Write { path, source })
    }

    /// Removes pages of the previous build that this build no longer has, then writes the
    /// manifest (last, so an interrupted build is redone where it stopped).
    fn finish(&mut self) -> Result<(), SiteError> {
        for rel in self.old.pages.keys() {
            if self.new.pages.contains_key(rel) || !is_plain_relative(rel) {
                continue;
            }
            if std::fs::remove_file(self.site.join(rel)).is_ok() {
                self.report.pages_removed += 1;
            }
        }
        self.report.files_linked = self.linked.get();
        self.report.files_copied = self.copied.get();
        self.report.files_kept = self.kept.get();
        self.report.missing_blobs = self.missing.take();
        let json = serde_json::to_vec(&self.new).expect("manifest serializes");
        self.write(MANIFEST, &json)
    }
}

/// Where a channel's permalinks (`…/pl/<post id>`) point.
#[derive(Default)]
struct Links {
    /// Directories of the channels holding their targets.
    dirs: std::collections::BTreeSet<String>,
    /// One resolved to no post.
    open: bool,
}

impl Links {
    /// Finds the permalinks in `text` and returns where they resolve to (for a page hash).
    /// Markdown reads the post id as the URL's last segment, after trailing punctuation is
    /// cut; every prefix of the characters after `/pl/` that names a post is taken, so no
    /// reading of the URL can resolve to a target missed here.
    fn scan(&mut self, text: &str, names: &Names) -> String {
        let mut out = String::new();
        let mut rest = text;
        while let Some(at) = rest.find("/pl/") {
            rest = &rest[at + 4..];
            let run_end = rest
                .char_indices()
                .find(|&(i, ch)| {
                    i >= 256
                        || ch.is_whitespace()
                        || ch.is_control()
                        || "?#/\\\"<>()[]".contains(ch)
                })
                .map_or(rest.len(), |(i, _)| i);
            let run = &rest[..run_end];
            let mut resolved = false;
            for (end, ch) in run.char_indices() {
                let id = &run[..end + ch.len_utf8()];
                if let Some(href) = names.posts.get(id) {
                    resolved = true;
                    out.push_str(href);
                    out.push('\0');
                    if let Some(dir) = href.strip_prefix("c/").and_then(|h| h.split('/').next()) {
                        self.dirs.insert(dir.to_owned());
                    }
                }
            }
            if !resolved {
                self.open = true;
            }
            rest = &rest[run_end..];
        }
        out
    }
}

/// A channel's rows as its pages render them.
struct ChannelRows<'r> {
    posts: &'r [SitePost],
    files: &'r HashMap<String, Vec<SiteFile>>,
    reactions: &'r HashMap<String, Vec<SiteReaction>>,
    versions: &'r HashMap<String, Vec<SiteVersion>>,
    team_id: &'r str,
    rendered: RefCell<HashMap<usize, String>>,
}

/// A manifest path we wrote ourselves: relative, no `..`, no absolute part.
fn is_plain_relative(rel: &str) -> bool {
    !rel.is_empty()
        && !rel.starts_with('/')
        && rel
            .split('/')
            .all(|s| !s.is_empty() && s != ".." && s != ".")
}

pub(crate) fn write_file(path: &Path, bytes: &[u8]) -> io::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(path, bytes)
}

fn group_by<T>(rows: Vec<T>, key: impl Fn(&T) -> String) -> HashMap<String, Vec<T>> {
    let mut map: HashMap<String, Vec<T>> = HashMap::new();
    for row in rows {
        map.entry(key(&row)).or_default().push(row);
    }
    map
}

/// Which posts are roots, and the replies of each root (indices, oldest first). A reply
/// whose root is not in the archive is shown as a root.
fn threads(posts: &[SitePost]) -> (Vec<bool>, Vec<Vec<usize>>) {
    let at: HashMap<&str, usize> = posts
        .iter()
        .enumerate()
        .map(|(i, p)| (p.id.as_str(), i))
        .collect();
    let mut is_root = vec![true; posts.len()];
    let mut replies = vec![Vec::new(); posts.len()];
    for (i, p) in posts.iter().enumerate() {
        if p.root_id.is_empty() {
            continue;
        }
        if let Some(&r) = at.get(p.root_id.as_str())
            && r != i
            && posts[r].root_id.is_empty()
        {
            is_root[i] = false;
            replies[r].push(i);
        }
    }
    (is_root, replies)
}

fn is_pinned(post: &SitePost) -> bool {
    post.json.contains("\"is_pinned\":true")
}

fn override_username(post: &SitePost) -> Option<String> {
    if !post.json.contains("override_username") {
        return None;
    }
    let v: Value = serde_json::from_str(&post.json).ok()?;
    v.get("props")?
        .get("override_username")?
        .as_str()
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

fn snippet(message: &str) -> String {
    let mut s: String = message.chars().take(120).collect();
    if s.len() < message.len() {
        s.push('…');
    }
    s
}

fn channel_title(c: &SiteChannel) -> String {
    match c.kind.as_str() {
        "D" | "G" => c
            .export_name
            .clone()
            .unwrap_or_else(|| c.display_name.clone())
            .replace("__", ", "),
        _ if !c.display_name.is_empty() => c.display_name.clone(),
        _ => c.name.clone(),
    }
}

/// The name `in:` matches: the channel's URL name (direct/group: the other usernames).
fn search_channel_name(c: &SiteChannel) -> String {
    match c.kind.as_str() {
        "D" | "G" => c.export_name.clone().unwrap_or_else(|| c.name.clone()),
        _ => c.name.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn post(id: &str, root: &str, at: i64, len: usize) -> SitePost {
        SitePost {
            id: id.into(),
            root_id: root.into(),
            user_id: "u".into(),
            create_at: at,
            update_at: at,
            edit_at: 0,
            delete_at: 0,
            kind: String::new(),
            message: "x".repeat(len),
            json: String::new(),
        }
    }

    const DAY: i64 = 86_400_000;
    /// 2024-01-01T00:00:00Z
    const JAN: i64 = 1_704_067_200_000;

    #[test]
    fn pages_split_by_month_root_count_and_size_with_replies_under_their_root() {
        let utc = jiff::tz::TimeZone::UTC;
        let mut posts = Vec::new();
        for i in 0..(PAGE_ROOTS + 3) {
            posts.push(post(&format!("a{i}"), "", JAN + i as i64 * 1000, 10));
        }
        // A reply in February to a January root stays on the root's page.
        posts.push(post("r1", "a0", JAN + 40 * DAY, 10));
        posts.push(post("feb", "", JAN + 41 * DAY, 10));
        // Three big roots in March: the byte budget splits them.
        for i in 0..3 {
            posts.push(post(
                &format!("m{i}"),
                "",
                JAN + 70 * DAY + i,
                PAGE_BYTES / 5,
            ));
        }
        let (is_root, replies) = threads(&posts);
        assert!(!is_root[PAGE_ROOTS + 3]);
        let pages = plan_pages(&posts, &is_root, &replies, &utc);
        let names: Vec<&str> = pages.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "2024-01.html",
                "2024-01-2.html",
                "2024-02.html",
                "2024-03.html",
                "2024-03-2.html"
            ]
        );
        assert_eq!(pages[0].roots.len(), PAGE_ROOTS);
        assert_eq!(pages[1].roots.len(), 3);
        assert_eq!(replies[0], [PAGE_ROOTS + 3]);
        assert_eq!(pages[3].roots.len() + pages[4].roots.len(), 3);
        // Later posts never move earlier ones: the plan of a prefix is a prefix of the plan.
        let fewer = &posts[..PAGE_ROOTS + 1];
        let (r, rep) = threads(fewer);
        assert_eq!(plan_pages(fewer, &r, &rep, &utc)[0], pages[0]);
    }

    #[test]
    fn ids_that_are_not_plain_become_hashes() {
        assert_eq!(safe_id("abc123XYZ"), "abc123XYZ");
        for hostile in ["../../x", "a/b", "", "ü", &"a".repeat(65)] {
            let id = safe_id(hostile);
            assert!(id.starts_with('x') && id.len() == 25, "{id}");
            assert!(id.bytes().all(|b| b.is_ascii_alphanumeric()));
        }
        assert_ne!(safe_id("a/b"), safe_id("a/c"));
    }
}
