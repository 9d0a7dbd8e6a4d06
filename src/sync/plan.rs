//! Where a backwards cursor walk of a channel's posts goes next: a pure decision, tested on
//! literals. (Which channels a run archives is `crate::selection`.)
//!
//! May import: `model` (the post id) only.

use crate::model::PostId;

/// Where a cursor walk stands: page older than `before` (None = newest page), `page` pages on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WalkStep {
    pub before: Option<PostId>,
    pub page: u32,
}

/// The next request of a backwards walk after a page, or None when the walk is done.
///
/// `page_posts` are the page's posts in `order` (newest first) as `(id, create_at)`. The
/// server compares `create_at` strictly, so using the oldest post as the next cursor would
/// skip other posts with the same `create_at` (§2.4). Instead the cursor is the oldest post
/// strictly newer than the page's minimum; the overlap is re-read and de-duplicated. When the
/// whole page shares one `create_at`, the cursor stays and the page offset grows.
pub fn next_walk_step(
    current: &WalkStep,
    page_posts: &[(&str, i64)],
    prev_post_id: &str,
) -> Option<WalkStep> {
    if page_posts.is_empty() || prev_post_id.is_empty() {
        return None;
    }
    let min = page_posts
        .iter()
        .map(|(_, at)| *at)
        .min()
        .expect("page is not empty");
    let cursor = page_posts
        .iter()
        .filter(|(_, at)| *at > min)
        .min_by_key(|(_, at)| *at)
        .map(|(id, _)| PostId::from(*id));
    Some(match cursor {
        Some(id) => WalkStep {
            before: Some(id),
            page: 0,
        },
        None => WalkStep {
            before: current.before.clone(),
            page: current.page + 1,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walk_cursor_skips_no_equal_timestamps() {
        let start = WalkStep {
            before: None,
            page: 0,
        };
        // Distinct times: cursor = the oldest post that is newer than the page minimum.
        let page = [("p5", 50), ("p4", 40), ("p3", 30)];
        assert_eq!(
            next_walk_step(&start, &page, "x"),
            Some(WalkStep {
                before: Some("p4".into()),
                page: 0
            })
        );
        // A run at the bottom: cursor above it, so the run is read again in full.
        let page = [("p5", 50), ("p4", 40), ("p3", 30), ("p2", 30)];
        assert_eq!(
            next_walk_step(&start, &page, "x"),
            Some(WalkStep {
                before: Some("p4".into()),
                page: 0
            })
        );
        // Whole page one instant: same cursor, next offset.
        let cur = WalkStep {
            before: Some("q".into()),
            page: 2,
        };
        let page = [("a", 7), ("b", 7)];
        assert_eq!(
            next_walk_step(&cur, &page, "x"),
            Some(WalkStep {
                before: Some("q".into()),
                page: 3
            })
        );
        // Done when the server says there is nothing older, or the page is empty.
        assert_eq!(next_walk_step(&start, &[("a", 1)], ""), None);
        assert_eq!(next_walk_step(&start, &[], "x"), None);
    }
}
