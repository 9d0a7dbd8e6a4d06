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
//! - a user: read again as a sync reads it (`GET /users/me` for the account,
//!   `POST /users/ids` for anyone else), when the archive holds that user; the picture when
//!   its `last_picture_update` changed;
//! - a custom emoji: its row and image;
//! - a team (`update_team`, `restore_team`, `delete_team`, our own `added_to_team`): its row
//!   from the team list a sync reads, the rules applied to it against every team listed; a
//!   selected team's members and icon; when it is new to the archive, or selected now and
//!   not before, its channels (`GET /users/me/teams/{id}/channels`, that team only, never the
//!   walk of every channel), judged and stored as a sync does, the newly selected ones
//!   synced; renamed while selected, its channels as the catalog lists them judged again;
//! - a member who left a team (`leave_team`): the team's member list, the member lists of
//!   its archived channels that listed them (the server removes those memberships without
//!   an event), and their user row (the server touches its `update_at`).
//!
//! After members or posts are stored, users the archive now refers to and does not hold are
//! fetched, with their pictures (a sync's last step).
//!
//! May import what `sync` may.

use std::collections::{HashMap, HashSet};

use super::files::FileQueue;
use super::people::{
    fetch_avatars, fetch_emoji_images, fetch_team_icon, refresh_team_members, store_missing_users,
};
use super::posts::{ChannelTask, channel_label};
use super::{SyncContext, SyncError, Tally};
use crate::model::object::{Channel, Emoji, Raw, User};
use crate::model::{ChannelId, ChannelType, TeamId, UserId, dm_other_user, now_ms};
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
    channel_id: &ChannelId,
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
        skips.channels(),
    );
    let chosen = rules.channels.into_iter().find(|c| c.id == *channel_id);
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
pub(super) async fn members(
    ctx: SyncContext<'_>,
    channel_id: &ChannelId,
) -> Result<Tally, SyncError> {
    let members = ctx.client.fetch_channel_members(channel_id).await?;
    let id = channel_id.to_owned();
    ctx.writer
        .call(move |c| c.replace_channel_members(&id, &members, now_ms()))
        .await?;
    users_referred_to(ctx).await
}

/// A changed user (`user_updated`): when the archive holds that user, read again over REST
/// as a sync reads it (our own through `GET /users/me`, anyone else through
/// `POST /users/ids`), and the new picture fetched when `last_picture_update` moved. The
/// event's copy is not stored: the server sanitizes it per receiver and sends a user their
/// own record unsanitized, password hash and MFA secret included (`app/user.go`
/// sendUpdatedUserEvent), so only the REST answer is what a sync stores.
pub(super) async fn user(
    ctx: SyncContext<'_>,
    me: Me<'_>,
    user_id: &UserId,
) -> Result<Tally, SyncError> {
    let skips = ctx.options.skips;
    if skips.users {
        return Ok(Tally::default());
    }
    let id = user_id.clone();
    let held = ctx
        .writer
        .call(move |c| Ok(!c.usernames(std::slice::from_ref(&id))?.is_empty()))
        .await?;
    if !held {
        return Ok(Tally::default());
    }
    let users = if user_id == me.id {
        vec![ctx.client.fetch_me().await?]
    } else {
        ctx.client
            .fetch_users(std::slice::from_ref(user_id), None)
            .await?
    };
    ctx.writer.call(move |c| c.upsert_users(&users)).await?;
    if skips.user_images {
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

/// What fetching a team found.
#[derive(Debug, Default)]
pub(super) struct TeamFetched {
    /// The team's channels that were judged: channel id → selected (now or before).
    pub(super) channels: Vec<(ChannelId, bool)>,
    /// Posts written by the first sync of channels selected now and not before.
    pub(super) posts_written: u64,
    pub(super) tally: Tally,
}

/// A team an event named; `joined`: our own `added_to_team` (the server touched our user's
/// `update_at` too: `app/team.go` JoinUserToTeam, UpdateUpdateAt). `selection` is the
/// follower's channel id → selected.
pub(super) async fn team(
    ctx: SyncContext<'_>,
    me: Me<'_>,
    team_id: &TeamId,
    joined: bool,
    selection: &HashMap<ChannelId, bool>,
    files: &FileQueue<'_>,
) -> Result<TeamFetched, SyncError> {
    let skips = ctx.options.skips;
    let mut fetched = TeamFetched::default();
    if joined && !skips.users {
        let me_now = ctx.client.fetch_me().await?;
        ctx.writer
            .call(move |c| c.upsert_users(std::slice::from_ref(&me_now)))
            .await?;
    }
    let mut teams = ctx.client.fetch_teams().await?;
    let team_views: Vec<TeamView> = teams.iter().map(|t| TeamView::from(&t.value)).collect();
    let Some(at) = teams.iter().position(|t| t.value.id == *team_id) else {
        // Not ours any more (left, deleted): a sync no longer lists it; the archive keeps it.
        return Ok(fetched);
    };
    let team = teams.swap_remove(at);
    let team_rules = ChannelSkips {
        teams: skips.teams,
        direct: true,
        groups: true,
    };
    let no_people = HashMap::new();
    let no_groups = HashMap::new();
    let judge = |channels: &[ChannelView]| {
        selection::plan_selection(
            &ctx.options.channels,
            (me.id, me.name),
            &team_views,
            channels,
            &no_people,
            &no_groups,
            team_rules,
        )
    };
    let selected = judge(&[]).team_ids.iter().any(|id| id == team_id);
    let id = team_id.to_owned();
    let (before, was_selected, team) = ctx
        .writer
        .call(move |c| {
            let before = c.listed_team(&id)?;
            let was_selected = c.team_selected(&id)?;
            c.upsert_team(&team, selected)?;
            Ok((before, was_selected, team))
        })
        .await?;
    let renamed = before.is_some_and(|(_, name, display_name)| {
        name != team.value.name || display_name != team.value.display_name
    });
    let new_to_us = joined || was_selected.is_none();
    let newly_selected = selected && was_selected != Some(true);
    if selected && renamed && !new_to_us && !newly_selected {
        // Another rule may name it now: its channels as the catalog lists them, judged again;
        // those chosen now and not before are fetched and synced as a new channel is.
        let id = team_id.to_owned();
        let listed = ctx
            .writer
            .call(move |c| c.listed_team_channels(&id))
            .await?;
        let views: Vec<ChannelView> = listed
            .into_iter()
            .map(|(id, kind, name, display_name)| ChannelView {
                id,
                team_id: team_id.to_owned(),
                kind: ChannelType::from_code(&kind),
                name,
                display_name,
            })
            .collect();
        for chosen in judge(&views).channels {
            if selection.get(&chosen.id) == Some(&true) {
                continue;
            }
            let found = channel(ctx, me, &chosen.id, false, files).await?;
            fetched.posts_written += found.posts_written;
            fetched.tally.add(found.tally);
            fetched.channels.push((chosen.id, found.selected));
        }
    }
    if new_to_us || newly_selected {
        let listed = ctx
            .client
            .fetch_team_channels(std::slice::from_ref(&team.value.id))
            .await?;
        // DMs and GMs come with every team's list: their own events judge them.
        let channels: Vec<Raw<Channel>> = listed
            .into_iter()
            .filter(|c| c.value.team_id == *team_id)
            .collect();
        let views: Vec<ChannelView> = channels
            .iter()
            .map(|c| ChannelView::from(&c.value))
            .collect();
        let chosen: HashSet<ChannelId> = judge(&views).channels.into_iter().map(|c| c.id).collect();
        for channel in channels {
            let id = channel.value.id.clone();
            let now = chosen.contains(&id);
            let before = selection.get(&id) == Some(&true);
            let label = channel_label(&channel, None);
            let channel = ctx
                .writer
                .call(move |c| {
                    c.upsert_channel(&channel, now, None)?;
                    Ok(channel)
                })
                .await?;
            fetched.channels.push((id, now || before));
            if now && !before {
                let mut task = ChannelTask::new(ctx, files.clone());
                task.sync_channel(&channel, &label).await?;
                fetched.posts_written += task.summary.posts_written;
                fetched.tally.failures.extend(task.failures);
            }
        }
    }
    if selected {
        refresh_team_members(ctx, team_id).await?;
        fetched.tally.bytes_fetched += fetch_team_icon(ctx, &team).await?;
    }
    fetched.tally.add(users_referred_to(ctx).await?);
    Ok(fetched)
}

/// Someone else left a team (`leave_team`): the team's member list when the team is
/// archived, the member lists of its archived channels that listed them, and their user row
/// (`app/team.go` LeaveTeam removes the channel memberships without an event and touches the
/// user's `update_at`).
pub(super) async fn team_member_left(
    ctx: SyncContext<'_>,
    team_id: &TeamId,
    user_id: &UserId,
) -> Result<Tally, SyncError> {
    let (team, user) = (team_id.clone(), user_id.clone());
    let (team_selected, channels, held) = ctx
        .writer
        .call(move |c| {
            Ok((
                c.team_selected(&team)?,
                c.selected_channels_with_member(&team, &user)?,
                !c.usernames(std::slice::from_ref(&user))?.is_empty(),
            ))
        })
        .await?;
    if team_selected == Some(true) {
        refresh_team_members(ctx, team_id).await?;
    }
    for channel_id in &channels {
        let members = ctx.client.fetch_channel_members(channel_id).await?;
        let id = channel_id.clone();
        ctx.writer
            .call(move |c| c.replace_channel_members(&id, &members, now_ms()))
            .await?;
    }
    if held && !ctx.options.skips.users {
        let users = ctx
            .client
            .fetch_users(std::slice::from_ref(user_id), None)
            .await?;
        ctx.writer.call(move |c| c.upsert_users(&users)).await?;
    }
    users_referred_to(ctx).await
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
    usernames: HashMap<UserId, String>,
    group_members: HashMap<ChannelId, Vec<UserId>>,
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
    let strangers: Vec<UserId> = match ChannelType::from_code(&c.kind) {
        ChannelType::Direct if !skips.direct => dm_other_user(&c.name, me.id)
            .filter(|other| other != me.id)
            .map(|other| vec![other])
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
                    let ids: Vec<UserId> =
                        members.iter().map(|m| m.value.user_id.clone()).collect();
                    people.group_members.insert(c.id.clone(), ids.clone());
                    ids.into_iter().filter(|id| id != me.id).collect()
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
    let unknown: Vec<UserId> = strangers
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
