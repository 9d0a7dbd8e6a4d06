//! One post's HTML: author, body, edits, attachments, reactions and bot cards, rendered from
//! a page's rows on a render thread ([`super::render`]); the collapsed replies under a root;
//! the rows of one page, read by the builder, and its attachments placed in the site.

use std::collections::HashMap;
use std::sync::Arc;

use super::markdown::{self, UP};
use super::pages::{plan_thread, shown_replies, thread_page_name};
use super::pages::{time_iso, time_text};
use super::paths::{escape, safe_id, url_segment, user_page};
use super::render::{ChannelPages, SiteContext};
use super::templates::{FileView, Person, PostT, PostView, ReactionView, render};
use super::{Builder, SiteError};
use crate::catalog::{Catalog, FileRecord, ReactionRecord, VersionRecord};
use crate::export::view::{MessageAttachment, Post, PostsView};
use crate::model::{PostId, UserId};

pub(super) fn human_size(bytes: i64) -> String {
    let b = bytes.max(0) as f64;
    match b {
        b if b >= 1e9 => format!("{:.1} GB", b / 1e9),
        b if b >= 1e6 => format!("{:.1} MB", b / 1e6),
        b if b >= 1e3 => format!("{:.1} kB", b / 1e3),
        _ => format!("{bytes} B"),
    }
}

impl SiteContext {
    /// The replies under a root in its channel page, collapsed: all of a short thread; the
    /// first and latest few of a long one, with a link to the replies between them on the
    /// thread's pages.
    pub(super) fn replies_html(
        &self,
        rows: &ChannelRows,
        root: usize,
    ) -> Result<String, SiteError> {
        let plan = &rows.chan.plan;
        let (posts, replies) = (&plan.outlines, &plan.replies[root]);
        let Some(&newest) = replies.last() else {
            return Ok(String::new());
        };
        let last = posts[newest].create_at;
        let mut participants: Vec<&str> = Vec::new();
        for &j in replies {
            let name = rows.chan.authors.name(j);
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
        let (first, hidden, latest) = shown_replies(replies);
        for &j in first {
            out.push_str(&self.post_html(rows, j)?);
        }
        if hidden > 0 {
            // The first reply left out, on the thread page that holds it.
            let k = first.len();
            let parts = plan_thread(posts, root, replies);
            if let Some(part) = parts.iter().find(|p| p.replies.contains(&k)) {
                out.push_str(&format!(
                    "<a class=\"more-replies\" href=\"{}#p-{}\">{hidden} more repl{}</a>",
                    part.name,
                    safe_id(&posts[replies[k]].id),
                    if hidden == 1 { "y" } else { "ies" },
                ));
            }
            for &j in latest {
                out.push_str(&self.post_html(rows, j)?);
            }
            out.push_str(&format!(
                "<a class=\"thread-link\" href=\"{}\">Open thread</a>",
                thread_page_name(&posts[root].id, 1)
            ));
        }
        out.push_str("</details>");
        Ok(out)
    }
}

impl Builder<'_> {
    /// Places the attachments of the posts `shown` (read into `rows`) in the site, in page
    /// order (placing a file has effects and counts), and keeps their views for the page's
    /// render thread.
    pub(super) fn place_files(
        &self,
        rows: &mut ChannelRows,
        shown: &[usize],
    ) -> Result<(), SiteError> {
        for &i in shown {
            let views = rows
                .files(i)
                .iter()
                .map(|f| self.file_view(f))
                .collect::<Result<Vec<_>, _>>()?;
            if !views.is_empty() {
                rows.views.insert(i, views);
            }
        }
        Ok(())
    }

    pub(super) fn file_view(&self, f: &FileRecord) -> Result<FileView, SiteError> {
        let name = crate::pylayout::safe_name(&f.name, 0).into_owned();
        let name = if name.is_empty() {
            "file".to_owned()
        } else {
            name
        };
        let rel = format!("f/{}/{}", safe_id(&f.id), name);
        let href = match &f.blob {
            Some(blob) => {
                // Files are linked while pages render, so a kept page still has its files.
                self.link_blob(&rel, blob, &format!("file {} ({})", f.id, f.name))?
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
}

impl SiteContext {
    /// A post's HTML (the same in a channel page and a thread page: both sit at the same
    /// depth), its attachments placed by the builder ([`Builder::place_files`]).
    pub(super) fn post_html(&self, rows: &ChannelRows, i: usize) -> Result<String, SiteError> {
        let team_id = rows.chan.channel.record.team_id.as_str();
        let post = rows.post(i)?;
        let record = &post.record;
        let person = self.people.get(&record.user_id);
        let bot = person.is_some_and(|p| p.is_bot) || post.from_integration();
        let mut grouped: Vec<(String, Vec<String>)> = Vec::new();
        for r in rows.reactions(i) {
            let who = self
                .people
                .get(&r.user_id)
                .map_or_else(|| r.user_id.to_string(), |p| p.display.clone());
            match grouped.iter_mut().find(|(e, _)| *e == r.emoji_name) {
                Some((_, list)) => list.push(who),
                None => grouped.push((r.emoji_name.clone(), vec![who])),
            }
        }
        let view = PostView {
            anchor: format!("p-{}", safe_id(&record.id)),
            author: author_name(&self.people, post),
            author_href: format!("{UP}{}", user_page(&record.user_id)),
            avatar: person
                .and_then(|p| p.avatar.as_ref())
                .map(|a| format!("{UP}{a}")),
            bot,
            iso: time_iso(record.create_at),
            time: time_text(record.create_at, &self.tz),
            body: markdown::render(&record.message, &self.names, team_id),
            system: post.is_system(),
            deleted: record.delete_at > 0,
            pinned: post.is_pinned(),
            all_emoji: markdown::all_emoji(&record.message, &self.names),
            edited: (record.edit_at > 0).then(|| time_text(record.edit_at, &self.tz)),
            versions: rows
                .versions(i)
                .iter()
                .filter_map(|v| {
                    let text = v.message.as_deref()?;
                    Some((
                        time_text(v.replaced_at, &self.tz),
                        markdown::render(text, &self.names, team_id),
                    ))
                })
                .collect(),
            files: rows.views.get(&i).cloned().unwrap_or_default(),
            reactions: grouped
                .into_iter()
                .map(|(name, who)| ReactionView {
                    emoji: markdown::emoji(&name, &self.names)
                        .unwrap_or_else(|| format!(":{}:", escape(&name))),
                    count: who.len(),
                    who: who.join(", "),
                })
                .collect(),
            cards: post
                .attachments()
                .map(|a| self.cards(&a, team_id))
                .unwrap_or_default(),
        };
        render(&PostT { p: &view }, || format!("post {}", record.id))
    }

    /// Bot and webhook `props.attachments` as cards (Slack's message attachments).
    fn cards(&self, attachments: &[MessageAttachment], team_id: &str) -> String {
        let mut out = String::new();
        for a in attachments {
            let color = a.color.clone();
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
            let pretext = &a.pretext;
            if !pretext.is_empty() {
                out.push_str(&markdown::render(pretext, &self.names, team_id));
            }
            let author = &a.author_name;
            if !author.is_empty() {
                out.push_str(&format!(
                    "<div class=\"card-author\">{}</div>",
                    escape(author)
                ));
            }
            let title = &a.title;
            if !title.is_empty() {
                let link = &a.title_link;
                let safe = link.starts_with("https://") || link.starts_with("http://");
                if safe {
                    out.push_str(&format!(
                        "<div class=\"card-title\"><a href=\"{}\" rel=\"noopener noreferrer\">{}</a></div>",
                        escape(link),
                        escape(title)
                    ));
                } else {
                    out.push_str(&format!(
                        "<div class=\"card-title\">{}</div>",
                        escape(title)
                    ));
                }
            }
            if !a.text.is_empty() {
                out.push_str(&markdown::render(&a.text, &self.names, team_id));
            }
            if let Some(fields) = &a.fields {
                out.push_str("<div class=\"card-fields\">");
                for f in fields {
                    out.push_str(&format!(
                        "<div class=\"card-field{}\"><b>{}</b>{}</div>",
                        if f.short { " short" } else { "" },
                        escape(&f.title),
                        markdown::render(&f.value, &self.names, team_id)
                    ));
                }
                out.push_str("</div>");
            }
            let image = &a.image_url;
            if !image.is_empty() {
                out.push_str(&markdown::render(
                    &format!("![image]({image})"),
                    &self.names,
                    team_id,
                ));
            }
            let footer = &a.footer;
            if !footer.is_empty() {
                out.push_str(&format!(
                    "<div class=\"card-footer\">{}</div>",
                    escape(footer)
                ));
            }
            out.push_str("</div>");
        }
        out
    }
}

/// Each post's author as pages name it ([`author_name`]), for the participants a
/// thread's summary lists without its replies being read: a number per post into a list
/// of names.
#[derive(Default)]
pub(super) struct Authors {
    of_post: Vec<u32>,
    names: Vec<String>,
    numbers: HashMap<String, u32>,
}

impl Authors {
    /// Adds the next post's author.
    pub(super) fn push(&mut self, name: String) {
        let n = match self.numbers.get(&name) {
            Some(&n) => n,
            None => {
                let n = self.names.len() as u32;
                self.names.push(name.clone());
                self.numbers.insert(name, n);
                n
            }
        };
        self.of_post.push(n);
    }

    /// The author of post `i` (its index in the channel's posts).
    pub(super) fn name(&self, i: usize) -> &str {
        self.of_post
            .get(i)
            .map_or("", |&n| self.names[n as usize].as_str())
    }
}

/// The rows of one page: the full rows of its posts (post, files, reactions, versions) and
/// its attachments' views, with the channel's plan and authors for the rest. Read a page at
/// a time, so memory holds a page's rows whatever the channel's size; owned, so the page
/// renders on another thread while the builder reads the next.
pub(super) struct ChannelRows {
    pub(super) chan: Arc<ChannelPages>,
    /// The page's posts and their rows (only the versions whose text we kept).
    page: PostsView,
    /// Post index → where it is in `page.posts`.
    at: HashMap<usize, usize>,
    /// Post index → its attachments' views ([`Builder::place_files`]).
    views: HashMap<usize, Vec<FileView>>,
}

impl ChannelRows {
    /// Reads the posts `shown` (indices into the channel's posts) with their rows.
    pub(super) fn load(
        chan: &Arc<ChannelPages>,
        catalog: &Catalog,
        shown: &[usize],
    ) -> Result<ChannelRows, SiteError> {
        let outlines = &chan.plan.outlines;
        let ids: Vec<&PostId> = shown.iter().map(|&i| &outlines[i].id).collect();
        let mut page = PostsView::load(catalog, &ids)?;
        for versions in page.versions.values_mut() {
            versions.retain(|v| v.message.is_some());
        }
        let by_id: HashMap<&str, usize> = page
            .posts
            .iter()
            .enumerate()
            .map(|(k, p)| (p.id(), k))
            .collect();
        let at = shown
            .iter()
            .filter_map(|&i| Some((i, *by_id.get(outlines[i].id.as_str())?)))
            .collect();
        Ok(ChannelRows {
            chan: Arc::clone(chan),
            page,
            at,
            views: HashMap::new(),
        })
    }

    /// The full row of post `i`, read by [`ChannelRows::load`].
    pub(super) fn post(&self, i: usize) -> Result<&Post, SiteError> {
        self.at
            .get(&i)
            .map(|&k| &self.page.posts[k])
            .ok_or_else(|| SiteError::PostGone(self.chan.plan.outlines[i].id.to_string()))
    }

    fn id(&self, i: usize) -> &PostId {
        &self.chan.plan.outlines[i].id
    }

    pub(super) fn files(&self, i: usize) -> &[FileRecord] {
        self.page.files.get(self.id(i)).map_or(&[], Vec::as_slice)
    }

    pub(super) fn reactions(&self, i: usize) -> &[ReactionRecord] {
        self.page
            .reactions
            .get(self.id(i))
            .map_or(&[], Vec::as_slice)
    }

    pub(super) fn versions(&self, i: usize) -> &[VersionRecord] {
        self.page
            .versions
            .get(self.id(i))
            .map_or(&[], Vec::as_slice)
    }
}

/// A post's author as pages name it: the name an integration posted under, else the
/// user's display name, else the user id.
pub(super) fn author_name(people: &HashMap<UserId, Person>, post: &Post) -> String {
    let user_id = &post.record.user_id;
    post.override_username()
        .map(str::to_owned)
        .or_else(|| people.get(user_id).map(|p| p.display.clone()))
        .unwrap_or_else(|| user_id.to_string())
}

pub(super) fn snippet(message: &str) -> String {
    let mut s: String = message.chars().take(120).collect();
    if s.len() < message.len() {
        s.push('…');
    }
    s
}
