//! The channel post stream queries (`GET /channels/{id}/posts`), §2.1–§2.5.
//!
//! Pure functions of the workspace that return ids only; rendering is separate.
//! Reproduced on purpose, traps included:
//! - cursor comparisons are strict on `create_at`, so posts sharing the cursor's
//!   millisecond are skipped;
//! - `page` is an offset counted from the cursor (or from the newest post);
//! - since mode applies `LIMIT 1000` to the changed rows in id order (not by
//!   `update_at`) and returns deleted and edit-history rows.

use std::cmp::Reverse;
use std::collections::BTreeSet;

use super::model::Post;
use super::workspace::Workspace;

/// Rows the since query returns at most (the server's unordered inner LIMIT).
pub const SINCE_LIMIT: usize = 1000;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PostsMode {
    Page,
    Before(String),
    After(String),
    Since(i64),
}

#[derive(Clone, Debug)]
pub struct PostsQuery {
    pub mode: PostsMode,
    pub page: usize,
    pub per_page: usize,
    pub skip_fetch_threads: bool,
}

/// A PostList by ids: `order` newest first, `posts` the superset to render.
#[derive(Clone, Debug, Default)]
pub struct PostListIds {
    pub order: Vec<String>,
    pub posts: BTreeSet<String>,
    pub next_post_id: String,
    pub prev_post_id: String,
}

fn newest_first(a: &&Post, b: &&Post) -> std::cmp::Ordering {
    (Reverse(a.create_at), Reverse(&a.id)).cmp(&(Reverse(b.create_at), Reverse(&b.id)))
}

impl Workspace {
    /// `"9.11.0.<max update_at>"` input: the newest change of any row of the channel,
    /// deleted and history rows included (no DeleteAt filter, like `GetEtag`).
    pub(crate) fn channel_posts_etag_time(&self, channel_id: &str) -> i64 {
        self.posts_of(channel_id)
            .map(|p| p.update_at)
            .max()
            .unwrap_or(0)
    }

    pub(crate) fn channel_posts(&self, channel_id: &str, query: &PostsQuery) -> PostListIds {
        match &query.mode {
            PostsMode::Since(since) => self.posts_since(channel_id, *since),
            mode => self.posts_window(channel_id, mode, query),
        }
    }

    /// The channel's live posts, newest first.
    fn live_sorted<'a>(&'a self, channel_id: &'a str) -> Vec<&'a Post> {
        let mut posts: Vec<&Post> = self.live_posts_of(channel_id).collect();
        posts.sort_by(newest_first);
        posts
    }

    fn cursor_time(&self, channel_id: &str, cursor_id: &str) -> Option<i64> {
        self.posts
            .get(cursor_id)
            .filter(|p| p.channel_id == channel_id)
            .map(|p| p.create_at)
    }

    /// Page, before and after modes. The channel's live posts are sorted once; windows and
    /// cursor ids are read off that order.
    fn posts_window(&self, channel_id: &str, mode: &PostsMode, q: &PostsQuery) -> PostListIds {
        let offset = q.page.saturating_mul(q.per_page);
        let all = self.live_sorted(channel_id);
        let page: Vec<&Post> = match mode {
            PostsMode::Before(cursor) => match self.cursor_time(channel_id, cursor) {
                Some(t) => all
                    .iter()
                    .filter(|p| p.create_at < t)
                    .skip(offset)
                    .take(q.per_page)
                    .copied()
                    .collect(),
                None => Vec::new(),
            },
            PostsMode::After(cursor) => match self.cursor_time(channel_id, cursor) {
                Some(t) => {
                    // Oldest first, like the ASC query, then back to newest first.
                    let mut page: Vec<&Post> = all
                        .iter()
                        .rev()
                        .filter(|p| p.create_at > t)
                        .skip(offset)
                        .take(q.per_page)
                        .copied()
                        .collect();
                    page.reverse();
                    page
                }
                None => Vec::new(),
            },
            _ => all.iter().skip(offset).take(q.per_page).copied().collect(),
        };
        let mut list = PostListIds {
            order: page.iter().map(|p| p.id.clone()).collect(),
            posts: page.iter().map(|p| p.id.clone()).collect(),
            ..PostListIds::default()
        };
        self.add_thread_context(channel_id, &page, q.skip_fetch_threads, &mut list.posts);
        add_cursor_ids(&all, mode, q, &page, &mut list);
        list
    }

    /// Roots of replies on the page and, unless skipped, the rest of those threads (a thread
    /// lives in one channel).
    fn add_thread_context(
        &self,
        channel_id: &str,
        page: &[&Post],
        skip_threads: bool,
        posts: &mut BTreeSet<String>,
    ) {
        let roots: BTreeSet<&str> = page
            .iter()
            .filter(|p| !p.root_id.is_empty())
            .map(|p| p.root_id.as_str())
            .collect();
        if roots.is_empty() {
            return;
        }
        for post in self.live_posts_of(channel_id) {
            let is_root = roots.contains(post.id.as_str());
            let in_thread = !skip_threads && roots.contains(post.root_id.as_str());
            if is_root || in_thread {
                posts.insert(post.id.clone());
            }
        }
    }

    /// Since mode: changed rows (capped) plus their roots as context.
    fn posts_since(&self, channel_id: &str, since: i64) -> PostListIds {
        let changed: Vec<&Post> = self
            .posts_of(channel_id)
            .filter(|p| p.update_at > since)
            .take(SINCE_LIMIT)
            .collect();
        let mut rows: Vec<&Post> = changed.clone();
        let mut seen: BTreeSet<&str> = changed.iter().map(|p| p.id.as_str()).collect();
        for post in &changed {
            if post.root_id.is_empty() || seen.contains(post.root_id.as_str()) {
                continue;
            }
            if let Some(root) = self.posts.get(&post.root_id) {
                seen.insert(root.id.as_str());
                rows.push(root);
            }
        }
        rows.sort_by(newest_first);
        PostListIds {
            order: rows
                .iter()
                .filter(|p| p.update_at > since)
                .map(|p| p.id.clone())
                .collect(),
            posts: rows.iter().map(|p| p.id.clone()).collect(),
            next_post_id: String::new(),
            prev_post_id: String::new(),
        }
    }
}

/// `AddCursorIdsForPostList`: fixed ids from the request where the rules say so, otherwise
/// the nearest live post strictly newer/older than the page's ends (`all`: the channel's
/// live posts, newest first).
fn add_cursor_ids(
    all: &[&Post],
    mode: &PostsMode,
    q: &PostsQuery,
    page: &[&Post],
    list: &mut PostListIds,
) {
    let short = page.len() < q.per_page;
    let (mut next, mut prev): (Option<String>, Option<String>) = (None, None);
    match mode {
        PostsMode::After(cursor) => {
            if q.page == 0 {
                prev = Some(cursor.clone());
            }
            if short {
                next = Some(String::new());
            }
        }
        PostsMode::Before(cursor) => {
            if q.page == 0 {
                next = Some(cursor.clone());
            }
            if short {
                prev = Some(String::new());
            }
        }
        _ => {}
    }
    let (Some(first), Some(last)) = (page.first(), page.last()) else {
        list.next_post_id = next.unwrap_or_default();
        list.prev_post_id = prev.unwrap_or_default();
        return;
    };
    list.next_post_id = next.unwrap_or_else(|| {
        all.iter()
            .take_while(|p| p.create_at > first.create_at)
            .last()
            .map(|p| p.id.clone())
            .unwrap_or_default()
    });
    list.prev_post_id = prev.unwrap_or_else(|| {
        all.iter()
            .find(|p| p.create_at < last.create_at)
            .map(|p| p.id.clone())
            .unwrap_or_default()
    });
}
