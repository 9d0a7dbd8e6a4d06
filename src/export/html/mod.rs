//! `export --format html`: the archive as a website that works opened from disk (`file://`),
//! with no server and no network. A browser refuses `fetch`, XHR and ES modules there, so
//! everything reaches the page as plain HTML pages (readable with JavaScript off) or as
//! classic `<script>` files that call a callback (the search index, see [`search`]).
//!
//! Layout (all links relative):
//! - `index.html`: teams and channels, and the search (`index.html#q=<query>`);
//! - `c/<channel>/index.html`: the channel as it opens, on its latest messages: header,
//!   purpose, a jump menu of months, its newest roots; `c/<channel>/<N>.html`: older pages
//!   of [`PAGE_ROOTS`] roots (or about [`PAGE_BYTES`]), numbered from the oldest; the
//!   replies under their root in a collapsed list (of a long thread only the first and
//!   latest few), the roots under a divider per day (see [`pages`]);
//! - `c/<channel>/info.html`: members, pinned posts, every page by month;
//! - `c/<channel>/t-<root>[-N].html`: a long thread (root and every reply), paged;
//! - `c/<channel>/homes.js`: the page of every post not on the newest page, read by app.js
//!   only when a `#p-<id>` anchor is not on the page (a link saved before the post moved);
//! - `u/<user>.html`; `f/<file>/<name>` attachments (hard links into the blob store where
//!   the filesystem allows, else copies); `e/` custom emojis; `assets/`; `search/`.
//!
//! Invariants: every post shown has the anchor `id="p-<post id>"` on the page it lives on
//! ([`pages::homes`]), where every link to it points, and at most once per page; no page
//! grows with a thread's length; every string from the server is escaped (templates) or
//! rendered by [`markdown`], which keeps it inert; paths are built from ids checked to be
//! plain ASCII, never from names. Rebuilds are incremental: each page's inputs are hashed
//! into [`MANIFEST`], and a page whose hash is unchanged is neither rendered nor written.
//! Before that, each channel is fingerprinted from its row, members and sums of its rows
//! ([`Catalog::load_channel_sums`]); a channel whose fingerprint, context (users, emojis,
//! teams, channel names, options, format) and permalink targets' channels are those of the
//! last build keeps all its pages without its posts being read, so a rebuild after a no-op
//! sync reads no posts at all. Permalink targets are page inputs (a target's page can move).
//! Reads the catalog through named reads only, never SQL.
//!
//! Files: [`paths`] (where each page and file goes), [`pages`] (which posts go on which
//! page), [`templates`] (what each template shows), [`channel`] (a channel's pages, read
//! and hashed), [`render`] (pages rendered and written on threads of their own), [`post`]
//! (one post's HTML, a page's rows), [`files`] (attachments and pictures placed from the blob
//! store), [`incremental`] (what a rebuild may keep), [`search`] and [`postings`] (the
//! search index, its postings spilled to disk while the build runs); this file drives the
//! build and writes the index and user pages.

mod channel;
mod files;
mod highlight;
mod incremental;
pub mod markdown;
mod pages;
mod paths;
mod post;
mod postings;
mod render;
pub mod search;
mod templates;

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::archive::ReadArchive;
use crate::blobs::BlobStore;
use crate::catalog::{Catalog, CatalogError, PostSpan};
use crate::export::view::{self, Channel, Team, ViewError};
use crate::model::{ChannelId, ChannelType, UserId};
use crate::outdir::{self, OutputDirError, OutputKind};
use incremental::Manifest;
use markdown::Names;
use pages::day_of;
pub use pages::{PagePlan, plan_pages};
use paths::{channel_dir, url_segment, user_page, write_file};
pub use paths::{escape, safe_id};
use render::{Pool, SiteContext};
use templates::{ChannelGroup, ChannelLine, IndexT, Person, UserT, render};

/// The `outdir` kind of a site directory.
pub const SITE_KIND: OutputKind = OutputKind::Marked("site");
/// The build manifest: page path → hash of its inputs (JSON).
pub const MANIFEST: &str = ".matterbak-site.json";
/// Root posts on one channel page (the newest page holds up to twice as many, see
/// [`pages`]): Mattermost's web app loads a channel's posts 60 at a time (`POST_CHUNK_SIZE`
/// in its redux constants).
pub const PAGE_ROOTS: usize = 60;
/// A page is closed once its posts' estimated HTML passes this many bytes.
pub const PAGE_BYTES: usize = 900_000;
/// Bumped when the HTML of pages changes, so a rebuild rewrites every page.
const SITE_FORMAT: &str = "matterbak-site-6";

#[derive(Debug, thiserror::Error)]
pub enum SiteError {
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error(transparent)]
    View(#[from] ViewError),
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
    #[error("post {0} left the catalog while the site was built from it")]
    PostGone(String),
    #[error("cannot start the threads that render pages")]
    Threads(#[source] io::Error),
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
    archive: &ReadArchive,
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
    let catalog = archive.catalog();
    outdir::claim_dir(site, SITE_KIND)?;
    let blobs = archive.blobs()?;
    catalog.begin_snapshot()?;
    let result = Builder::new(catalog, blobs, site, options, tz).and_then(|mut b| {
        b.build()?;
        Ok(b.report)
    });
    catalog.end_snapshot()?;
    result
}

/// One build: what the previous build left, what this one writes, and the names every
/// page may refer to.
struct Builder<'a> {
    catalog: &'a Catalog,
    blobs: &'a BlobStore,
    site: &'a Path,
    options: &'a SiteOptions,
    /// Names, people, zone and sidebars: what pages render from, shared with the render
    /// threads once the channels' pages begin.
    cx: Arc<SiteContext>,
    /// The render threads, started with the first page to write.
    pool: Option<Pool>,
    report: SiteReport,
    old: Manifest,
    new: Manifest,
    /// Hash of everything every page depends on (names, options, format).
    context: blake3::Hash,
    teams: Vec<Team>,
    channels: Vec<Channel>,
    /// Channel id → its posts' count and first and last times.
    spans: HashMap<ChannelId, PostSpan>,
    /// Channel id → fingerprint of this build.
    fingerprints: HashMap<ChannelId, String>,
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
            cx: Arc::new(SiteContext {
                site: site.to_owned(),
                people: HashMap::new(),
                names: Names {
                    remote_images: options.remote_images,
                    ..Names::default()
                },
                tz,
                zone,
                sidebars: HashMap::new(),
            }),
            pool: None,
            report: SiteReport::default(),
            old,
            new: Manifest {
                format: SITE_FORMAT.into(),
                ..Manifest::default()
            },
            index_needed: true,
            context: blake3::hash(b""),
            teams: Vec::new(),
            channels: Vec::new(),
            spans: HashMap::new(),
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
        for up in ["", "../", markdown::UP] {
            let html = self.sidebar(up);
            Arc::make_mut(&mut self.cx)
                .sidebars
                .insert(up.to_owned(), html);
        }
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
        if let Some(mut pool) = self.pool.take() {
            pool.finish()?;
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
        let channel_names: Vec<(String, String, String)> = self
            .channels
            .iter()
            .map(|c| {
                let names = c.names();
                (
                    names.handle().to_owned(),
                    self.channel_title(c),
                    channel_dir(&c.record.id),
                )
            })
            .collect();
        let (written, kept) = index
            .write(self.site, &channel_names, &self.cx.tz)
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
        ctx.update(format!("{:?}{}", self.options, self.cx.zone).as_bytes());
        // Filled here, then put back: linking pictures needs `&self` meanwhile.
        let mut names = std::mem::take(&mut Arc::make_mut(&mut self.cx).names);
        let mut people = HashMap::new();
        self.teams = view::load_teams(self.catalog)?;
        for team in &self.teams {
            let team = &team.record;
            names.teams.insert(team.name.clone(), team.id.to_string());
            ctx.update(team.name.as_bytes());
        }
        for user in view::load_users(self.catalog)? {
            let mut person = Person::from_user(&user);
            let user = user.record;
            if let Some((blob, content_type)) = &user.image
                && let Some(ext) = crate::pylayout::image_extension(content_type)
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
            self.index
                .display_names
                .insert(user.id.clone(), person.display.clone());
            names.users.insert(
                user.name.to_lowercase(),
                (user_page(&user.id), person.display.clone()),
            );
            people.insert(user.id.clone(), person);
        }
        for emoji in self.catalog.load_emojis()? {
            if let Some((blob, content_type)) = &emoji.image
                && let Some(ext) = crate::pylayout::image_extension(content_type)
            {
                let rel = format!("e/{}.{}", safe_id(&emoji.id), ext.as_str());
                if self.link_blob(&rel, blob, &format!("image of emoji {}", emoji.name))? {
                    ctx.update(emoji.name.as_bytes());
                    ctx.update(rel.as_bytes());
                    names.emojis.insert(emoji.name.clone(), rel);
                }
            }
        }
        self.channels = view::load_channels(self.catalog)?;
        self.index.channel_terms = self
            .channels
            .iter()
            .map(|c| format!("in:{}", c.names().handle().to_lowercase()))
            .collect();
        self.spans = self.catalog.load_post_spans()?;
        for c in self.channels.iter().map(|c| &c.record) {
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
            names.channels.entry(c.name.clone()).or_default().push((
                c.team_id.to_string(),
                format!("{}/index.html", channel_dir(&c.id)),
            ));
        }
        let cx = Arc::make_mut(&mut self.cx);
        cx.names = names;
        cx.people = people;
        self.context = ctx.finalize();
        self.new.context = self.context.to_hex().to_string();
        Ok(())
    }

    fn index_page(&mut self) -> Result<(), SiteError> {
        let mut groups: Vec<ChannelGroup> = Vec::new();
        for team in &self.teams {
            groups.push(ChannelGroup {
                title: team.object.display_name.clone(),
                channels: self
                    .channels
                    .iter()
                    .filter(|c| c.record.team_id == team.record.id)
                    .map(|c| self.channel_line(c))
                    .collect(),
            });
        }
        for (kind, title) in [
            (ChannelType::Direct, "Direct messages"),
            (ChannelType::Group, "Group messages"),
        ] {
            let channels: Vec<ChannelLine> = self
                .channels
                .iter()
                .filter(|c| c.record.kind == kind)
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

    fn channel_line(&self, c: &Channel) -> ChannelLine {
        let span = self.spans.get(&c.record.id).copied().unwrap_or_default();
        ChannelLine {
            href: format!("{}/index.html", channel_dir(&c.record.id)),
            name: self.channel_title(c),
            kind: c.record.kind.word(),
            archived: c.record.delete_at > 0,
            posts: span.posts,
            first: if span.posts > 0 {
                day_of(span.first_at, &self.cx.tz)
            } else {
                String::new()
            },
            last: if span.posts > 0 {
                day_of(span.last_at, &self.cx.tz)
            } else {
                String::new()
            },
        }
    }

    /// A channel's name on pages: its display name; a direct or group message is named by
    /// its people's display names (its export name lists their usernames), as Mattermost
    /// names it.
    fn channel_title(&self, c: &Channel) -> String {
        let names = c.names();
        match (&c.record.kind, names.export_name) {
            (ChannelType::Direct | ChannelType::Group, Some(people)) => people
                .split("__")
                .map(|u| {
                    self.cx
                        .names
                        .users
                        .get(&u.to_lowercase())
                        .map_or_else(|| u.to_owned(), |(_, display)| display.clone())
                })
                .collect::<Vec<_>>()
                .join(", "),
            _ => names.title(),
        }
    }

    /// The sidebar: teams with their channels, then direct and group messages, each linking
    /// the channel's page; `up` leads from the page to the site's root. Plain links, so it
    /// works with JavaScript off.
    fn sidebar(&self, up: &str) -> String {
        let mut out = String::from("<nav class=\"sidebar\" aria-label=\"Channels\">");
        let mut group = |title: &str, channels: Vec<&Channel>| {
            if channels.is_empty() {
                return;
            }
            out.push_str(&format!("<h2>{}</h2><ul>", escape(title)));
            let mut lines: Vec<(String, String)> = channels
                .iter()
                .map(|c| {
                    (
                        self.channel_title(c),
                        format!("{up}{}/index.html", channel_dir(&c.record.id)),
                    )
                })
                .collect();
            lines.sort_by_key(|(name, _)| name.to_lowercase());
            for (name, href) in lines {
                out.push_str(&format!(
                    "<li><a href=\"{}\">{}</a></li>",
                    escape(&href),
                    escape(&name)
                ));
            }
            out.push_str("</ul>");
        };
        for team in &self.teams {
            group(
                &team.object.display_name,
                self.channels
                    .iter()
                    .filter(|c| c.record.team_id == team.record.id)
                    .collect(),
            );
        }
        group(
            "Direct messages",
            self.channels
                .iter()
                .filter(|c| matches!(c.record.kind, ChannelType::Direct | ChannelType::Group))
                .collect(),
        );
        out.push_str("</nav>");
        out
    }

    /// User pages; when no channel changed (nor the context, which holds the users), their
    /// post counts are the same and every page is kept without counting.
    fn user_pages(&mut self, all_clean: bool) -> Result<(), SiteError> {
        let mut ids: Vec<UserId> = self.cx.people.keys().cloned().collect();
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
            .load_post_counts_by_author(self.options.deleted == DeletedPosts::Hide)?;
        let mut pages = Vec::new();
        for id in &ids {
            let person = &self.cx.people[id];
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

    fn page(
        &mut self,
        rel: &str,
        hash: &str,
        title: &str,
        up: &str,
        crumbs: &str,
        body: &str,
    ) -> Result<(), SiteError> {
        let html = self.cx.page_html(rel, title, up, crumbs, body)?;
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
}
