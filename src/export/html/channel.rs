//! A channel's pages: its newest page (`index.html`, where it opens) and older numbered
//! pages, the pages of its long threads and its info page, each written only when its
//! inputs changed; the permalink targets; the channel's search entries.
//!
//! Memory follows a page, not a channel: pages are planned from the posts' outlines (ids,
//! threads, times, sizes: [`crate::catalog::PostOutline`]); one walk over the posts in
//! order feeds the search index, the authors thread summaries list and the pinned posts;
//! then each page's posts are read with their files, reactions and versions and hashed, and
//! a page whose inputs changed goes to the render threads ([`super::render`]) with its rows.

use std::collections::HashMap;
use std::sync::Arc;

use super::incremental::{ChannelState, Links};
use super::markdown::{self, UP};
use super::pages::{
    NEWEST, PagePlan, day_of, homes, is_long, month_of, plan_pages, plan_thread, shown_replies,
    thread_page_name,
};
use super::paths::{channel_dir, escape, safe_id, user_page};
use super::post::{Authors, ChannelRows, author_name, snippet};
use super::render::{ChannelPages, PageJob, PageKind, Pool, ThreadPage};
use super::search::js_string;
use super::templates::{ChannelHeadT, ChannelIndexView, ChannelT, PageLink, render};
use super::{Builder, DeletedPosts, SiteError};
use crate::catalog::PostOutline;
use crate::export::view::{self, Channel, Post, Threads};
use crate::model::object;

/// A channel's pages planned from its posts' outlines (no text held): the threads, the
/// pages and where each post lives.
pub(super) struct ChannelPlan {
    /// The posts shown (deleted ones left out when hidden), oldest first.
    pub(super) outlines: Vec<PostOutline>,
    pub(super) is_root: Vec<bool>,
    pub(super) replies: Vec<Vec<usize>>,
    pub(super) pages: Vec<PagePlan>,
    /// Each post's page ([`homes`]).
    pub(super) homes: Vec<Option<String>>,
}

/// A pinned post as the channel's info page lists it: link, author, snippet.
type Pinned = (String, String, String);

impl Builder<'_> {
    /// Plans a channel's pages from its posts' outlines.
    pub(super) fn plan_channel(&self, channel: &Channel) -> Result<ChannelPlan, SiteError> {
        let mut outlines = self.catalog.load_post_outlines(&channel.record.id)?;
        if self.options.deleted == DeletedPosts::Hide {
            outlines.retain(|p| p.delete_at == 0);
        }
        let Threads { is_root, replies } = Threads::of_outlines(&outlines);
        let pages = plan_pages(&outlines, &is_root, &replies);
        let homes = homes(&outlines, &pages, &replies);
        Ok(ChannelPlan {
            outlines,
            is_root,
            replies,
            pages,
            homes,
        })
    }

    /// Permalink targets: the page of every post a permalink may name, planned as the pages
    /// are. Only posts whose id begins the text after some `/pl/` in the archive are kept
    /// (a message, a post's JSON, an earlier version or a channel's JSON): every lookup
    /// ([`Links::scan`], Markdown's links) is of such a text, and a map of every post's
    /// page would grow with the archive (150 MB at 1,000,000 posts).
    pub(super) fn load_permalinks(&mut self, channels: &[Channel]) -> Result<(), SiteError> {
        let mut named: Vec<String> = Vec::new();
        self.catalog.load_texts_holding("/pl/", |text| {
            let mut rest = text;
            while let Some(at) = rest.find("/pl/") {
                rest = &rest[at + 4..];
                let end = rest
                    .char_indices()
                    .find(|&(_, ch)| ch.is_whitespace() || ch.is_control())
                    .map_or(rest.len(), |(i, _)| i);
                if end > 0 {
                    named.push(rest[..end].to_owned());
                }
            }
            Ok::<_, SiteError>(())
        })?;
        if named.is_empty() {
            return Ok(());
        }
        named.sort_unstable();
        named.dedup();
        // Whether some text after a `/pl/` begins with `id`: the first text not below it
        // in sorted order does if any does.
        let begins_some = |id: &str| {
            let k = named.partition_point(|t| t.as_str() < id);
            named.get(k).is_some_and(|t| t.starts_with(id))
        };
        for c in channels {
            let plan = self.plan_channel(c)?;
            let dir = channel_dir(&c.record.id);
            for (p, home) in plan.outlines.iter().zip(&plan.homes) {
                if let Some(home) = home
                    && !p.id.is_empty()
                    && begins_some(&p.id)
                {
                    let href = format!("{dir}/{home}#p-{}", safe_id(&p.id));
                    Arc::make_mut(&mut self.cx)
                        .names
                        .posts
                        .insert(p.id.to_string(), href);
                }
            }
        }
        Ok(())
    }

    /// Reads a channel's posts in order, one at a time (no files, reactions or versions),
    /// for what needs every post but not a page's worth of rows: the search index (when
    /// `index`: each post with its page, in the channel's order), each post's author (for
    /// thread summaries) and the pinned posts.
    pub(super) fn walk_posts(
        &mut self,
        n: usize,
        channel: &Channel,
        plan: &ChannelPlan,
        index: bool,
    ) -> Result<(Authors, Vec<Pinned>), SiteError> {
        let hide = self.options.deleted == DeletedPosts::Hide;
        let mut authors = Authors::default();
        let mut pinned = Vec::new();
        let mut i = 0;
        self.catalog.load_posts(&channel.record.id, |record| {
            if !record.seen_live || (hide && record.delete_at > 0) {
                return Ok(());
            }
            let outline = plan
                .outlines
                .get(i)
                .filter(|o| o.id == record.id)
                .ok_or_else(|| SiteError::PostGone(record.id.to_string()))?;
            let post = Post::from_record(record);
            let name = if plan.is_root[i] && !post.is_pinned() {
                String::new()
            } else {
                author_name(&self.cx.people, &post)
            };
            if let Some(home) = &plan.homes[i] {
                if index {
                    let thread = is_long(&plan.replies[i]).then(|| thread_page_name(post.id(), 1));
                    self.index
                        .add(
                            &post.record,
                            n as u32,
                            home,
                            thread.as_deref(),
                            outline.has_files,
                            post.is_pinned(),
                        )
                        .map_err(|source| SiteError::Write {
                            path: std::env::temp_dir(),
                            source,
                        })?;
                }
                if post.is_pinned() {
                    pinned.push((
                        format!("{home}#p-{}", safe_id(post.id())),
                        name.clone(),
                        snippet(&post.record.message),
                    ));
                }
            }
            authors.push(name);
            i += 1;
            Ok::<_, SiteError>(())
        })?;
        if let Some(missing) = plan.outlines.get(i) {
            return Err(SiteError::PostGone(missing.id.to_string()));
        }
        Ok((authors, pinned))
    }

    /// `c/<channel>/homes.js`: the page of every post not on the newest page, grouped by
    /// page (`MB.homes({"1.html":"<id> <id> …", …})`). A link saved from outside the site
    /// to `index.html#p-<id>` (or to a channel page a reply left when its thread grew long)
    /// names a page the post may since have left; app.js loads this file only when the
    /// anchor is not on the page, and goes to the page that holds the post. Posts leave the
    /// newest page only, so the file changes when a page fills up, not with every post.
    fn homes_script(
        &mut self,
        dir: &str,
        posts: &[PostOutline],
        homes: &[Option<String>],
    ) -> Result<(), SiteError> {
        let mut pages: Vec<(&str, String)> = Vec::new();
        let mut order: HashMap<&str, usize> = HashMap::new();
        for (post, home) in posts.iter().zip(homes) {
            let Some(home) = home.as_deref().filter(|h| *h != NEWEST) else {
                continue;
            };
            let at = *order.entry(home).or_insert_with(|| {
                pages.push((home, String::new()));
                pages.len() - 1
            });
            let ids = &mut pages[at].1;
            if !ids.is_empty() {
                ids.push(' ');
            }
            ids.push_str(&safe_id(&post.id));
        }
        let mut js = String::from("MB.homes({");
        for (k, (page, ids)) in pages.iter().enumerate() {
            if k > 0 {
                js.push(',');
            }
            js.push_str(&format!("{}:{}", js_string(page), js_string(ids)));
        }
        js.push_str("});\n");
        self.write_asset(&format!("{dir}/homes.js"), &js)
    }

    /// The hash of post `i`'s inputs (read into `rows`); pages combine them. A permalink's
    /// target page is an input too, and where it points is remembered in `links` for the
    /// next build.
    fn post_hash(
        &self,
        rows: &ChannelRows,
        i: usize,
        links: &mut Links,
    ) -> Result<blake3::Hash, SiteError> {
        let names = &self.cx.names;
        let p = &rows.post(i)?.record;
        let mut h = blake3::Hasher::new();
        h.update(links.scan(&p.message, names).as_bytes());
        h.update(links.scan(&p.json, names).as_bytes());
        for part in [p.id.as_str(), &p.message, &p.json, &p.kind] {
            h.update(part.as_bytes());
            h.update(&[0]);
        }
        for v in [p.update_at, p.edit_at, p.delete_at] {
            h.update(&v.to_le_bytes());
        }
        for f in rows.files(i) {
            h.update(format!("{}{}{:?}", f.id, f.name, f.blob).as_bytes());
        }
        for r in rows.reactions(i) {
            h.update(format!("{}{}", r.user_id, r.emoji_name).as_bytes());
        }
        for v in rows.versions(i) {
            let text = v.message.as_deref().unwrap_or_default();
            h.update(text.as_bytes());
            h.update(links.scan(text, names).as_bytes());
        }
        Ok(h.finalize())
    }

    /// A channel's pages, planned from its posts' outlines and read a page at a time: each
    /// page's posts are read with their rows and hashed here; a page whose inputs changed
    /// has its files placed and goes to the render threads ([`Builder::render_page`]).
    pub(super) fn channel(&mut self, n: usize, channel: &Channel) -> Result<(), SiteError> {
        let mut plan = self.plan_channel(channel)?;
        let dir = channel_dir(&channel.record.id);
        self.homes_script(&dir, &plan.outlines, &plan.homes)?;
        let months = self.months(&plan.outlines, &plan.pages);
        let (authors, pinned) = self.walk_posts(n, channel, &plan, self.index_needed)?;
        let members = view::load_channel_members(self.catalog, &channel.record.id)?;
        if plan.pages.is_empty() {
            // The channel still opens somewhere (every sidebar links its newest page).
            plan.pages.push(PagePlan {
                name: NEWEST.to_owned(),
                roots: Vec::new(),
            });
        }
        let posts = plan.homes.iter().filter(|h| h.is_some()).count() as u64;
        self.report.posts += posts;

        let mut links = Links::default();
        links.scan(&channel.record.json, &self.cx.names);
        let head = render(
            &ChannelHeadT {
                kind: channel.record.kind.word(),
                archived: channel.record.delete_at > 0,
                purpose: &channel.object.purpose,
                header: &markdown::render(
                    &channel.object.header,
                    &self.cx.names,
                    &channel.record.team_id,
                ),
                members: members.len(),
                pinned: pinned.len(),
                months: &months,
            },
            || format!("{dir}/{NEWEST}"),
        )?;
        let chan = Arc::new(ChannelPages {
            channel: channel.clone(),
            plan,
            authors,
            title: self.channel_title(channel),
            crumbs: self.crumbs(channel),
            head,
        });
        let ChannelPlan {
            outlines,
            is_root,
            replies,
            pages,
            homes,
        } = &chan.plan;
        for (k, page) in pages.iter().enumerate() {
            let newest = page.name == NEWEST;
            let shown: Vec<usize> = page
                .roots
                .iter()
                .flat_map(|&r| {
                    let (first, _, last) = shown_replies(&replies[r]);
                    std::iter::once(r)
                        .chain(first.iter().copied())
                        .chain(last.iter().copied())
                })
                .collect();
            let mut rows = ChannelRows::load(&chan, self.catalog, &shown)?;
            let mut h = blake3::Hasher::new();
            h.update(self.context.as_bytes());
            h.update(
                format!(
                    "{:?}{:?}",
                    k.checked_sub(1).map(|i| pages[i].name.as_str()),
                    pages.get(k + 1).map(|p| p.name.as_str())
                )
                .as_bytes(),
            );
            if newest {
                // Only the newest page shows the channel's head and month menu, which
                // change with every page added: older pages stay as they are.
                h.update(chan.title.as_bytes());
                h.update(chan.head.as_bytes());
            }
            for &r in &page.roots {
                h.update(self.post_hash(&rows, r, &mut links)?.as_bytes());
                // What the page shows of a long thread (its length and latest replies)
                // changes with every reply.
                h.update(&(replies[r].len() as u64).to_le_bytes());
                let (first, hidden, last) = shown_replies(&replies[r]);
                for &j in first.iter().chain(last) {
                    h.update(self.post_hash(&rows, j, &mut links)?.as_bytes());
                }
                if hidden > 0 {
                    // The page its "more replies" link points to.
                    let k = first.len();
                    let part = plan_thread(outlines, r, &replies[r])
                        .into_iter()
                        .find(|p| p.replies.contains(&k));
                    h.update(format!("{:?}", part.map(|p| p.name)).as_bytes());
                }
            }
            let rel = format!("{dir}/{}", page.name);
            let hash = h.finalize().to_hex().to_string();
            if self.keep(&rel, &hash) {
                continue;
            }
            self.place_files(&mut rows, &shown)?;
            self.render_page(rel, hash, rows, PageKind::Channel { k })?;
        }
        // Pages of long threads.
        for (r, reps) in replies.iter().enumerate() {
            if !is_root[r] || !is_long(reps) {
                continue;
            }
            let Some(root_home) = &homes[r] else { continue };
            let back = format!("{root_home}#p-{}", safe_id(&outlines[r].id));
            let parts = plan_thread(outlines, r, reps);
            let names: Vec<&str> = parts.iter().map(|p| p.name.as_str()).collect();
            for (k, part) in parts.iter().enumerate() {
                let prev = k.checked_sub(1).map(|i| names[i]);
                let next = names.get(k + 1).copied();
                let shown: Vec<usize> = (k == 0)
                    .then_some(r)
                    .into_iter()
                    .chain(reps[part.replies.clone()].iter().copied())
                    .collect();
                let mut rows = ChannelRows::load(&chan, self.catalog, &shown)?;
                let mut h = blake3::Hasher::new();
                h.update(self.context.as_bytes());
                h.update(format!("thread\0{back}\0{prev:?}{next:?}{}", reps.len()).as_bytes());
                for &j in &shown {
                    h.update(self.post_hash(&rows, j, &mut links)?.as_bytes());
                }
                let rel = format!("{dir}/{}", part.name);
                let hash = h.finalize().to_hex().to_string();
                if self.keep(&rel, &hash) {
                    continue;
                }
                self.place_files(&mut rows, &shown)?;
                let title = if parts.len() > 1 {
                    format!(
                        "Thread in {} ({} replies, page {} of {})",
                        chan.title,
                        reps.len(),
                        k + 1,
                        parts.len()
                    )
                } else {
                    format!("Thread in {} ({} replies)", chan.title, reps.len())
                };
                let thread = ThreadPage {
                    shown,
                    title,
                    back: back.clone(),
                    prev: prev.map(str::to_owned),
                    next: next.map(str::to_owned),
                };
                self.render_page(rel, hash, rows, PageKind::Thread(thread))?;
            }
        }
        self.new.channels.insert(
            channel.record.id.clone(),
            ChannelState {
                fingerprint: self.fingerprints[&channel.record.id].clone(),
                links: links.dirs.into_iter().collect(),
                open_links: links.open,
                posts,
            },
        );
        self.channel_index(channel, &members, outlines, pages, pinned)
    }

    /// Records a page as written and hands it to the render threads (started with the
    /// first page to write).
    fn render_page(
        &mut self,
        rel: String,
        hash: String,
        rows: ChannelRows,
        kind: PageKind,
    ) -> Result<(), SiteError> {
        self.new.pages.insert(rel.clone(), hash);
        self.report.pages_written += 1;
        let pool = match &mut self.pool {
            Some(pool) => pool,
            None => self.pool.insert(Pool::start(Arc::clone(&self.cx))?),
        };
        pool.send(PageJob { rel, rows, kind })
    }

    pub(super) fn channel_index(
        &mut self,
        channel: &Channel,
        members: &[object::ChannelMember],
        outlines: &[PostOutline],
        pages: &[PagePlan],
        pinned: Vec<Pinned>,
    ) -> Result<(), SiteError> {
        let dir = channel_dir(&channel.record.id);
        let members: Vec<(String, String)> = members
            .iter()
            .map(|m| {
                let id = &m.user_id;
                let name = self
                    .cx
                    .people
                    .get(id)
                    .map_or_else(|| id.to_string(), |p| p.display.clone());
                (format!("{UP}{}", user_page(id)), name)
            })
            .collect();
        let mut months: Vec<(String, Vec<PageLink>)> = Vec::new();
        for page in pages.iter().filter(|p| !p.roots.is_empty()) {
            let month = month_of(outlines[page.roots[0]].create_at, &self.cx.tz);
            let name = if page.name == NEWEST {
                "newest".to_owned()
            } else {
                page.name.trim_end_matches(".html").to_owned()
            };
            let entry = PageLink {
                href: page.name.clone(),
                name,
                roots: page.roots.len(),
            };
            match months.last_mut() {
                Some((m, list)) if *m == month => list.push(entry),
                _ => months.push((month, vec![entry])),
            }
        }
        let view = ChannelIndexView {
            name: self.channel_title(channel),
            kind: channel.record.kind.word(),
            archived: channel.record.delete_at > 0,
            header: markdown::render(
                &channel.object.header,
                &self.cx.names,
                &channel.record.team_id,
            ),
            purpose: channel.object.purpose.clone(),
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
        let rel = format!("{dir}/info.html");
        let hash = h.finalize().to_hex().to_string();
        if self.keep(&rel, &hash) {
            return Ok(());
        }
        let body = render(&ChannelT { c: &view }, || rel.clone())?;
        let crumbs = self.crumbs(channel);
        let title = format!("{} · info", view.name);
        self.page(&rel, &hash, &title, UP, &crumbs, &body)
    }

    /// The channel's months, each linking the day divider of its first root on the page
    /// holding it (the newest page's jump menu).
    fn months(&self, posts: &[PostOutline], pages: &[PagePlan]) -> Vec<(String, String)> {
        let mut months: Vec<(String, String)> = Vec::new();
        let mut last = String::new();
        for page in pages {
            for &r in &page.roots {
                let at = posts[r].create_at;
                let month = month_of(at, &self.cx.tz);
                if month != last {
                    let href = format!("{}#d-{}", page.name, day_of(at, &self.cx.tz));
                    months.push((month.clone(), href));
                    last = month;
                }
            }
        }
        months
    }

    pub(super) fn crumbs(&self, channel: &Channel) -> String {
        format!(
            "<a href=\"{NEWEST}\">{}</a>",
            escape(&self.channel_title(channel))
        )
    }
}
