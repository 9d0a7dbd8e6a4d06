//! A channel's pages: its month pages, thread pages and index page, each written only when
//! its inputs changed; the permalink targets of every post; the channel's search entries.

use std::cell::RefCell;
use std::collections::HashMap;

use serde_json::Value;

use super::incremental::{ChannelState, Links};
use super::markdown::{self, UP};
use super::pages::{PagePlan, day_of, month_of, plan_pages, threads};
use super::paths::{channel_dir, escape, safe_id, thread_page, user_page};
use super::post::{ChannelRows, group_by, is_pinned, snippet};
use super::view::{ChannelT, ChannelView, DayView, PageT, kind_name, render};
use super::{Builder, DeletedPosts, SiteError};
use crate::catalog::{SiteChannel, SiteFile, SitePost, SiteReaction, SiteVersion};

impl Builder<'_> {
    /// Permalink targets: every post's page, planned from the same rows as the pages.
    pub(super) fn load_permalinks(&mut self, channels: &[SiteChannel]) -> Result<(), SiteError> {
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

    /// Adds the posts of one channel page to the search index.
    pub(super) fn index_page_posts(
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

    pub(super) fn visible_posts(&self, channel_id: &str) -> Result<Vec<SitePost>, SiteError> {
        let mut posts = self.catalog.site_posts(channel_id)?;
        if self.options.deleted == DeletedPosts::Hide {
            posts.retain(|p| p.delete_at == 0);
        }
        Ok(posts)
    }

    pub(super) fn channel(&mut self, n: usize, channel: &SiteChannel) -> Result<(), SiteError> {
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

    pub(super) fn channel_index(
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

    pub(super) fn crumbs(&self, channel: &SiteChannel) -> String {
        format!(
            "<a href=\"index.html\">{}</a>",
            escape(&channel_title(channel))
        )
    }
}

pub(super) fn channel_title(c: &SiteChannel) -> String {
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
pub(super) fn search_channel_name(c: &SiteChannel) -> String {
    match c.kind.as_str() {
        "D" | "G" => c.export_name.clone().unwrap_or_else(|| c.name.clone()),
        _ => c.name.clone(),
    }
}
