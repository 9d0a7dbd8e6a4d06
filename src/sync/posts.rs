//! One channel: its posts (first backfill by cursor walk, then `since` increments, with the
//! truncation guard of §2.8), its member list, and its files handed to the run's download
//! stage page by page.
//!
//! May import what `sync` may.

use std::collections::{HashMap, HashSet};

use super::plan::{WalkStep, next_walk_step};

use super::files::FileQueue;
use super::{Failure, SyncContext, SyncError, members_due, record_failure, with_causes};
use crate::catalog::RunSummary;
use crate::catalog::{ChannelCursor, LastOutcome, PageOutcome, Walk};
use crate::mm::MmError;
use crate::mm::PostsQuery;
use crate::mm::wire::PostList;
use crate::model::naming::ChannelNames;
use crate::model::object::{self, Raw};
use crate::model::{ChannelId, ChannelType, PostId, now_ms};
use crate::progress::{Level, Progress};

/// What a channel's new posts say about memberships.
#[derive(Default)]
struct Changes {
    channel_membership_changed: bool,
    team_membership_changed: bool,
}

impl Changes {
    fn add(&mut self, page: &PageOutcome) {
        self.channel_membership_changed |= page.channel_membership_changed;
        self.team_membership_changed |= page.team_membership_changed;
    }
}

/// The server silently caps `since` answers at this many changed rows (§2.5).
const SINCE_CAP: usize = 1000;

/// Parses the posts of a page; a post the server sent malformed is skipped, not fatal.
fn parse_posts(list: &PostList, channel_id: &ChannelId) -> Vec<Raw<object::Post>> {
    list.posts
        .values()
        .filter_map(|raw| Raw::<object::Post>::parse(raw.clone()).ok())
        .filter(|p| p.value.channel_id.is_empty() || p.value.channel_id == *channel_id)
        .collect()
}

/// Where a walk stands according to its cursor (the newest page when it has not begun).
fn walk_step(cursor: &ChannelCursor) -> WalkStep {
    cursor.walk.as_ref().map_or(
        WalkStep {
            before: None,
            page: 0,
        },
        |w| WalkStep {
            before: w.before.clone(),
            page: w.page,
        },
    )
}

fn posts_query(step: &WalkStep) -> PostsQuery {
    match &step.before {
        None => PostsQuery::Page { page: step.page },
        Some(id) => PostsQuery::Before {
            post_id: id.clone(),
            page: step.page,
        },
    }
}

/// One channel's sync. Channels run concurrently; each task keeps its own counts and
/// failures, which the run merges when the task ends.
pub(crate) struct ChannelTask<'a> {
    ctx: SyncContext<'a>,
    files: FileQueue<'a>,
    pub(crate) summary: RunSummary,
    pub(crate) failures: Vec<Failure>,
    /// Join/leave posts of the team were seen: its member list needs a refresh.
    pub(crate) team_membership_changed: bool,
}

impl<'a> ChannelTask<'a> {
    pub(crate) fn new(ctx: SyncContext<'a>, files: FileQueue<'a>) -> ChannelTask<'a> {
        ChannelTask {
            ctx,
            files,
            summary: RunSummary::default(),
            failures: Vec::new(),
            team_membership_changed: false,
        }
    }

    fn fail(&mut self, item: String, error: MmError) -> Result<(), SyncError> {
        record_failure(self.ctx.observer, &mut self.failures, item, error)
    }

    pub(crate) async fn sync_channel(
        &mut self,
        channel: &Raw<object::Channel>,
        label: &str,
    ) -> Result<(), SyncError> {
        let id = channel.value.id.clone();
        let label = label.to_owned();
        let outcome = self.sync_posts(&id).await;
        let changes = match outcome {
            Ok(changes) => changes,
            // Not an outcome of the channel: the run is stopping.
            Err(SyncError::Server(e @ MmError::Stopped { .. })) => return Err(e.into()),
            Err(SyncError::Server(e)) => {
                let note = with_causes(&e);
                let cid = id.clone();
                self.ctx
                    .writer
                    .call(move |c| {
                        let cursor = c.load_cursor(&cid)?;
                        c.store_cursor(&cid, &cursor, LastOutcome::Failed(&note), now_ms())
                    })
                    .await?;
                return self.fail(format!("posts of {label}"), e);
            }
            Err(other) => return Err(other),
        };
        if self.ctx.stop.requested() {
            return Ok(());
        }
        self.team_membership_changed |= changes.team_membership_changed;
        self.sync_channel_members(&id, &label, changes.channel_membership_changed)
            .await?;
        self.queue_left_over_files(&id).await
    }

    /// Brings the channel's posts up to date; says whether memberships may have changed.
    async fn sync_posts(&mut self, channel_id: &ChannelId) -> Result<Changes, SyncError> {
        let cid = channel_id.to_owned();
        let mut cursor = self.ctx.writer.call(move |c| c.load_cursor(&cid)).await?;
        let mut changes = Changes::default();
        if cursor.walk.is_none()
            && let Some(watermark) = cursor.watermark
            && !self.ctx.options.update_old_posts
        {
            let since = watermark - self.ctx.options.since_margin_ms;
            let page = self
                .ctx
                .client
                .fetch_posts(
                    channel_id,
                    &PostsQuery::Since {
                        since: since.max(1),
                    },
                )
                .await?;
            let truncated = page.list.order.len() >= SINCE_CAP;
            let posts = parse_posts(&page.list, channel_id);
            if !truncated {
                let newest = page
                    .list
                    .order
                    .iter()
                    .filter_map(|id| posts.iter().find(|p| &p.value.id == id))
                    .map(|p| p.value.update_at)
                    .max()
                    .unwrap_or(watermark);
                cursor.watermark = Some(newest.max(watermark));
                changes.add(&self.apply_page(channel_id, posts, &cursor).await?);
                return Ok(changes);
            }
            // More changed than one answer can hold: store what came, then walk everything.
            self.ctx.observer.note(
                Level::Info,
                &format!(
                    "channel {channel_id}: more than {SINCE_CAP} changes; re-reading the whole channel"
                ),
            );
            changes.add(&self.apply_page(channel_id, posts, &cursor).await?);
        }
        self.walk(channel_id, cursor, &mut changes).await?;
        Ok(changes)
    }

    /// A backwards cursor walk from the newest post, resumable from the stored cursor. The
    /// next page is fetched while the current one commits: the cursor it needs is known
    /// from the page itself, and commits stay in page order.
    async fn walk(
        &mut self,
        channel_id: &ChannelId,
        mut cursor: ChannelCursor,
        changes: &mut Changes,
    ) -> Result<(), SyncError> {
        let rescan = cursor.watermark.is_some();
        let mut seen: HashSet<PostId> = HashSet::new();
        let resumed = cursor.walk.is_some();
        let client = self.ctx.client;
        let mut step = walk_step(&cursor);
        let mut fetched = client.fetch_posts(channel_id, &posts_query(&step)).await?;
        loop {
            if self.ctx.stop.requested() {
                return Ok(());
            }
            let page = fetched;
            let posts = parse_posts(&page.list, channel_id);
            let started_at = now_ms();
            let walk = cursor.walk.get_or_insert_with(|| Walk {
                // The server's newest change when the walk began: changes made during the
                // walk are newer and the next `since` re-reads them.
                watermark: page
                    .etag_update_at
                    .or_else(|| posts.iter().map(|p| p.value.update_at).max())
                    .unwrap_or(1),
                before: None,
                page: 0,
                started_at,
            });
            let created: HashMap<&str, i64> = posts
                .iter()
                .map(|p| (p.value.id.as_str(), p.value.create_at))
                .collect();
            let in_order: Vec<(&str, i64)> = page
                .list
                .order
                .iter()
                .filter_map(|id| created.get_key_value(id.as_str()))
                .map(|(id, at)| (*id, *at))
                .collect();
            seen.extend(in_order.iter().map(|(id, _)| PostId::from(*id)));
            match next_walk_step(&step, &in_order, &page.list.prev_post_id) {
                Some(next) => {
                    walk.before = next.before;
                    walk.page = next.page;
                }
                None => {
                    let done = walk.watermark.max(cursor.watermark.unwrap_or(0));
                    cursor.watermark = Some(done);
                    cursor.walk = None;
                }
            }
            if cursor.walk.is_none() {
                changes.add(&self.apply_page(channel_id, posts, &cursor).await?);
                break;
            }
            step = walk_step(&cursor);
            let query = posts_query(&step);
            let (applied, next_page) = futures_util::future::join(
                self.apply_page(channel_id, posts, &cursor),
                client.fetch_posts(channel_id, &query),
            )
            .await;
            changes.add(&applied?);
            fetched = next_page?;
        }
        if rescan && !resumed {
            self.confirm_deletions(channel_id, &seen).await?;
        }
        Ok(())
    }

    /// After a full re-read: posts we hold that the walk did not see were deleted, unless
    /// the server still has them (checked one by one; rare).
    async fn confirm_deletions(
        &mut self,
        channel_id: &ChannelId,
        seen: &HashSet<PostId>,
    ) -> Result<(), SyncError> {
        let cid = channel_id.to_owned();
        let seen = seen.clone();
        let candidates = self
            .ctx
            .writer
            .call(move |c| c.posts_not_seen_since(&cid, &seen))
            .await?;
        for post_id in candidates {
            if !self.ctx.client.post_exists(&post_id).await? {
                let at = now_ms();
                self.ctx
                    .writer
                    .call(move |c| c.mark_post_deleted(&post_id, at))
                    .await?;
                self.summary.posts_written += 1;
            }
        }
        Ok(())
    }

    async fn apply_page(
        &mut self,
        channel_id: &ChannelId,
        posts: Vec<Raw<object::Post>>,
        cursor: &ChannelCursor,
    ) -> Result<PageOutcome, SyncError> {
        let cid = channel_id.to_owned();
        let cursor = cursor.clone();
        let mut outcome = self
            .ctx
            .writer
            .call(move |c| c.apply_posts_page(&cid, &posts, &cursor, LastOutcome::Ok, now_ms()))
            .await?;
        self.files
            .push(std::mem::take(&mut outcome.files_to_fetch))
            .await;
        self.summary.posts_written += outcome.posts_written;
        if outcome.posts_written > 0 {
            self.ctx
                .observer
                .progress(Progress::PostsWritten(outcome.posts_written));
        }
        for file_id in &outcome.files_without_info {
            match self.ctx.client.fetch_file_info(file_id).await {
                Ok(info) => {
                    let pending = self
                        .ctx
                        .writer
                        .call(move |c| c.upsert_file_info(&info))
                        .await?;
                    self.files.push(pending).await;
                }
                Err(e) if e.status() == Some(404) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(outcome)
    }

    async fn sync_channel_members(
        &mut self,
        channel_id: &ChannelId,
        label: &str,
        membership_changed: bool,
    ) -> Result<(), SyncError> {
        let cid = channel_id.to_owned();
        let synced_at = self
            .ctx
            .writer
            .call(move |c| c.channel_members_synced_at(&cid))
            .await?;
        if !(members_due(self.ctx.options, synced_at) || membership_changed) {
            return Ok(());
        }
        match self.ctx.client.fetch_channel_members(channel_id).await {
            Ok(members) => {
                let cid = channel_id.to_owned();
                self.ctx
                    .writer
                    .call(move |c| c.replace_channel_members(&cid, &members, now_ms()))
                    .await?;
                Ok(())
            }
            Err(e) => self.fail(format!("members of {label}"), e),
        }
    }

    /// Files of this channel still without bytes that no page of this run queued: left by
    /// an interrupted or failed earlier run. The download stage skips those already queued.
    async fn queue_left_over_files(&mut self, channel_id: &ChannelId) -> Result<(), SyncError> {
        let cid = channel_id.to_owned();
        let pending = self.ctx.writer.call(move |c| c.pending_files(&cid)).await?;
        self.files.push(pending).await;
        Ok(())
    }
}

/// How messages name a channel: [`ChannelNames::phrase`], direct and group channels by
/// their people.
pub(crate) fn channel_label(channel: &Raw<object::Channel>, export_name: Option<&str>) -> String {
    let c = &channel.value;
    let kind = ChannelType::from_code(&c.kind);
    ChannelNames {
        kind: &kind,
        id: &c.id,
        name: &c.name,
        display_name: &c.display_name,
        export_name,
    }
    .phrase()
}
