//! Plans the restore before anything is written: which teams and channels (narrowed by
//! `--channels` as a sync would be), their names as the target accepts them, direct and
//! group channels, every account the content refers to (new, existing or bot) and their
//! memberships. Small (no posts); every departure from the archive goes into the report.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use super::report::{changed, fit_runes, omitted};
use super::rules;
use super::{BulkError, BulkOptions, BulkReport, ProfileImages};
use crate::blobs::BlobStore;
use crate::catalog::Catalog;
use crate::export::view::{self, Channel, Team};
use crate::model::object::{ChannelMember, User};
use crate::model::{BlobId, ChannelId, ChannelType, TeamId, UserId};
use crate::selection::{ChannelSkips, ChannelView, TeamView, plan_selection};

pub(super) struct PlannedTeam {
    pub(super) team: Team,
    /// The name written (the archived one made acceptable).
    pub(super) name: String,
}

pub(super) struct PlannedChannel {
    pub(super) channel: Channel,
    /// Index into the planned teams.
    pub(super) team: usize,
    pub(super) name: String,
    /// Public or private (a group the format cannot carry becomes private).
    pub(super) kind: ChannelType,
    pub(super) display_name: String,
    pub(super) header: String,
    pub(super) purpose: String,
    pub(super) deleted_at: i64,
}

/// A direct (2 members, or the same one twice) or group (3–8) channel; user ids.
pub(super) struct PlannedDirect {
    pub(super) channel: Channel,
    pub(super) members: Vec<UserId>,
    pub(super) header: String,
}

#[derive(Default)]
pub(super) struct PlannedUser {
    pub(super) username: String,
    pub(super) email: String,
    pub(super) existing: bool,
    pub(super) bot: bool,
    /// As archived; empty for a user the archive does not know.
    pub(super) user: User,
    pub(super) image: Option<(BlobId, String, u64)>,
    /// Team index → (roles, channel index → roles).
    pub(super) teams: BTreeMap<usize, (String, BTreeMap<usize, String>)>,
}

pub(super) struct Plan {
    pub(super) teams: Vec<PlannedTeam>,
    pub(super) channels: Vec<PlannedChannel>,
    pub(super) directs: Vec<PlannedDirect>,
    pub(super) users: HashMap<UserId, PlannedUser>,
    pub(super) owner_username: String,
}

pub(super) fn plan(
    catalog: &Catalog,
    blobs: &BlobStore,
    options: &BulkOptions,
    report: &mut BulkReport,
) -> Result<Plan, BulkError> {
    let mut teams = view::load_teams(catalog)?;
    let mut channels = view::load_channels(catalog)?;
    let user_rows: HashMap<UserId, view::User> = view::load_users(catalog)?
        .into_iter()
        .map(|u| (u.record.id.clone(), u))
        .collect();
    let owner = catalog.archive_owner_account()?;
    let mut group_members: HashMap<ChannelId, Vec<ChannelMember>> = HashMap::new();
    for c in channels
        .iter()
        .map(|c| &c.record)
        .filter(|c| c.kind == ChannelType::Group)
    {
        group_members.insert(c.id.clone(), view::load_channel_members(catalog, &c.id)?);
    }

    if let Some(config) = &options.channels {
        let (owner_id, owner_name) = owner.clone().ok_or(BulkError::NoOwner)?;
        let team_views: Vec<TeamView> = teams
            .iter()
            .map(|t| TeamView {
                id: t.record.id.clone(),
                name: t.record.name.clone(),
                display_name: t.object.display_name.clone(),
            })
            .collect();
        let channel_views: Vec<ChannelView> = channels
            .iter()
            .map(|c| ChannelView {
                id: c.record.id.clone(),
                team_id: c.record.team_id.clone(),
                kind: c.record.kind.clone(),
                name: c.record.name.clone(),
                display_name: c.object.display_name.clone(),
            })
            .collect();
        let usernames: HashMap<UserId, String> = user_rows
            .values()
            .map(|u| (u.record.id.clone(), u.record.name.clone()))
            .collect();
        let members: HashMap<ChannelId, Vec<UserId>> = group_members
            .iter()
            .map(|(id, m)| (id.clone(), m.iter().map(|m| m.user_id.clone()).collect()))
            .collect();
        let selection = plan_selection(
            config,
            (&owner_id, &owner_name),
            &team_views,
            &channel_views,
            &usernames,
            &members,
            ChannelSkips::default(),
        );
        let chosen: HashSet<&str> = selection.channels.iter().map(|c| c.id.as_str()).collect();
        channels.retain(|c| chosen.contains(c.record.id.as_str()));
        let team_ids: HashSet<&str> = selection
            .team_ids
            .iter()
            .map(TeamId::as_str)
            .chain(channels.iter().map(|c| c.record.team_id.as_str()))
            .collect();
        teams.retain(|t| team_ids.contains(t.record.id.as_str()));
        report.warnings.extend(selection.notes);
        if channels.is_empty() && teams.is_empty() {
            return Err(BulkError::NothingSelected);
        }
    }

    // Teams.
    let mut taken = HashSet::new();
    let mut planned_teams = Vec::new();
    for team in teams {
        let archived = &team.record.name;
        let name = rules::plan_team_name(archived, &taken);
        if name != *archived {
            changed(
                report,
                format!("team {archived}"),
                format!(
                    "written as {name:?}: team names must be lower case, of a-z 0-9 -, and not start with a reserved word"
                ),
            );
        }
        taken.insert(name.clone());
        planned_teams.push(PlannedTeam { team, name });
    }
    let team_index: HashMap<TeamId, usize> = planned_teams
        .iter()
        .enumerate()
        .map(|(i, t)| (t.team.record.id.clone(), i))
        .collect();

    // Team and private/public channels; groups the format cannot carry become private
    // channels of the first team.
    let mut taken_channels: Vec<HashSet<String>> = vec![HashSet::new(); planned_teams.len()];
    let mut planned_channels = Vec::new();
    let mut directs = Vec::new();
    let mut member_lists: Vec<(usize, Vec<ChannelMember>)> = Vec::new();
    for channel in &channels {
        let row = &channel.record;
        let team_name = team_index
            .get(&row.team_id)
            .map(|&t| planned_teams[t].team.record.name.as_str());
        let subject = format!("channel {}", channel.names().in_team(team_name));
        match &row.kind {
            ChannelType::Public | ChannelType::Private => {
                let Some(&team) = team_index.get(&row.team_id) else {
                    omitted(report, subject, "its team is not in the archive");
                    continue;
                };
                let name = rules::plan_channel_name(&row.name, &taken_channels[team]);
                if name != row.name {
                    changed(
                        report,
                        &subject,
                        format!(
                            "name written as {name:?} (lower case, a-z 0-9 - _, not shaped like a direct channel's)"
                        ),
                    );
                }
                taken_channels[team].insert(name.clone());
                let members = view::load_channel_members(catalog, &row.id)?;
                member_lists.push((planned_channels.len(), members));
                planned_channels.push(team_channel(
                    report,
                    &subject,
                    channel,
                    team,
                    name,
                    row.kind.clone(),
                ));
            }
            ChannelType::Direct => match row.name.split_once("__") {
                Some((a, b)) if !a.is_empty() && !b.is_empty() && !b.contains("__") => directs
                    .push(PlannedDirect {
                        channel: channel.clone(),
                        members: vec![a.into(), b.into()],
                        header: fit_runes(
                            report,
                            &subject,
                            "header",
                            &channel.object.header,
                            rules::MAX_HEADER_RUNES,
                        ),
                    }),
                _ => omitted(
                    report,
                    subject,
                    "the direct channel's name does not name its two members",
                ),
            },
            ChannelType::Group => {
                let members = group_members.remove(&row.id).unwrap_or_default();
                let mut ids: Vec<UserId> = members.iter().map(|m| m.user_id.clone()).collect();
                ids.sort();
                ids.dedup();
                if rules::GROUP_MEMBERS.contains(&ids.len()) {
                    directs.push(PlannedDirect {
                        channel: channel.clone(),
                        members: ids,
                        header: fit_runes(
                            report,
                            &subject,
                            "header",
                            &channel.object.header,
                            rules::MAX_HEADER_RUNES,
                        ),
                    });
                } else if ids.is_empty() {
                    omitted(
                        report,
                        subject,
                        "its members are not in the archive, and a group channel is defined by its members",
                    );
                } else if planned_teams.is_empty() {
                    omitted(
                        report,
                        subject,
                        format!(
                            "{} members: a group channel holds 3 to 8, and there is no team to hold a private channel instead",
                            ids.len()
                        ),
                    );
                } else {
                    let display = channel.object.display_name.as_str();
                    let base = group_channel_base_name(&row.id);
                    let name = rules::plan_channel_name(&base, &taken_channels[0]);
                    taken_channels[0].insert(name.clone());
                    changed(
                        report,
                        &subject,
                        format!(
                            "{} members (a group channel holds 3 to 8): written as private channel {}/{name} with the same members",
                            ids.len(),
                            planned_teams[0].name
                        ),
                    );
                    let mut planned =
                        team_channel(report, &subject, channel, 0, name, ChannelType::Private);
                    planned.display_name = rules::truncate_runes(
                        if display.is_empty() {
                            &planned.name
                        } else {
                            display
                        },
                        rules::MAX_DISPLAY_NAME_RUNES,
                    )
                    .to_owned();
                    member_lists.push((planned_channels.len(), members));
                    planned_channels.push(planned);
                }
            }
            ChannelType::Other(code) => omitted(
                report,
                subject,
                format!("channel type {code:?} cannot be imported"),
            ),
        }
    }

    // Who appears: team and channel members, authors and reactors, direct members.
    let mut involved: BTreeSet<UserId> = BTreeSet::new();
    let mut team_members = Vec::new();
    for (i, team) in planned_teams.iter().enumerate() {
        let members = view::load_team_members(catalog, &team.team.record.id)?;
        involved.extend(members.iter().map(|m| m.user_id.clone()));
        team_members.push((i, members));
    }
    for (_, members) in &member_lists {
        involved.extend(members.iter().map(|m| m.user_id.clone()));
    }
    for c in &channels {
        involved.extend(catalog.load_participants(&c.record.id)?);
    }
    for d in &directs {
        involved.extend(d.members.iter().cloned());
    }
    // An empty user id (a post or member without one, from a damaged backup) stays: it is
    // written as an unknown user like any id the archive has no user for, so its posts
    // name an account (dropping it left posts whose user the self-check refused).

    // Accounts, in username order so suffixes for collisions are stable.
    let mut order: Vec<(String, UserId)> = involved
        .iter()
        .map(|id| {
            let name = user_rows
                .get(id)
                .map_or_else(|| format!("unknown-{id}"), |u| u.record.name.clone());
            (name.to_lowercase(), id.clone())
        })
        .collect();
    order.sort();
    let mut taken_names = HashSet::new();
    let mut taken_emails = options.existing.emails.clone();
    let mut users: HashMap<UserId, PlannedUser> = HashMap::new();
    for (_, id) in &order {
        let row = user_rows.get(id);
        let user = row.map(|u| u.object.clone()).unwrap_or_default();
        let original = row.map_or_else(|| format!("unknown-{id}"), |u| u.record.name.clone());
        let subject = format!("user {original}");
        let username = rules::plan_username(&original, &taken_names);
        taken_names.insert(username.clone());
        if row.is_none() {
            changed(
                report,
                &subject,
                format!("user {id} is not in the archive: written as {username:?}"),
            );
        } else if username != original {
            changed(
                report,
                &subject,
                format!("username written as {username:?} (lower case, a-z 0-9 . - _)"),
            );
        }
        let existing = options.existing.usernames.contains(&username);
        let bot = user.is_bot;
        let mut email = String::new();
        if !existing && !bot {
            let (address, placeholder) =
                rules::plan_email(&user.email, &username, &options.email_domain, &taken_emails);
            if placeholder {
                let why = if user.email.is_empty() {
                    "the archive has no e-mail address"
                } else {
                    "the archived address is invalid or used by another user"
                };
                changed(
                    report,
                    &subject,
                    format!("e-mail written as placeholder {address} ({why})"),
                );
            }
            taken_emails.insert(address.clone());
            email = address;
            if user.roles.split(' ').any(|r| r == "system_admin") {
                changed(
                    report,
                    &subject,
                    "system_admin role not carried: the import grants no administrator rights",
                );
            }
        }
        let image = match (
            row.and_then(|u| u.record.image.as_ref()),
            options.profile_images,
        ) {
            (Some((blob, content_type)), ProfileImages::Include) if !existing => {
                match blobs.stored_size(blob)? {
                    Some(len) => Some((blob.clone(), image_ext(content_type).to_owned(), len)),
                    None => {
                        omitted(
                            report,
                            format!("profile picture of {original}"),
                            "its bytes are not in the blob store",
                        );
                        None
                    }
                }
            }
            _ => None,
        };
        users.insert(
            id.clone(),
            PlannedUser {
                username,
                email,
                existing,
                bot,
                user,
                image,
                teams: BTreeMap::new(),
            },
        );
    }

    // Memberships.
    for (team, members) in &team_members {
        for member in members {
            if let Some(u) = users.get_mut(&member.user_id) {
                let roles = member_roles(u, &member.roles, member.scheme_admin, "team");
                u.teams
                    .entry(*team)
                    .or_insert_with(|| (roles, BTreeMap::new()));
            }
        }
    }
    for (channel, members) in &member_lists {
        let team = planned_channels[*channel].team;
        for member in members {
            if let Some(u) = users.get_mut(&member.user_id) {
                let roles = member_roles(u, &member.roles, member.scheme_admin, "channel");
                let team_roles = member_roles(u, "", false, "team");
                let entry = u
                    .teams
                    .entry(team)
                    .or_insert_with(|| (team_roles, BTreeMap::new()));
                entry.1.insert(*channel, roles);
            }
        }
    }
    let owner_username = owner
        .as_ref()
        .and_then(|(id, _)| users.get(id).map(|u| u.username.clone()))
        .or_else(|| {
            owner
                .as_ref()
                .map(|(_, name)| rules::plan_username(name, &HashSet::new()))
        })
        .unwrap_or_else(|| "matterbak".to_owned());
    Ok(Plan {
        teams: planned_teams,
        channels: planned_channels,
        directs,
        users,
        owner_username,
    })
}

pub(super) fn team_channel(
    report: &mut BulkReport,
    subject: &str,
    channel: &Channel,
    team: usize,
    name: String,
    kind: ChannelType,
) -> PlannedChannel {
    let object = &channel.object;
    let display = object.display_name.as_str();
    PlannedChannel {
        channel: channel.clone(),
        team,
        display_name: fit_runes(
            report,
            subject,
            "display name",
            if display.is_empty() { &name } else { display },
            rules::MAX_DISPLAY_NAME_RUNES,
        ),
        header: fit_runes(
            report,
            subject,
            "header",
            &object.header,
            rules::MAX_HEADER_RUNES,
        ),
        purpose: fit_runes(
            report,
            subject,
            "purpose",
            &object.purpose,
            rules::MAX_PURPOSE_RUNES,
        ),
        deleted_at: object.delete_at.max(0),
        name,
        kind,
    }
}

pub(super) fn is_guest(user: &PlannedUser) -> bool {
    user.user.roles.split(' ').any(|r| r == "system_guest")
}

/// `team_user [team_admin]` / `channel_user [channel_admin]`, or the guest role for guests;
/// `roles` and `scheme_admin` are the membership's.
pub(super) fn member_roles(
    user: &PlannedUser,
    roles: &str,
    scheme_admin: bool,
    scope: &str,
) -> String {
    if is_guest(user) {
        return format!("{scope}_guest");
    }
    let admin = scheme_admin || roles.split(' ').any(|r| r == format!("{scope}_admin"));
    if admin {
        format!("{scope}_user {scope}_admin")
    } else {
        format!("{scope}_user")
    }
}

pub(super) fn image_ext(content_type: &str) -> &'static str {
    match content_type.split(';').next().unwrap_or("").trim() {
        "image/png" => "png",
        "image/jpeg" => "jpg",
        "image/gif" => "gif",
        "image/webp" => "webp",
        "image/svg+xml" => "svg",
        "image/bmp" => "bmp",
        _ => "img",
    }
}

/// The name a group channel written as a private channel starts from: `group-` and the
/// first 8 characters of its id (characters, not bytes: an imported id may be anything).
fn group_channel_base_name(channel_id: &str) -> String {
    let head: String = channel_id.chars().take(8).collect();
    format!("group-{head}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_group_channel_is_named_after_the_first_eight_characters_of_its_id() {
        assert_eq!(
            group_channel_base_name("q8ztc5wkdtb7pfhgqyzu4ch1fe"),
            "group-q8ztc5wk"
        );
        assert_eq!(group_channel_base_name("abc"), "group-abc");
        // Byte 8 falls inside `é`: slicing bytes would panic here.
        assert_eq!(group_channel_base_name("aéééééééé"), "group-aééééééé");
    }
}
