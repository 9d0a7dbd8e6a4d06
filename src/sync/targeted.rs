//! Live capture's targeted fetches: the rows a channel, membership, user or emoji event
//! changed, read over REST and written as a sync writes them (the same catalog calls, the
//! same `channels.json` rules, the same client and so the same pacing), instead of a whole
//! incremental sync.
//!
//! - a channel: `GET /channels/{id}`, selected by the rules as a sync selects it (a team
//!   channel among the team's channels the catalog lists, a direct or group channel by its
//!   people), its row stored selected or not; a channel selected now and not before gets
//!   its posts, members and files as a sync's channel step fetches them;
//! - a selected channel's members: the member list, replaced;
//! - a user: the row the event carries (the same sanitized profile `POST /users/ids`
//!   answers, `app/user.go`), when the archive holds that user; the picture when its
//!   `last_picture_update` changed;
//! - a custom emoji: its row and image.
//!
//! After members or posts are stored, users the archive now refers to and does not hold are
//! fetched, with their pictures (a sync's last step).
//!
//! May import what `sync` may.

use std::collections::HashMap;

use super::files::FileQueue;
use super::people::{fetch_avatars, fetch_emoji_images, store_missing_users};
use super::posts::{ChannelTask, channel_label};
use super::{SyncContext, SyncError, Tally};
use crate::model::object::{Channel, Emoji, Raw, User};
use crate::model::{ChannelType, UserId, dm_other_user, now_ms};
use crate::selection::{self, ChannelSkips, ChannelView, TeamView};

/// What fetching a channel found.
#[derive(Debug, Default)]
pub(super) struct ChannelFetched {
    /// `channels.json` selects it (now or before).
    pub(super) selected: bool,
    /// Posts written by the channel's first sync (selected now, not before).
    pub(super) posts_written: u64,
    pub(super) tally: Tally,
}

/// The account: its user id and username (`channels.json` names people by username).
#[derive(Clone, Copy)]
pub(super) struct Me<'a> {
    pub(super) id: &'a UserId,
    pub(super) name: &'a str,
}

/// Fetches a channel, applies the rules to it and stores it; `was_selected`: the catalog
/// already archives it (then its posts are followed live and need no sync).
pub(super) async fn channel(
    ctx: SyncContext<'_>,
    me: Me<'_>,
    channel_id: &str,
    was_selected: bool,
    files: &FileQueue<'_>,
) -> Result<ChannelFetched, SyncError> {
    let skips = ctx.options.skips;
    let channel = ctx.client.fetch_channel(channel_id).await?;
    let people = people_of(ctx, me, &channel).await?;
    let mut teams = Vec::new();
    let mut views = vec![ChannelView::from(&channel.value)];
    if ChannelType::from_code(&channel.value.kind).is_team_channel() {
        let team_id = channel.value.team_id.clone();
        let (team, listed) = ctx
            .writer
            .call(move |c| Ok((c.listed_team(&team_id)?, c.listed_team_channels(&team_id)?)))
            .await?;
        teams.extend(team.map(|(id, name, display_name)| TeamView {
            id,
            name,
            display_name,
        }));
        views.extend(listed.into_iter().filter(|(id, ..)| id != channel_id).map(
            |(id, kind, name, display_name)| ChannelView {
                id,
                team_id: channel.value.team_id.clone(),
                kind: ChannelType::from_code(&kind),
                name,
                display_name,
            },
        ));
    }
    let rules = selection::plan_selection(
        &ctx.options.channels,
        (me.id, me.name),
        &teams,
        &views,
        &people.usernames,
        &people.group_members,
        ChannelSkips {
            teams: skips.teams,
            direct: skips.direct,
            groups: skips.groups,
        },
    );
    let chosen = rules.channels.into_iter().find(|c| c.id == channel_id);
    let selected = chosen.is_some() || was_selected;
    let export_name = chosen.and_then(|c| c.export_name);
    let mut fetched = ChannelFetched {
        selected,
        ..ChannelFetched::default()
    };
    if let Some((_, why)) = rules.undecided.iter().find(|(id, _)| id == channel_id) {
        let error = format!("cannot tell whether channels.json selects it: {why}");
        ctx.observer.note(
            crate::progress::Level::Failure,
            &format!("channel {channel_id}: {error}"),
        );
        fetched.tally.failures.push(super::Failure {
            item: format!("channel {channel_id}"),
            error,
        });
    }
    let users = people.users;
    let label = channel_label(&channel, export_name.as_deref());
    let channel = ctx
        .writer
        .call(move |c| {
            if !skips.users && !users.is_empty() {
                c.upsert_users(&users)?;
            }
            c.upsert_channel(&channel, selected, export_name.as_deref())?;
            Ok(channel)
        })
        .await?;
    if selected && !was_selected {
        let mut task = ChannelTask::new(ctx, files.clone());
        task.sync_channel(&channel, &label).await?;
        fetched.posts_written = task.summary.posts_written;
        fetched.tally.failures.extend(task.failures);
        fetched.tally.add(users_referred_to(ctx).await?);
    }
    Ok(fetched)
}

/// A selected channel's member list, replaced; then the users it names.
pub(super) async fn members(ctx: SyncContext<'_>, channel_id: &str) -> Result<Tally, SyncError> {
    let members = ctx.client.fetch_channel_members(channel_id).await?;
    let id = channel_id.to_owned();
    ctx.writer
        .call(move |c| c.replace_channel_members(&id, &members, now_ms()))
        .await?;
    users_referred_to(ctx).await
}

/// A changed user (`user_updated`): stored when the archive holds that user, and the new
/// picture fetched when `last_picture_update` moved.
pub(super) async fn user(ctx: SyncContext<'_>, user: Raw<User>) -> Result<Tally, SyncError> {
    let skips = ctx.options.skips;
    if skips.users {
        return Ok(Tally::default());
    }
    let id = user.value.id.clone();
    let held = ctx
        .writer
        .call(move |c| {
            if c.usernames(std::slice::from_ref(&id))?.is_empty() {
                return Ok(false);
            }
            c.upsert_users(std::slice::from_ref(&user))?;
            Ok(true)
        })
        .await?;
    if !held || skips.user_images {
        return Ok(Tally::default());
    }
    fetch_avatars(ctx).await
}

/// A new custom emoji (`emoji_added`): its row and image.
pub(super) async fn emoji(ctx: SyncContext<'_>, emoji: Raw<Emoji>) -> Result<Tally, SyncError> {
    if ctx.options.skips.emojis {
        return Ok(Tally::default());
    }
    let stale = ctx.writer.call(move |c| c.upsert_emoji(&emoji)).await?;
    fetch_emoji_images(ctx, stale.into_iter().collect()).await
}

/// Users the archive refers to and does not hold, then the pictures it lacks.
pub(super) async fn users_referred_to(ctx: SyncContext<'_>) -> Result<Tally, SyncError> {
    let mut tally = Tally::default();
    if ctx.options.skips.users {
        return Ok(tally);
    }
    tally.add(store_missing_users(ctx).await?);
    if !ctx.options.skips.user_images {
        tally.add(fetch_avatars(ctx).await?);
    }
    Ok(tally)
}

/// Who is in a direct or group channel, as `channels.json` names them, and the users read
/// on the way (stored as a sync stores them).
#[derive(Default)]
struct People {
    usernames: HashMap<String, String>,
    group_members: HashMap<String, Vec<String>>,
    users: Vec<Raw<User>>,
}

async fn people_of(
    ctx: SyncContext<'_>,
    me: Me<'_>,
    channel: &Raw<Channel>,
) -> Result<People, SyncError> {
    let skips = ctx.options.skips;
    let mut people = People::default();
    let c = &channel.value;
    let strangers: Vec<String> = match ChannelType::from_code(&c.kind) {
        ChannelType::Direct if !skips.direct => dm_other_user(&c.name, me.id)
            .filter(|other| other != me.id)
            .map(|other| vec![other.0])
            .unwrap_or_default(),
        ChannelType::Group if !skips.groups => {
            let answered = ctx
                .client
                .fetch_group_channel_users(std::slice::from_ref(&c.id))
                .await?
                .and_then(|mut map| map.remove(&c.id));
            match answered {
                Some(users) => {
                    people.group_members.insert(
                        c.id.clone(),
                        users.iter().map(|u| u.value.id.clone()).collect(),
                    );
                    for user in &users {
                        people
                            .usernames
                            .insert(user.value.id.clone(), user.value.username.clone());
                    }
                    people.users.extend(users);
                    Vec::new()
                }
                // Not answered (an old server, or no other members left): the member list.
                None => {
                    let members = ctx.client.fetch_channel_members(&c.id).await?;
                    let ids: Vec<String> =
                        members.iter().map(|m| m.value.user_id.clone()).collect();
                    people.group_members.insert(c.id.clone(), ids.clone());
                    ids.into_iter().filter(|id| id != me.id.as_str()).collect()
                }
            }
        }
        _ => Vec::new(),
    };
    if strangers.is_empty() {
        return Ok(people);
    }
    let ids = strangers.clone();
    let known = ctx.writer.call(move |c| c.usernames(&ids)).await?;
    let unknown: Vec<String> = strangers
        .into_iter()
        .filter(|id| !known.contains_key(id))
        .collect();
    people.usernames.extend(known);
    if !unknown.is_empty() {
        for user in ctx.client.fetch_users(&unknown, None).await? {
            people
                .usernames
                .insert(user.value.id.clone(), user.value.username.clone());
            people.users.push(user);
        }
    }
    Ok(people)
}
