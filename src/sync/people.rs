//! The people and pictures around the channels: users (refreshed, and fetched when posts
//! name someone new), team members and icons, custom emojis, and the images of all of them.
//!
//! May import what `sync` may.

use std::collections::HashSet;

use futures_util::StreamExt;

use super::files::{self, StoreFn, Stored, fetch_and_store};
use super::{Run, SyncContext, SyncError, Tally, members_due, record_failure};
use crate::catalog::ImageOwner;
use crate::mm::DownloadError;
use crate::model::object::{Raw, Team};
use crate::model::{EmojiId, TeamId, UserId, now_ms};
use crate::progress::Level;

impl Run<'_> {
    pub(super) async fn sync_team(&mut self, team: &Raw<Team>) -> Result<(), SyncError> {
        let team_id = team.value.id.clone();
        let id = team_id.clone();
        let synced_at = self
            .ctx
            .writer
            .call(move |c| c.team_members_synced_at(&id))
            .await?;
        if members_due(self.ctx.options, synced_at)
            || self.team_membership_changed.contains(&team_id)
        {
            match refresh_team_members(self.ctx, &team_id).await {
                Ok(()) => {}
                Err(SyncError::Server(e)) => {
                    self.fail(format!("members of team {}", team.value.name), e)?
                }
                Err(e) => return Err(e),
            }
        }
        match fetch_team_icon(self.ctx, team).await {
            Ok(bytes) => self.summary.bytes_fetched += bytes,
            Err(SyncError::Server(e)) => {
                self.fail(format!("icon of team {}", team.value.name), e)?
            }
            Err(e) => return Err(e),
        }
        Ok(())
    }

    pub(super) async fn sync_users(
        &mut self,
        known_at_start: Vec<UserId>,
        watermark: i64,
    ) -> Result<(), SyncError> {
        // Changed users among those we already had: one request per batch, `since` filtered.
        if !known_at_start.is_empty() {
            let since = (watermark - self.ctx.options.since_margin_ms).max(1);
            match self
                .ctx
                .client
                .fetch_users(&known_at_start, Some(since))
                .await
            {
                Ok(users) => {
                    self.ctx
                        .writer
                        .call(move |c| c.upsert_users(&users))
                        .await?
                }
                Err(e) => self.fail("users (refresh)".into(), e)?,
            }
        }
        let extra = std::mem::take(&mut self.extra_users);
        self.ctx
            .writer
            .call(move |c| c.upsert_users(&extra))
            .await?;
        let missing = store_missing_users(self.ctx).await?;
        self.absorb(missing);
        if self.ctx.options.skips.user_images {
            return Ok(());
        }
        let images = fetch_avatars(self.ctx).await?;
        self.absorb(images);
        Ok(())
    }
}

/// A team's member list, read and replaced (a sync's team step; live capture's team
/// events).
pub(super) async fn refresh_team_members(
    ctx: SyncContext<'_>,
    team_id: &TeamId,
) -> Result<(), SyncError> {
    let members = ctx.client.fetch_team_members(team_id).await?;
    let id = team_id.to_owned();
    ctx.writer
        .call(move |c| c.replace_team_members(&id, &members, now_ms()))
        .await?;
    Ok(())
}

/// The team's icon, when it has one newer than the one held; the bytes fetched.
pub(super) async fn fetch_team_icon(
    ctx: SyncContext<'_>,
    team: &Raw<Team>,
) -> Result<u64, SyncError> {
    let icon_update = team.value.last_team_icon_update;
    if icon_update <= 0 {
        return Ok(0);
    }
    let team_id = team.value.id.clone();
    let id = team_id.clone();
    let stored = ctx.writer.call(move |c| c.team_icon_update(&id)).await?;
    if stored == icon_update {
        return Ok(0);
    }
    let (blob, content_type) =
        match files::download_blob(ctx.client, ctx.blobs, &["teams", &team_id, "image"]).await {
            Ok(found) => found,
            Err(DownloadError::Server(e)) => return Err(e.into()),
            Err(DownloadError::Sink(e)) => return Err(e.into()),
        };
    let bytes = blob.size;
    ctx.writer
        .call(move |c| {
            c.set_image(
                ImageOwner::Team,
                &team_id,
                &blob,
                &content_type,
                icon_update,
                now_ms(),
            )
        })
        .await?;
    Ok(bytes)
}

/// Users the archive refers to (members of archived channels and teams, authors, reactors)
/// that it does not hold: fetched and stored. A sync's last step, and live capture's after
/// it stores new members or posts.
pub(super) async fn store_missing_users(ctx: SyncContext<'_>) -> Result<Tally, SyncError> {
    let mut tally = Tally::default();
    let referenced = ctx.writer.call(|c| c.referenced_user_ids()).await?;
    let (known, _) = ctx.writer.call(|c| c.known_users()).await?;
    let known: HashSet<UserId> = known.into_iter().collect();
    let missing: Vec<UserId> = referenced
        .into_iter()
        .filter(|id| !known.contains(id))
        .collect();
    if !missing.is_empty() {
        match ctx.client.fetch_users(&missing, None).await {
            Ok(users) => ctx.writer.call(move |c| c.upsert_users(&users)).await?,
            Err(e) => record_failure(ctx.observer, &mut tally.failures, "users".into(), e)?,
        }
    }
    Ok(tally)
}

/// The pictures of users whose `last_picture_update` is not the one of the picture held.
pub(super) async fn fetch_avatars(ctx: SyncContext<'_>) -> Result<Tally, SyncError> {
    let avatars = ctx.writer.call(|c| c.users_needing_avatar()).await?;
    let stale = avatars.into_iter().map(|(id, at)| (id.into(), at));
    fetch_images(ctx, ImageOwner::User, stale).await
}

/// Custom emojis: the list, then the images of new or changed ones.
pub(super) async fn sync_emojis(ctx: SyncContext<'_>) -> Result<Tally, SyncError> {
    let SyncContext {
        client,
        writer,
        observer,
        ..
    } = ctx;
    let mut tally = Tally::default();
    let emojis = match client.fetch_emojis().await {
        Ok(Some(list)) => list,
        Ok(None) => {
            let note = "custom emojis are disabled on this server; skipped".to_owned();
            observer.note(Level::Info, &note);
            tally.notes.push(note);
            return Ok(tally);
        }
        Err(e) => {
            record_failure(observer, &mut tally.failures, "custom emojis".into(), e)?;
            return Ok(tally);
        }
    };
    let stale = writer
        .call(move |c| c.replace_emojis(&emojis, now_ms()))
        .await?;
    let images = fetch_emoji_images(ctx, stale).await?;
    tally.add(images);
    Ok(tally)
}

/// The images of emojis `(id, update_at)` whose stored image is missing or older.
pub(super) async fn fetch_emoji_images(
    ctx: SyncContext<'_>,
    stale: Vec<(EmojiId, i64)>,
) -> Result<Tally, SyncError> {
    let stale = stale.into_iter().map(|(id, at)| (id.into(), at));
    fetch_images(ctx, ImageOwner::Emoji, stale).await
}

/// An image to fetch: whose (a user's picture or an emoji's image), and the server's change
/// marker it belongs to (`last_picture_update`, `update_at`).
#[derive(Clone)]
struct StaleImage {
    owner: ImageOwner,
    id: String,
    changed_at: i64,
}

impl StaleImage {
    /// The failed item's name, as a run's report lists it.
    fn item(&self) -> String {
        match self.owner {
            ImageOwner::User => format!("picture of user {}", self.id),
            ImageOwner::Emoji => format!("image of emoji {}", self.id),
            ImageOwner::Team => format!("icon of team {}", self.id),
        }
    }
}

/// Downloads the images of `stale` (`(id, change marker)`, all of `owner`: users or emojis)
/// `concurrency` at a time and counts them; an image that cannot be fetched is one failed
/// item.
async fn fetch_images(
    ctx: SyncContext<'_>,
    owner: ImageOwner,
    stale: impl Iterator<Item = (String, i64)>,
) -> Result<Tally, SyncError> {
    let route = match owner {
        ImageOwner::User => "users",
        ImageOwner::Emoji => "emoji",
        ImageOwner::Team => "teams",
    };
    let items = stale.map(|(id, changed_at)| {
        let segments = vec![route.to_owned(), id.clone(), "image".to_owned()];
        let image = StaleImage {
            owner,
            id,
            changed_at,
        };
        (image, segments)
    });
    let store: StoreFn<StaleImage> = |c, image, blob, content_type| {
        let StaleImage {
            owner,
            id,
            changed_at,
        } = image;
        c.set_image(*owner, id, blob, content_type, *changed_at, now_ms())
    };
    let mut tally = Tally::default();
    let mut fetched = fetch_and_store(
        ctx,
        futures_util::stream::iter(items.collect::<Vec<_>>()),
        store,
    );
    while let Some(Stored { key, result }) = fetched.next().await {
        match result {
            Ok(bytes) => tally.bytes_fetched += bytes,
            Err(SyncError::Server(e)) => {
                record_failure(ctx.observer, &mut tally.failures, key.item(), e)?
            }
            Err(fatal) => return Err(fatal),
        }
    }
    Ok(tally)
}
