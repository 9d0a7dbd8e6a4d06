//! A stream of changes to a generated workspace, shaped like a busy real one, for the live
//! capture benches (`examples/follow_bench.rs`): each change is one mutation of the mock's
//! workspace, which publishes the WebSocket event the real server would (one per connection).
//!
//! The posts are those of [`shape`](super::shape) for the stream's own spec (threads with a
//! long tail, Markdown, code blocks, mentions, hashtags, a Zipf vocabulary, messages up to the
//! server's 16,383 characters, attachments), written into the channels and by the users of the
//! workspace [`Workspace::generated`] built from the same sizes. With [`Mix::Everything`] the
//! other changes come between them, each a number of posts after the post it concerns:
//! - every reaction [`shape`](super::shape) gives a post, 1–20 posts after it;
//! - [`EDITED`] of the posts edited (a sentence appended), 1–50 posts after;
//! - [`DELETED`] of the replies deleted, 1–100 posts after (roots are not: a later reply
//!   may still come);
//! - [`UNREACTED`] of the reactions removed again, 1–50 posts after they were added.
//!
//! Imports: `super` (spec, names, shape) and the workspace. Invariants: the same spec and mix
//! give the same changes in the same order; no change concerns a post deleted before it; when
//! the posts run out, the changes still due follow, then the stream ends.

use std::collections::{BTreeMap, HashSet};

use super::super::model::NewFile;
use super::super::sample::pseudo_bytes;
use super::super::workspace::Workspace;
use super::shape::{GenPosts, Rng};
use super::{GenSpec, team_name, username};

/// Share of the posts edited once.
pub const EDITED: f64 = 0.04;
/// Share of the replies deleted.
pub const DELETED: f64 = 0.02;
/// Share of the reactions removed again.
pub const UNREACTED: f64 = 0.05;

/// Which changes a stream makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mix {
    /// Posts only (a `posted` event each).
    Posts,
    /// Posts, reactions added and removed, edits and deletions.
    Everything,
}

/// What one change was, by the event it publishes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ChangeKind {
    Posted,
    Edited,
    Deleted,
    ReactionAdded,
    ReactionRemoved,
}

impl ChangeKind {
    /// The event's name on the wire.
    pub fn event(self) -> &'static str {
        match self {
            ChangeKind::Posted => "posted",
            ChangeKind::Edited => "post_edited",
            ChangeKind::Deleted => "post_deleted",
            ChangeKind::ReactionAdded => "reaction_added",
            ChangeKind::ReactionRemoved => "reaction_removed",
        }
    }
}

/// One change made: its kind and the id of the post it concerns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    pub kind: ChangeKind,
    pub post_id: String,
    /// For a reaction: the user's name and the emoji's.
    pub reaction: Option<(String, &'static str)>,
}

/// A change waiting for its turn; posts by their index in the stream, users by theirs.
#[derive(Clone, Debug)]
enum Later {
    React(usize, usize, &'static str),
    Unreact(usize, usize, &'static str),
    Edit(usize),
    Delete(usize),
}

impl Later {
    fn post(&self) -> usize {
        match self {
            Later::React(p, ..) | Later::Unreact(p, ..) | Later::Edit(p) | Later::Delete(p) => *p,
        }
    }
}

/// Sentences an edit appends, in rotation.
const EDIT_NOTES: [&str; 4] = [
    "\n\n_Edit:_ fixed the link above.",
    "\n\nEdit: the numbers are for last week, not this one.",
    " (edited: typo)",
    "\n\n**Update:** this is done, see the thread.",
];

/// The changes, made one at a time by [`ChangeStream::apply_next`].
pub struct ChangeStream {
    posts: GenPosts,
    mix: Mix,
    rng: Rng,
    seed: u64,
    attachment_bytes: usize,
    channel_ids: Vec<String>,
    usernames: Vec<String>,
    /// Ids of the stream's posts so far, by index.
    post_ids: Vec<String>,
    deleted: HashSet<usize>,
    /// Changes due, by (posts written when due, order of scheduling).
    due: BTreeMap<(usize, u64), Later>,
    scheduled: u64,
}

impl ChangeStream {
    /// The stream of `spec.posts` posts (and, with [`Mix::Everything`], the changes that go
    /// with them) for the workspace `Workspace::generated` built from `spec`'s teams,
    /// channels and users; `spec.seed` should differ from the workspace's, so the stream's
    /// posts are new ones.
    pub fn new(ws: &Workspace, spec: &GenSpec, mix: Mix) -> ChangeStream {
        let channel_ids = (0..spec.channels)
            .map(|c| ws.channel_id(&team_name(c % spec.teams), &format!("channel-{c}")))
            .collect();
        ChangeStream {
            posts: GenPosts::new(spec),
            mix,
            rng: Rng(spec.seed ^ 0x57AE_A4C4_A46E),
            seed: spec.seed,
            attachment_bytes: spec.attachment_bytes,
            channel_ids,
            usernames: (0..spec.users).map(username).collect(),
            post_ids: Vec::with_capacity(spec.posts),
            deleted: HashSet::new(),
            due: BTreeMap::new(),
            scheduled: 0,
        }
    }

    /// Makes the next change; None when the stream has ended.
    pub fn apply_next(&mut self, ws: &mut Workspace) -> Option<Change> {
        loop {
            let written = self.post_ids.len();
            let ready = self
                .due
                .first_key_value()
                .is_some_and(|(&(when, _), _)| when <= written);
            if ready || self.posts.len_left() == 0 {
                let (_, later) = self.due.pop_first()?;
                if let Some(change) = self.apply_later(ws, later) {
                    return Some(change);
                }
                continue;
            }
            return self.post(ws);
        }
    }

    fn schedule(&mut self, after: usize, later: Later) {
        self.scheduled += 1;
        self.due.insert((after, self.scheduled), later);
    }

    fn post(&mut self, ws: &mut Workspace) -> Option<Change> {
        let post = self.posts.next()?;
        let files = post
            .attachment
            .iter()
            .map(|file| NewFile {
                name: file.name.clone(),
                bytes: pseudo_bytes(
                    self.seed ^ (file.number as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
                    self.attachment_bytes,
                ),
                mime_type: file.mime_type.to_owned(),
            })
            .collect();
        let id = ws.create_post_with_files(
            &self.channel_ids[post.channel],
            &self.usernames[post.author],
            &post.message,
            post.root.map(|r| self.post_ids[r].as_str()),
            files,
        );
        self.post_ids.push(id.clone());
        let (i, now) = (post.index, self.post_ids.len());
        if self.mix == Mix::Everything {
            for (user, emoji) in &post.reactions {
                let at = now + self.rng.range(1, 20);
                self.schedule(at, Later::React(i, *user, emoji));
                if self.rng.chance(UNREACTED) {
                    let gone = at + self.rng.range(1, 50);
                    self.schedule(gone, Later::Unreact(i, *user, emoji));
                }
            }
            if self.rng.chance(EDITED) {
                let at = now + self.rng.range(1, 50);
                self.schedule(at, Later::Edit(i));
            }
            if post.root.is_some() && self.rng.chance(DELETED) {
                let at = now + self.rng.range(1, 100);
                self.schedule(at, Later::Delete(i));
            }
        }
        Some(Change {
            kind: ChangeKind::Posted,
            post_id: id,
            reaction: None,
        })
    }

    /// Applies a change that came due; None when its post was deleted meanwhile.
    fn apply_later(&mut self, ws: &mut Workspace, later: Later) -> Option<Change> {
        let index = later.post();
        if self.deleted.contains(&index) {
            return None;
        }
        let post_id = self.post_ids[index].clone();
        let (kind, reaction) = match later {
            Later::React(_, user, emoji) => {
                ws.add_reaction(&post_id, &self.usernames[user], emoji);
                let who = self.usernames[user].clone();
                (ChangeKind::ReactionAdded, Some((who, emoji)))
            }
            Later::Unreact(_, user, emoji) => {
                ws.remove_reaction(&post_id, &self.usernames[user], emoji);
                let who = self.usernames[user].clone();
                (ChangeKind::ReactionRemoved, Some((who, emoji)))
            }
            Later::Edit(_) => {
                let note = EDIT_NOTES[self.scheduled as usize % EDIT_NOTES.len()];
                let message = format!("{}{note}", ws.posts[&post_id].message);
                ws.edit_post(&post_id, &message);
                (ChangeKind::Edited, None)
            }
            Later::Delete(_) => {
                ws.delete_post(&post_id);
                self.deleted.insert(index);
                (ChangeKind::Deleted, None)
            }
        };
        Some(Change {
            kind,
            post_id,
            reaction,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(posts: usize, seed: u64) -> GenSpec {
        GenSpec {
            posts,
            attachments: posts / 20,
            attachment_bytes: 64,
            seed,
            ..GenSpec::default()
        }
    }

    fn run(mix: Mix) -> (Workspace, Vec<Change>) {
        let mut ws = Workspace::generated(&spec(200, 1));
        let mut stream = ChangeStream::new(&ws, &spec(2_000, 2), mix);
        let changes: Vec<Change> = std::iter::from_fn(|| stream.apply_next(&mut ws)).collect();
        (ws, changes)
    }

    fn count(changes: &[Change], kind: ChangeKind) -> usize {
        changes.iter().filter(|c| c.kind == kind).count()
    }

    #[test]
    fn every_kind_of_change_comes_at_its_rate_and_lands_in_the_workspace() {
        let (ws, changes) = run(Mix::Everything);
        assert_eq!(count(&changes, ChangeKind::Posted), 2_000);
        assert_eq!(
            ws.live_post_count(),
            200 + 2_000 - count(&changes, ChangeKind::Deleted)
        );
        // The shape gives about a fifth of the posts one to four reactions.
        let added = count(&changes, ChangeKind::ReactionAdded);
        assert!((300..=1_200).contains(&added), "{added} reactions");
        let edited = count(&changes, ChangeKind::Edited);
        assert!((40..=130).contains(&edited), "{edited} edits");
        let deleted = count(&changes, ChangeKind::Deleted);
        assert!((5..=45).contains(&deleted), "{deleted} deletions");
        assert!(count(&changes, ChangeKind::ReactionRemoved) >= 5);
        // Nothing happens to a post after its deletion.
        let mut gone = HashSet::new();
        for change in &changes {
            assert!(
                !gone.contains(&change.post_id),
                "{change:?} after the deletion"
            );
            if change.kind == ChangeKind::Deleted {
                gone.insert(change.post_id.clone());
                assert!(ws.posts[&change.post_id].delete_at > 0);
            }
        }
        // Edits are interleaved with posts, not all at the end.
        let first_edit = changes.iter().position(|c| c.kind == ChangeKind::Edited);
        assert!(first_edit.is_some_and(|i| i < changes.len() / 2));
        let edited_post = changes
            .iter()
            .find(|c| c.kind == ChangeKind::Edited)
            .map(|c| &ws.posts[&c.post_id])
            .expect("an edit");
        assert!(edited_post.edit_at > 0);
    }

    #[test]
    fn a_posts_only_stream_posts_and_is_deterministic() {
        let (_, changes) = run(Mix::Posts);
        assert_eq!(changes.len(), 2_000);
        assert!(changes.iter().all(|c| c.kind == ChangeKind::Posted));
        let (_, again) = run(Mix::Posts);
        assert_eq!(changes, again);
    }
}
