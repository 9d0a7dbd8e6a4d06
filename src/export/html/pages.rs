//! Which posts go on which page: roots and their replies, pages by month split by root
//! count and size, long threads paged apart, and the times pages show. Pure (the time zone
//! is a parameter); tested on literals.
//!
//! A thread of at most [`THREAD_INLINE`] replies is shown whole under its root in the
//! channel page, which is then every one of its posts' page. A longer thread shows there
//! only its first [`THREAD_FIRST`] and latest [`THREAD_LAST`] replies and a link to the
//! rest; all its replies live on its own pages `t-<root>.html`, `t-<root>-2.html`, …, each
//! closed after [`PAGE_ROOTS`] posts or about [`PAGE_BYTES`], so no page grows with a
//! thread's length. Plans depend on the posts only and a later post never moves an earlier
//! one (except that a thread passing [`THREAD_INLINE`] replies moves its replies to its
//! thread pages, which permalinks follow: targets are page inputs).

use super::paths::safe_id;
use super::{PAGE_BYTES, PAGE_ROOTS};
use crate::export::view::Post;

/// A thread with at most this many replies is shown whole in the channel page.
pub const THREAD_INLINE: usize = 8;
/// A longer thread shows its first this many replies in the channel page…
pub const THREAD_FIRST: usize = 2;
/// …and its latest this many.
pub const THREAD_LAST: usize = 3;

/// Whether the thread of these replies has pages of its own.
pub fn is_long(replies: &[usize]) -> bool {
    replies.len() > THREAD_INLINE
}

/// The replies a channel page shows under their root: all, or the first and the latest few
/// (with how many are left out between them).
pub fn shown_replies(replies: &[usize]) -> (&[usize], usize, &[usize]) {
    if is_long(replies) {
        let n = replies.len();
        (
            &replies[..THREAD_FIRST],
            n - THREAD_FIRST - THREAD_LAST,
            &replies[n - THREAD_LAST..],
        )
    } else {
        (replies, 0, &[])
    }
}

/// The size a post is estimated to take on a page.
fn weight(post: &Post) -> usize {
    post.record.message.len() * 2 + 600
}

/// One page of a long thread: its file name and the range of the thread's replies it holds
/// (the first page also holds the root).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadPage {
    pub name: String,
    pub replies: std::ops::Range<usize>,
}

/// The file name of page `part` (1-based) of the thread of `root_id`.
pub fn thread_page_name(root_id: &str, part: usize) -> String {
    if part == 1 {
        format!("t-{}.html", safe_id(root_id))
    } else {
        format!("t-{}-{part}.html", safe_id(root_id))
    }
}

/// The pages of a long thread (none for a short one): replies in order, a page closed after
/// [`PAGE_ROOTS`] posts or about [`PAGE_BYTES`].
pub fn plan_thread(posts: &[Post], root: usize, replies: &[usize]) -> Vec<ThreadPage> {
    if !is_long(replies) {
        return Vec::new();
    }
    let root_id = posts[root].id();
    let mut pages = vec![ThreadPage {
        name: thread_page_name(root_id, 1),
        replies: 0..0,
    }];
    let mut bytes = weight(&posts[root]);
    let mut count = 1;
    for (k, &j) in replies.iter().enumerate() {
        let w = weight(&posts[j]);
        if count > 0 && (count >= PAGE_ROOTS || bytes + w > PAGE_BYTES) {
            pages.push(ThreadPage {
                name: thread_page_name(root_id, pages.len() + 1),
                replies: k..k,
            });
            bytes = 0;
            count = 0;
        }
        bytes += w;
        count += 1;
        pages.last_mut().expect("pushed").replies.end = k + 1;
    }
    pages
}

/// Where each post of a channel lives (index into `posts` → page file name, `None` for a
/// post on no page): its channel page, or for a reply of a long thread, its thread page.
pub fn homes(posts: &[Post], pages: &[PagePlan], replies: &[Vec<usize>]) -> Vec<Option<String>> {
    let mut home = vec![None; posts.len()];
    for page in pages {
        for &r in &page.roots {
            home[r] = Some(page.name.clone());
            let reps = &replies[r];
            if is_long(reps) {
                for tp in plan_thread(posts, r, reps) {
                    for &j in &reps[tp.replies.clone()] {
                        home[j] = Some(tp.name.clone());
                    }
                }
            } else {
                for &j in reps {
                    home[j] = Some(page.name.clone());
                }
            }
        }
    }
    home
}

/// One channel page: its file name and the indices (into the channel's posts) of its roots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PagePlan {
    pub name: String,
    pub roots: Vec<usize>,
}

/// The channel's pages: roots grouped by month (in `tz`), a month split after
/// [`PAGE_ROOTS`] roots or about [`PAGE_BYTES`] of content (a root counts with the replies
/// shown under it). `replies[i]` lists the replies of root `i`. Depends on the posts only, so a
/// post keeps its page while later posts arrive.
pub fn plan_pages(
    posts: &[Post],
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
        let this_month = month_of(post.record.create_at, tz);
        // A root counts with the replies shown under it.
        let (first, _, last) = shown_replies(&replies[i]);
        let weight: usize = std::iter::once(i)
            .chain(first.iter().copied())
            .chain(last.iter().copied())
            .map(|j| weight(&posts[j]))
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

pub(super) fn zoned(ms: i64, tz: &jiff::tz::TimeZone) -> jiff::ZonedDateTime {
    jiff::Timestamp::from_millisecond(ms)
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
        .to_zoned_datetime(tz.clone())
}

pub(super) fn month_of(ms: i64, tz: &jiff::tz::TimeZone) -> String {
    zoned(ms, tz).strftime("%Y-%m").to_string()
}

pub(super) fn day_of(ms: i64, tz: &jiff::tz::TimeZone) -> String {
    zoned(ms, tz).strftime("%Y-%m-%d").to_string()
}

pub(super) fn time_text(ms: i64, tz: &jiff::tz::TimeZone) -> String {
    zoned(ms, tz).strftime("%Y-%m-%d %H:%M").to_string()
}

pub(super) fn time_iso(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::PostRecord;
    use crate::export::view::Threads;

    fn post(id: &str, root: &str, at: i64, len: usize) -> Post {
        Post::from_record(PostRecord {
            id: id.into(),
            root_id: root.into(),
            user_id: "u".into(),
            create_at: at,
            update_at: at,
            edit_at: 0,
            delete_at: 0,
            seen_live: true,
            kind: String::new(),
            message: "x".repeat(len),
            json: String::new(),
        })
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
        let Threads { is_root, replies } = Threads::of(&posts);
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
        let Threads {
            is_root: r,
            replies: rep,
        } = Threads::of(fewer);
        assert_eq!(plan_pages(fewer, &r, &rep, &utc)[0], pages[0]);
    }
}
