//! Which posts go on which page: roots and their replies, pages by month split by root
//! count and size, and the times pages show. Pure (the time zone is a parameter); tested on
//! literals.

use super::{PAGE_BYTES, PAGE_ROOTS};
use crate::export::view::Post;

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
        let weight: usize = std::iter::once(i)
            .chain(replies[i].iter().copied())
            .map(|j| posts[j].record.message.len() * 2 + 600)
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
