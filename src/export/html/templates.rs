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

#[derive(Template)]
#[template(path = "site/page.html")]
pub(super) struct PageT<'a> {
    pub(super) title: &'a str,
    pub(super) index: &'a str,
    pub(super) prev: Option<&'a str>,
    pub(super) next: Option<&'a str>,
    pub(super) days: &'a [DayView],
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
    pub(super) months: Vec<(String, Vec<(String, String)>)>,
}

pub(super) struct DayView {
    pub(super) day: String,
    pub(super) items: Vec<String>,
}

pub(super) fn render<T: Template>(t: &T, what: impl Fn() -> String) -> Result<String, SiteError> {
    t.render().map_err(|source| SiteError::Template {
        what: what(),
        source,
    })
}
