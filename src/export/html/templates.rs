//! What the templates (`templates/site/`) show: one struct per template and the plain view
//! structs they are filled from. No catalog access; every string reaches the page through
//! askama's escaping or already-rendered Markdown.

use askama::Template;

use super::SiteError;
use crate::export::view::User;

/// A user as pages name them.
#[derive(Clone, Debug)]
pub(super) struct Person {
    pub(super) username: String,
    pub(super) display: String,
    pub(super) nickname: String,
    pub(super) position: String,
    pub(super) is_bot: bool,
    pub(super) avatar: Option<String>,
}

impl Person {
    pub(super) fn from_user(user: &User) -> Person {
        let u = &user.object;
        let username = &user.record.name;
        let full = format!("{} {}", u.first_name, u.last_name)
            .trim()
            .to_owned();
        Person {
            username: username.clone(),
            display: if full.is_empty() {
                username.clone()
            } else {
                full
            },
            nickname: u.nickname.clone(),
            position: u.position.clone(),
            is_bot: u.is_bot,
            avatar: None,
        }
    }
}

#[derive(Template)]
#[template(path = "site/base.html")]
pub(super) struct BaseT<'a> {
    pub(super) title: &'a str,
    pub(super) up: &'a str,
    pub(super) sidebar: &'a str,
    pub(super) zone: &'a str,
    pub(super) crumbs: &'a str,
    pub(super) body: &'a str,
}

#[derive(Template)]
#[template(path = "site/post.html")]
pub(super) struct PostT<'a> {
    pub(super) p: &'a PostView,
}

#[derive(Template)]
#[template(path = "site/index.html")]
pub(super) struct IndexT<'a> {
    pub(super) groups: &'a [ChannelGroup],
}

#[derive(Template)]
#[template(path = "site/channel.html")]
pub(super) struct ChannelT<'a> {
    pub(super) c: &'a ChannelIndexView,
}

/// A page of posts: a channel page (older/newer) or a thread page (previous/next).
#[derive(Template)]
#[template(path = "site/page.html")]
pub(super) struct PageT<'a> {
    pub(super) title: &'a str,
    /// Already rendered: the channel's head on its newest page, else empty.
    pub(super) head: &'a str,
    pub(super) index: &'a str,
    pub(super) index_label: &'a str,
    pub(super) prev: Option<&'a str>,
    pub(super) prev_label: &'a str,
    pub(super) next: Option<&'a str>,
    pub(super) next_label: &'a str,
    /// The channel's newest page: it opens on its latest messages (see app.js).
    pub(super) newest: bool,
    /// An older channel page: it links the newest page's month menu.
    pub(super) months: bool,
    pub(super) days: &'a [DayView],
}

/// The head of a channel's newest page, as Mattermost's channel header: kind, purpose,
/// header, a link to members and pinned posts, and the months as a jump menu (a
/// `<details>` of links: works with JavaScript off).
#[derive(Template)]
#[template(path = "site/channel_head.html")]
pub(super) struct ChannelHeadT<'a> {
    pub(super) kind: &'a str,
    pub(super) archived: bool,
    pub(super) purpose: &'a str,
    /// Already rendered Markdown.
    pub(super) header: &'a str,
    pub(super) members: usize,
    pub(super) pinned: usize,
    /// (YYYY-MM, link to the day divider of its first root).
    pub(super) months: &'a [(String, String)],
}

#[derive(Template)]
#[template(path = "site/user.html")]
pub(super) struct UserT<'a> {
    pub(super) person: &'a Person,
    pub(super) avatar: Option<String>,
    pub(super) posts: u64,
    pub(super) query: String,
}

pub(super) struct PostView {
    pub(super) anchor: String,
    pub(super) author: String,
    pub(super) author_href: String,
    pub(super) avatar: Option<String>,
    pub(super) bot: bool,
    pub(super) iso: String,
    pub(super) time: String,
    pub(super) body: String,
    pub(super) system: bool,
    pub(super) deleted: bool,
    pub(super) pinned: bool,
    pub(super) all_emoji: bool,
    pub(super) edited: Option<String>,
    pub(super) versions: Vec<(String, String)>,
    pub(super) files: Vec<FileView>,
    pub(super) reactions: Vec<ReactionView>,
    pub(super) cards: String,
}

#[derive(Clone)]
pub(super) struct FileView {
    pub(super) href: Option<String>,
    pub(super) name: String,
    pub(super) size: String,
    pub(super) kind: &'static str,
}

pub(super) struct ReactionView {
    pub(super) emoji: String,
    pub(super) count: usize,
    pub(super) who: String,
}

pub(super) struct ChannelGroup {
    pub(super) title: String,
    pub(super) channels: Vec<ChannelLine>,
}

pub(super) struct ChannelLine {
    pub(super) href: String,
    pub(super) name: String,
    pub(super) kind: &'static str,
    pub(super) archived: bool,
    pub(super) posts: u64,
    pub(super) first: String,
    pub(super) last: String,
}

pub(super) struct ChannelIndexView {
    pub(super) name: String,
    pub(super) kind: &'static str,
    pub(super) archived: bool,
    pub(super) header: String,
    pub(super) purpose: String,
    pub(super) members: Vec<(String, String)>,
    pub(super) pinned: Vec<(String, String, String)>,
    /// Every page by the month of its first root.
    pub(super) months: Vec<(String, Vec<PageLink>)>,
}

/// A channel page as the info page lists it.
#[derive(Debug)]
pub(super) struct PageLink {
    pub(super) href: String,
    /// "1", "2", …, "newest".
    pub(super) name: String,
    pub(super) roots: usize,
}

/// The posts of one day under its divider (`id="d-YYYY-MM-DD"`, the jump menu's target).
pub(super) struct DayView {
    pub(super) day: String,
    /// As Mattermost's date separator writes it: "Wed, Nov 15, 2023".
    pub(super) label: String,
    pub(super) items: Vec<String>,
}

pub(super) fn render<T: Template>(t: &T, what: impl Fn() -> String) -> Result<String, SiteError> {
    t.render().map_err(|source| SiteError::Template {
        what: what(),
        source,
    })
}
