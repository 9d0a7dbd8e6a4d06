//! Plans the restore before anything is written: which teams and channels (narrowed by
//! `--channels` as a sync would be), their names as the target accepts them, direct and
//! group channels, every account the content refers to (new, existing or bot) and their
//! memberships. Small (no posts); every departure from the archive goes into the report.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use serde_json::Value;

use super::report::{changed, fit_runes, omitted};
use super::rules;
use super::{BulkError, BulkOptions, BulkReport, ProfileImages};
use crate::blobs::BlobStore;
use crate::catalog::{Catalog, ChannelRow, TeamRow};
use crate::model::{BlobId, ChannelType, UserId};
use crate::selection::{ChannelSkips, ChannelView, TeamView, plan_selection};

pub(super) struct PlannedTeam {
    pub(super) row: TeamRow,
    pub(super) name: String,
    pub(super) json: Value,
}

pub(super) struct PlannedChannel {
    pub(super) id: String,
    /// Index into the planned teams.
    pub(super) team: usize,
    pub(super) name: String,
    /// `O` or `P`.
    pub(super) kind: &'static str,
    pub(super) display_name: String,
    pub(super) header: String,
    pub(super) purpose: String,
    pub(super) deleted_at: i64,
}

/// A direct (2 members, or the same one twice) or group (3–8) channel; user ids.
pub(super) struct PlannedDirect {
    pub(super) id: String,
    pub(super) members: Vec<String>,
    pub(super) header: String,
}

#[derive(Default)]
pub(super) struct PlannedUser {
    pub(super) username: String,
    pub(super) email: String,
    pub(super) existing: bool,
    pub(super) bot: bool,
    pub(super) json: Value,
    pub(super) image: Option<(BlobId, String, u64)>,
    /// Team index → (roles, channel index → roles).
    pub(super) teams: BTreeMap<usize, (String, BTreeMap<usize, String>)>,
}

pub(super) struct Plan {
    pub(super) teams: Vec<PlannedTeam>,
    pub(super) channels: Vec<PlannedChannel>,
    pub(super) directs: Vec<PlannedDirect>,
    pub(super) users: HashMap<String, PlannedUser>,
    pub(super) owner_username: String,
}

pub(super) fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

pub(super) fn i64_of(v: &Value, key: &str) -> i64 {
    v.get(key).and_then(Value::as_i64).unwrap_or(0)
}

pub(super) fn parse(json: &str) -> Value {
    serde_json::from_str(json).unwrap_or(Value::Null)
}

/// Members (user ids) of a channel as archived, current ones only.
pub(super) fn channel_member_ids(
    catalog: &Catalog,
    channel_id: &str,
) -> Result<Vec<(String, Value)>, BulkError> {
    let mut members = Vec::new();
    catalog
        .for_each_channel_member(channel_id, |json| {
            let v = parse(json);
            members.push((str_of(&v, "user_id").to_owned(), v));
            Ok(())
        })?
        .expect("the callback never fails");
    Ok(members)
}

pub(super) fn plan(
    catalog: &Catalog,
    blobs: &BlobStore,
    options: &BulkOptions,
    report: &mut BulkReport,
) -> Result<Plan, BulkError> {
    let mut teams = catalog.export_teams()?;
    let mut channels = catalog.export_channels()?;
    let user_rows: HashMap<String, _> = catalog
        .export_users()?
        .into_iter()
        .map(|u| (u.id.clone(), u))
        .collect();
    let owner = catalog.archive_owner_account()?;
    let mut group_members: HashMap<String, Vec<(String, Value)>> = HashMap::new();
    for c in channels.iter().filter(|c| c.kind == "G") {
        group_members.insert(c.id.clone(), channel_member_ids(catalog, &c.id)?);
    }

    if let Some(config) = &options.channels {
        let (owner_id, owner_name) = owner.clone().ok_or(BulkError::NoOwner)?;
        let team_views: Vec<TeamView> = teams
            .iter()
            .map(|t| TeamView {
                id: t.id.clone(),
                name: t.name.clone(),
                display_name: str_of(&parse(&t.json), "display_name").to_owned(),
            })
            .collect();
        let channel_views: Vec<ChannelView> = channels
            .iter()
            .map(|c| ChannelView {
                id: c.id.clone(),
                team_id: c.team_id.clone(),
                kind: ChannelType::from_code(&c.kind),
                name: c.name.clone(),
                display_name: str_of(&parse(&c.json), "display_name").to_owned(),
            })
            .collect();
        let usernames: HashMap<String, String> = user_rows
            .values()
            .map(|u| (u.id.clone(), u.name.clone()))
            .collect();
        let members: HashMap<String, Vec<String>> = group_members
            .iter()
            .map(|(id, m)| (id.clone(), m.iter().map(|(u, _)| u.clone()).collect()))
            .collect();
        let selection = plan_selection(
            config,
            (&UserId::from(owner_id.as_str()), &owner_name),
            &team_views,
            &channel_views,
            &usernames,
            &members,
            ChannelSkips::default(),
        );
        let chosen: HashSet<&str> = selection.channels.iter().map(|c| c.id.as_str()).collect();
        channels.retain(|c| chosen.contains(c.id.as_str()));
        let team_ids: HashSet<&str> = selection
            .team_ids
            .iter()
            .map(String::as_str)
            .chain(channels.iter().map(|c| c.team_id.as_str()))
            .collect();
        teams.retain(|t| team_ids.contains(t.id.as_str()));
        report.warnings.extend(selection.notes);
        if channels.is_empty() && teams.is_empty() {
            return Err(BulkError::NothingSelected);
        }
    }

    // Teams.
    let mut taken = HashSet::new();
    let mut planned_teams = Vec::new();
    for row in teams {
        let json = parse(&row.json);
        let name = rules::plan_team_name(&row.name, &taken);
        if name != row.name {
            changed(
                report,
                format!("team {}", row.name),
                format!(
                    "written as {name:?}: team names must be lower case, of a-z 0-9 -, and not start with a reserved word"
                ),
            );
        }
        taken.insert(name.clone());
        planned_teams.push(PlannedTeam { row, name, json });
    }
    let team_index: HashMap<String, usize> = planned_teams
        .iter()
        .enumerate()
        .map(|(i, t)| (t.row.id.clone(), i))
        .collect();

    // Team and private/public channels; groups the format cannot carry become private
    // channels of the first team.
    let mut taken_channels: Vec<HashSet<String>> = vec![HashSet::new(); planned_teams.len()];
    let mut planned_channels = Vec::new();
    let mut directs = Vec::new();
    let mut member_lists: Vec<(usize, Vec<(String, Value)>)> = Vec::new();
    for row in &channels {
        let json = parse(&row.json);
        let subject = format!(
            "channel {}",
            channel_label(row, &planned_teams, &team_index)
        );
        match row.kind.as_str() {
            "O" | "P" => {
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
                let members = channel_member_ids(catalog, &row.id)?;
                member_lists.push((planned_channels.len(), members));
                planned_channels.push(team_channel(
                    report,
                    &subject,
                    row,
                    &json,
                    team,
                    name,
                    if row.kind == "O" { "O" } else { "P" },
                ));
            }
            "D" => match row.name.split_once("__") {
                Some((a, b)) if !a.is_empty() && !b.is_empty() && !b.contains("__") => directs
                    .push(PlannedDirect {
                        id: row.id.clone(),
                        members: vec![a.to_owned(), b.to_owned()],
                        header: fit_runes(
                            report,
                            &subject,
                            "header",
                            str_of(&json, "header"),
                            rules::MAX_HEADER_RUNES,
                        ),
                    }),
                _ => omitted(
                    report,
                    subject,
                    "the direct channel's name does not name its two members",
                ),
            },
            "G" => {
                let members = group_members.remove(&row.id).unwrap_or_default();
                let mut ids: Vec<String> = members.iter().map(|(u, _)| u.clone()).collect();
                ids.sort();
                ids.dedup();
                if rules::GROUP_MEMBERS.contains(&ids.len()) {
                    directs.push(PlannedDirect {
                        id: row.id.clone(),
                        members: ids,
                        header: fit_runes(
                            report,
                            &subject,
                            "header",
                            str_of(&json, "header"),
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
                    let display = str_of(&json, "display_name");
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
                    let mut planned = team_channel(report, &subject, row, &json, 0, name, "P");
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
            other => omitted(
                report,
                subject,
                format!("channel type {other:?} cannot be imported"),
            ),
        }
    }

    // Who appears: team and channel members, authors and reactors, direct members.
    let mut involved: BTreeSet<String> = BTreeSet::new();
    let mut team_members: Vec<(usize, Vec<(String, Value)>)> = Vec::new();
    for (i, team) in planned_teams.iter().enumerate() {
        let mut members = Vec::new();
        catalog
            .for_each_team_member(&team.row.id, |json| {
                let v = parse(json);
                members.push((str_of(&v, "user_id").to_owned(), v));
                Ok(())
            })?
            .expect("the callback never fails");
        involved.extend(members.iter().map(|(u, _)| u.clone()));
        team_members.push((i, members));
    }
    for (_, members) in &member_lists {
        involved.extend(members.iter().map(|(u, _)| u.clone()));
    }
    for c in &channels {
        involved.extend(catalog.channel_participants(&c.id)?);
    }
    for d in &directs {
        involved.extend(d.members.iter().cloned());
    }
    involved.remove("");

    // Accounts, in username order so suffixes for collisions are stable.
    let mut order: Vec<(String, String)> = involved
        .iter()
        .map(|id| {
            let name = user_rows
                .get(id)
                .map_or_else(|| format!("unknown-{id}"), |u| u.name.clone());
            (name.to_lowercase(), id.clone())
        })
        .collect();
    order.sort();
    let mut taken_names = HashSet::new();
    let mut taken_emails = options.existing.emails.clone();
    let mut users: HashMap<String, PlannedUser> = HashMap::new();
    for (_, id) in &order {
        let row = user_rows.get(id);
        let json = row.map_or(Value::Null, |u| parse(&u.json));
        let original = row.map_or_else(|| format!("unknown-{id}"), |u| u.name.clone());
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
        let bot = json.get("is_bot").and_then(Value::as_bool).unwrap_or(false);
        let mut email = String::new();
        if !existing && !bot {
            let (address, placeholder) = rules::plan_email(
                str_of(&json, "email"),
                &username,
                &options.email_domain,
                &taken_emails,
            );
            if placeholder {
                let why = if str_of(&json, "email").is_empty() {
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
            if str_of(&json, "roles")
                .split(' ')
                .any(|r| r == "system_admin")
            {
                changed(
                    report,
                    &subject,
                    "system_admin role not carried: the import grants no administrator rights",
                );
            }
        }
        let image = match (row.and_then(|u| u.image.as_ref()), options.profile_images) {
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
                json,
                image,
                teams: BTreeMap::new(),
            },
        );
    }

    // Memberships.
    for (team, members) in &team_members {
        for (user, member) in members {
            if let Some(u) = users.get_mut(user) {
                let roles = member_roles(u, member, "team");
                u.teams
                    .entry(*team)
                    .or_insert_with(|| (roles, BTreeMap::new()));
            }
        }
    }
    for (channel, members) in &member_lists {
        let team = planned_channels[*channel].team;
        for (user, member) in members {
            if let Some(u) = users.get_mut(user) {
                let roles = member_roles(u, member, "channel");
                let team_roles = member_roles(u, &Value::Null, "team");
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

pub(super) fn channel_label(
    row: &ChannelRow,
    teams: &[PlannedTeam],
    index: &HashMap<String, usize>,
) -> String {
    match index.get(&row.team_id) {
        Some(&t) => format!("{}/{}", teams[t].row.name, row.name),
        None => row.export_name.clone().unwrap_or_else(|| row.name.clone()),
    }
}

pub(super) fn team_channel(
    report: &mut BulkReport,
    subject: &str,
    row: &ChannelRow,
    json: &Value,
    team: usize,
    name: String,
    kind: &'static str,
) -> PlannedChannel {
    let display = str_of(json, "display_name");
    PlannedChannel {
        id: row.id.clone(),
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
            str_of(json, "header"),
            rules::MAX_HEADER_RUNES,
        ),
        purpose: fit_runes(
            report,
            subject,
            "purpose",
            str_of(json, "purpose"),
            rules::MAX_PURPOSE_RUNES,
        ),
        deleted_at: i64_of(json, "delete_at").max(0),
        name,
        kind,
    }
}

pub(super) fn is_guest(user: &PlannedUser) -> bool {
    str_of(&user.json, "roles")
        .split(' ')
        .any(|r| r == "system_guest")
}

/// `team_user [team_admin]` / `channel_user [channel_admin]`, or the guest role for guests.
pub(super) fn member_roles(user: &PlannedUser, member: &Value, scope: &str) -> String {
    if is_guest(user) {
        return format!("{scope}_guest");
    }
    let admin = member.get("scheme_admin").and_then(Value::as_bool) == Some(true)
        || str_of(member, "roles")
            .split(' ')
            .any(|r| r == format!("{scope}_admin"));
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
