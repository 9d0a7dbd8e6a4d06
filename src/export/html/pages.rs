//! Which posts go on which page: roots and their replies, channel pages of a steady size,
//! long threads paged apart, and the times pages show. Pure (the time zone is a parameter);
//! tested on literals.
//!
//! A channel's roots fill numbered pages `1.html`, `2.html`, … from the oldest, each closed
//! after [`PAGE_ROOTS`] roots or about [`PAGE_BYTES`]; the newest page is the channel's
//! `index.html`, where the channel opens (its latest messages, as in Mattermost). The
//! newest page also takes the page before it while both fit one page's budget, so the
//! channel never opens on a page of a few posts; once they do not, that page becomes
//! numbered. So a post moves at most once, from `index.html` to a numbered page, and a
//! numbered page never changes its posts.
//!
//! A thread of at most [`THREAD_INLINE`] replies is shown whole under its root in the
//! channel page, which is then every one of its posts' page. A longer thread shows there
//! only its first [`THREAD_FIRST`] and latest [`THREAD_LAST`] replies and a link to the
//! rest; all its replies live on its own pages `t-<root>.html`, `t-<root>-2.html`, …, each
//! closed after [`THREAD_PAGE_POSTS`] posts or about [`PAGE_BYTES`], so no page grows with a
//! thread's length. Plans depend on the posts only and a later post never moves an earlier
//! one, except from `index.html` to a numbered page (above) and when a thread passing
//! [`THREAD_INLINE`] replies moves its replies to its thread pages; permalinks follow
//! (targets are page inputs).

use super::paths::safe_id;
use super::{PAGE_BYTES, PAGE_ROOTS};
use crate::catalog::PostOutline;

/// At most this many posts on one page of a long thread.
pub const THREAD_PAGE_POSTS: usize = 500;
/// The file name of a channel's newest page, where the channel opens.
pub const NEWEST: &str = "index.html";

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
fn weight(post: &PostOutline) -> usize {
    post.message_bytes * 2 + 600
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
/// [`THREAD_PAGE_POSTS`] posts or about [`PAGE_BYTES`].
pub fn plan_thread(posts: &[PostOutline], root: usize, replies: &[usize]) -> Vec<ThreadPage> {
    if !is_long(replies) {
        return Vec::new();
    }
    let root_id = posts[root].id.as_str();
    let mut pages = vec![ThreadPage {
        name: thread_page_name(root_id, 1),
        replies: 0..0,
    }];
    let mut bytes = weight(&posts[root]);
    let mut count = 1;
    for (k, &j) in replies.iter().enumerate() {
        let w = weight(&posts[j]);
        if count > 0 && (count >= THREAD_PAGE_POSTS || bytes + w > PAGE_BYTES) {
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
pub fn homes(
    posts: &[PostOutline],
    pages: &[PagePlan],
    replies: &[Vec<usize>],
) -> Vec<Option<String>> {
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

/// The channel's pages, oldest first: numbered pages of at most [`PAGE_ROOTS`] roots or
/// about [`PAGE_BYTES`] of content (a root counts with the replies shown under it), the
/// last one named [`NEWEST`] and joined with the one before it while both fit one page's
/// budget (see the module doc). `replies[i]` lists the replies of root `i`. Depends on the
/// posts only; a channel without posts has no page.
pub fn plan_pages(
    posts: &[PostOutline],
    is_root: &[bool],
    replies: &[Vec<usize>],
) -> Vec<PagePlan> {
    let mut pages: Vec<(PagePlan, usize)> = Vec::new();
    for (i, post) in posts.iter().enumerate() {
        if !is_root[i] {
            continue;
        }
        let (first, _, last) = shown_replies(&replies[i]);
        let weight: usize = std::iter::once(post)
            .chain(first.iter().chain(last).map(|&j| &posts[j]))
            .map(weight)
            .sum();
        let open = pages
            .last()
            .is_some_and(|(p, bytes)| p.roots.len() < PAGE_ROOTS && bytes + weight <= PAGE_BYTES);
        if !open {
            pages.push((
                PagePlan {
                    name: format!("{}.html", pages.len() + 1),
                    roots: Vec::new(),
                },
                0,
            ));
        }
        let (page, bytes) = pages.last_mut().expect("pushed");
        page.roots.push(i);
        *bytes += weight;
    }
    if let [.., (before, b1), (newest, b2)] = pages.as_slice()
        && newest.roots.len() < PAGE_ROOTS
        && b1 + b2 <= PAGE_BYTES
    {
        let mut joined = before.clone();
        joined.roots.extend(&newest.roots);
        pages.pop();
        pages.pop();
        pages.push((joined, 0));
    }
    let mut pages: Vec<PagePlan> = pages.into_iter().map(|(p, _)| p).collect();
    if let Some(newest) = pages.last_mut() {
        newest.name = NEWEST.to_owned();
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

/// A day as a date divider shows it, in Mattermost's format: "Wed, Nov 15, 2023".
pub(super) fn day_label(ms: i64, tz: &jiff::tz::TimeZone) -> String {
    zoned(ms, tz).strftime("%a, %b %d, %Y").to_string()
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
    use crate::export::view::Threads;

    fn post(id: &str, root: &str, at: i64, len: usize) -> PostOutline {
        PostOutline {
            id: id.into(),
            root_id: root.into(),
            create_at: at,
            delete_at: 0,
            message_bytes: len,
            has_files: false,
        }
    }

    const DAY: i64 = 86_400_000;
    /// 2024-01-01T00:00:00Z
    const JAN: i64 = 1_704_067_200_000;

    fn plan_names(posts: &[PostOutline]) -> Vec<(String, usize)> {
        let Threads { is_root, replies } = Threads::of_outlines(posts);
        plan_pages(posts, &is_root, &replies)
            .into_iter()
            .map(|p| (p.name, p.roots.len()))
            .collect()
    }

    fn roots(n: usize, len: usize) -> Vec<PostOutline> {
        (0..n)
            .map(|i| post(&format!("a{i}"), "", JAN + i as i64 * DAY / 3, len))
            .collect()
    }

    #[test]
    fn pages_hold_60_roots_from_the_oldest_and_the_newest_is_the_channel_index() {
        let pages = |n: usize| plan_names(&roots(n, 10));
        let named = |list: &[(&str, usize)]| -> Vec<(String, usize)> {
            list.iter().map(|&(n, k)| (n.to_owned(), k)).collect()
        };
        assert_eq!(pages(0), named(&[]));
        assert_eq!(pages(1), named(&[("index.html", 1)]));
        assert_eq!(pages(60), named(&[("index.html", 60)]));
        // The newest page takes the one before it while it is not full itself.
        assert_eq!(pages(61), named(&[("index.html", 61)]));
        assert_eq!(pages(119), named(&[("index.html", 119)]));
        assert_eq!(pages(120), named(&[("1.html", 60), ("index.html", 60)]));
        assert_eq!(pages(130), named(&[("1.html", 60), ("index.html", 70)]));
        assert_eq!(
            pages(181),
            named(&[("1.html", 60), ("2.html", 60), ("index.html", 61)])
        );
        // Months do not split pages: 130 roots over 43 days.
        let posts = roots(130, 10);
        assert_ne!(
            month_of(posts[0].create_at, &jiff::tz::TimeZone::UTC),
            month_of(posts[129].create_at, &jiff::tz::TimeZone::UTC)
        );
    }

    #[test]
    fn replies_stay_under_their_root_and_big_posts_close_pages_by_size() {
        let mut posts = roots(3, 10);
        // A reply 40 days later stays on its root's page.
        posts.push(post("r1", "a0", JAN + 40 * DAY, 10));
        let Threads { is_root, replies } = Threads::of_outlines(&posts);
        let pages = plan_pages(&posts, &is_root, &replies);
        assert_eq!(pages.len(), 1);
        assert_eq!(pages[0].roots, [0, 1, 2]);
        assert_eq!(
            homes(&posts, &pages, &replies)[3].as_deref(),
            Some("index.html")
        );

        // Three roots of 2/5 of a page each: two fit a page, the third starts the next, and
        // the two together do not fit one page, so the newest page stays apart.
        let big = roots(3, PAGE_BYTES / 5);
        assert_eq!(
            plan_names(&big),
            [("1.html".to_owned(), 2), ("index.html".to_owned(), 1)]
        );
    }

    #[test]
    fn a_post_moves_at_most_once_from_the_newest_page_to_a_numbered_one() {
        let all = roots(400, 10);
        let mut before: Vec<String> = Vec::new();
        for n in 1..=all.len() {
            let posts = &all[..n];
            let Threads { is_root, replies } = Threads::of_outlines(posts);
            let pages = plan_pages(posts, &is_root, &replies);
            let now: Vec<String> = homes(posts, &pages, &replies)
                .into_iter()
                .map(|h| h.expect("every root has a page"))
                .collect();
            for (i, old) in before.iter().enumerate() {
                assert!(
                    *old == now[i] || (old == NEWEST && now[i] != NEWEST),
                    "with {n} roots, root {i} moved from {old} to {}",
                    now[i]
                );
            }
            // Every page but the newest is full.
            for p in &pages[..pages.len() - 1] {
                assert_eq!(p.roots.len(), PAGE_ROOTS, "{n}: {}", p.name);
            }
            before = now;
        }
        assert_eq!(before[0], "1.html");
        assert_eq!(before[399], "index.html");
    }
}
