//! What the server lists for the user, and which of it the run archives. Discovery (teams,
//! channels, the usernames of DM partners and the members of group channels, which
//! `channels.json` names them by) is kept apart from selection (`crate::selection` applied to
//! it), so a run that follows the same channels live can reuse the selected set.
//!
//! May import what `sync` may.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::{Failure, Run, SyncError};
use crate::model::object::{Channel, Raw, Team};
use crate::model::{ChannelId, ChannelType, TeamId, UserId, dm_other_user};
use crate::progress::Level;
use crate::selection::{self, ChannelView, TeamView};

/// Everything of the workspace the user can see, as the server listed it this run.
pub(crate) struct Discovery {
    pub(crate) teams: Arc<Vec<Raw<Team>>>,
    pub(crate) channels: Arc<Vec<Raw<Channel>>>,
    people: PrivateChannelUsers,
}

/// Who is in the direct and group channels: what `channels.json` names them by.
#[derive(Default)]
struct PrivateChannelUsers {
    /// Usernames by user id (DM partners, group members).
    usernames: HashMap<UserId, String>,
    /// Member ids (you included) by group channel id.
    group_members: HashMap<ChannelId, Vec<UserId>>,
    /// Why a group channel's members could not be read, by channel id.
    member_errors: HashMap<ChannelId, String>,
}

/// What this run archives of a [`Discovery`].
pub(crate) struct Selected {
    /// Teams `channels.json` names: their members and icons are archived too.
    pub(crate) team_ids: HashSet<TeamId>,
    /// Selected channels by id, each with the name a direct or group channel is exported
    /// under (None for team channels).
    pub(crate) channels: HashMap<ChannelId, Option<String>>,
    /// Selected channel ids in the order the rules chose them.
    order: Vec<ChannelId>,
}

impl Selected {
    /// The selected channels of `discovery`, in the order the rules chose them.
    pub(crate) fn in_order<'d>(&self, discovery: &'d Discovery) -> Vec<&'d Raw<Channel>> {
        self.order
            .iter()
            .filter_map(|id| discovery.channels.iter().find(|c| &c.value.id == id))
            .collect()
    }

    /// The name a selected direct or group channel is exported under.
    pub(crate) fn export_name(&self, channel_id: &ChannelId) -> Option<&str> {
        self.channels.get(channel_id).and_then(|n| n.as_deref())
    }
}

fn kind(channel: &Raw<Channel>) -> ChannelType {
    ChannelType::from_code(&channel.value.kind)
}

impl Run<'_> {
    /// Teams and channels (both at once: they only need the session), then the people of
    /// the direct and group channels.
    pub(super) async fn discover(&mut self) -> Result<Discovery, SyncError> {
        let client = self.ctx.client;
        let (teams, channels) =
            futures_util::future::join(client.fetch_teams(), client.fetch_my_channels()).await;
        let teams = teams?;
        let channels = match channels? {
            Some(channels) => channels,
            None => {
                let team_ids: Vec<TeamId> = teams.iter().map(|t| t.value.id.clone()).collect();
                client.fetch_team_channels(&team_ids).await?
            }
        };
        let people = self.resolve_private_channel_users(&channels).await?;
        Ok(Discovery {
            teams: Arc::new(teams),
            channels: Arc::new(channels),
            people,
        })
    }

    /// Applies `channels.json`. Names it gives that match nothing are warnings (`--quiet`
    /// still shows them); a channel the rules cannot be applied to is a failed item.
    pub(super) fn select(&mut self, discovery: &Discovery) -> Selected {
        let skips = self.ctx.options.skips;
        let people = &discovery.people;
        let team_views: Vec<TeamView> = discovery
            .teams
            .iter()
            .map(|t| TeamView::from(&t.value))
            .collect();
        let channel_views: Vec<ChannelView> = discovery
            .channels
            .iter()
            .map(|c| ChannelView::from(&c.value))
            .collect();
        let selection = selection::plan_selection(
            &self.ctx.options.channels,
            (&self.me_id, &self.me_name),
            &team_views,
            &channel_views,
            &people.usernames,
            &people.group_members,
            skips.channels(),
        );
        for note in &selection.notes {
            self.note(Level::Warning, note);
        }
        for (channel_id, why) in &selection.undecided {
            let error = people.member_errors.get(channel_id).unwrap_or(why);
            let kind = discovery
                .channels
                .iter()
                .find(|c| &c.value.id == channel_id)
                .map_or("channel", |c| match kind(c) {
                    ChannelType::Direct => "direct channel",
                    ChannelType::Group => "group channel",
                    _ => "channel",
                });
            self.ctx
                .observer
                .note(Level::Failure, &format!("{kind} {channel_id}: {error}"));
            self.failures.push(Failure {
                item: format!("{kind} {channel_id}"),
                error: format!("cannot tell whether channels.json selects it: {error}"),
            });
        }
        Selected {
            team_ids: selection.team_ids.iter().cloned().collect(),
            channels: selection
                .channels
                .iter()
                .map(|c| (c.id.clone(), c.export_name.clone()))
                .collect(),
            order: selection.channels.into_iter().map(|c| c.id).collect(),
        }
    }

    /// Catalogues every team and channel the user can see; `selected` marks the archived
    /// ones.
    pub(super) async fn catalogue(
        &self,
        discovery: &Discovery,
        selected: &Selected,
    ) -> Result<(), SyncError> {
        let (teams, channels, selected_teams, selected_channels) = (
            discovery.teams.clone(),
            discovery.channels.clone(),
            selected.team_ids.clone(),
            selected.channels.clone(),
        );
        self.ctx
            .writer
            .call(move |c| {
                for team in teams.iter() {
                    c.upsert_team(team, selected_teams.contains(&team.value.id))?;
                }
                for channel in channels.iter() {
                    let export_name = selected_channels.get(&channel.value.id).cloned().flatten();
                    c.upsert_channel(
                        channel,
                        selected_channels.contains_key(&channel.value.id),
                        export_name.as_deref(),
                    )?;
                }
                Ok(())
            })
            .await?;
        Ok(())
    }

    /// Usernames of DM partners and the members of group channels, needed to apply
    /// `channels.json` and to name those channels in exports; and, per group channel whose
    /// members could not be read, why.
    async fn resolve_private_channel_users(
        &mut self,
        channels: &[Raw<Channel>],
    ) -> Result<PrivateChannelUsers, SyncError> {
        let skips = self.ctx.options.skips;
        let client = self.ctx.client;
        let mut people = PrivateChannelUsers::default();
        if !skips.direct {
            let partners: Vec<UserId> = channels
                .iter()
                .filter(|c| kind(c) == ChannelType::Direct)
                .filter_map(|c| dm_other_user(&c.value.name, &self.me_id))
                .filter(|id| id != &self.me_id)
                .collect::<HashSet<_>>()
                .into_iter()
                .collect();
            self.learn_usernames(partners, &mut people.usernames)
                .await?;
        }
        if !skips.groups {
            let groups: Vec<ChannelId> = channels
                .iter()
                .filter(|c| kind(c) == ChannelType::Group)
                .map(|c| c.value.id.clone())
                .collect();
            let answered = client
                .fetch_group_channel_users(&groups)
                .await?
                .unwrap_or_default();
            for (channel_id, users) in answered {
                people.group_members.insert(
                    channel_id,
                    users.iter().map(|u| u.value.id.clone()).collect(),
                );
                for user in users {
                    people
                        .usernames
                        .insert(user.value.id.clone(), user.value.username.clone());
                    self.extra_users.push(user);
                }
            }
            // Channels the endpoint did not answer for (an old or filtering server, or a
            // group whose other members left): from their member lists instead (§14.1).
            let mut strangers = HashSet::new();
            let unanswered: Vec<&ChannelId> = groups
                .iter()
                .filter(|id| !people.group_members.contains_key(*id))
                .collect();
            for channel_id in unanswered {
                match client.fetch_channel_members(channel_id).await {
                    Ok(members) => {
                        let ids: Vec<UserId> =
                            members.iter().map(|m| m.value.user_id.clone()).collect();
                        strangers.extend(
                            ids.iter()
                                .filter(|id| !people.usernames.contains_key(*id))
                                .cloned(),
                        );
                        people.group_members.insert(channel_id.clone(), ids);
                    }
                    Err(e) if e.is_fatal() => return Err(e.into()),
                    Err(e) => {
                        people
                            .member_errors
                            .insert(channel_id.clone(), e.to_string());
                    }
                }
            }
            strangers.remove(&self.me_id);
            self.learn_usernames(strangers.into_iter().collect(), &mut people.usernames)
                .await?;
        }
        Ok(people)
    }

    /// Usernames of `ids`: known ones from the catalog (renames arrive with the user
    /// refresh); only strangers cost a request.
    async fn learn_usernames(
        &mut self,
        ids: Vec<UserId>,
        usernames: &mut HashMap<UserId, String>,
    ) -> Result<(), SyncError> {
        if ids.is_empty() {
            return Ok(());
        }
        let known = self.ctx.writer.call({
            let ids = ids.clone();
            move |c| c.usernames(&ids)
        });
        let known = known.await?;
        let strangers: Vec<UserId> = ids
            .into_iter()
            .filter(|id| !known.contains_key(id))
            .collect();
        usernames.extend(known);
        if !strangers.is_empty() {
            for user in self.ctx.client.fetch_users(&strangers, None).await? {
                usernames.insert(user.value.id.clone(), user.value.username.clone());
                self.extra_users.push(user);
            }
        }
        Ok(())
    }
}
