//! `channels.json` applied to what the server lists: which teams and channels a run archives
//! (the Python matterbak's rules, kept exactly), and the names direct and group channels are
//! exported under. Pure: no I/O, no clock. Used by `sync` (and by live capture, which reuses
//! the selected set) and by the exports that narrow an archive the way a sync would
//! (`export::bulk_import`).
//!
//! May import: `config`, `model`. Nothing else of the crate.

use std::collections::{BTreeSet, HashMap};

/// The rules this module applies, as `config` parses them from channels.json: re-exported
/// so that a module narrowing an archive (bulk import) needs only `selection`, not `config`.
pub use crate::config::ChannelsConfig;
use crate::model::object::{Channel, Team};
use crate::model::{ChannelId, ChannelType, TeamId, UserId, dm_other_user};

/// What the selection needs to know of a team.
#[derive(Clone, Debug)]
pub struct TeamView {
    pub id: TeamId,
    pub name: String,
    pub display_name: String,
}

/// What the selection needs to know of a channel.
#[derive(Clone, Debug)]
pub struct ChannelView {
    pub id: ChannelId,
    pub team_id: TeamId,
    pub kind: ChannelType,
    pub name: String,
    pub display_name: String,
}

impl From<&Team> for TeamView {
    fn from(team: &Team) -> TeamView {
        TeamView {
            id: team.id.clone(),
            name: team.name.clone(),
            display_name: team.display_name.clone(),
        }
    }
}

impl From<&Channel> for ChannelView {
    fn from(channel: &Channel) -> ChannelView {
        ChannelView {
            id: channel.id.clone(),
            team_id: channel.team_id.clone(),
            kind: ChannelType::from_code(&channel.kind),
            name: channel.name.clone(),
            display_name: channel.display_name.clone(),
        }
    }
}

/// Which kinds of channel this run leaves alone (`--skip-*`).
#[derive(Clone, Copy, Debug, Default)]
pub struct ChannelSkips {
    pub teams: bool,
    pub direct: bool,
    pub groups: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SelectedChannel {
    pub id: ChannelId,
    /// DM: the other user's username; GM: the other members' usernames sorted, joined `__`.
    pub export_name: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selection {
    pub team_ids: Vec<TeamId>,
    pub channels: Vec<SelectedChannel>,
    /// Things the user should read: configured names that matched nothing, and so on.
    pub notes: Vec<String>,
    /// Channels the rules could not be applied to, so that whether they are selected is
    /// unknown: `(channel id, why)`. Never dropped silently: the run reports each as a failed
    /// item, and the next sync tries again.
    pub undecided: Vec<(ChannelId, String)>,
}

/// Applies `channels.json` to what the server listed.
///
/// `usernames` maps user ids to usernames for every DM partner and GM member;
/// `group_members` maps each group channel to its member ids (you included).
pub fn plan_selection(
    config: &ChannelsConfig,
    me: (&UserId, &str),
    teams: &[TeamView],
    channels: &[ChannelView],
    usernames: &HashMap<UserId, String>,
    group_members: &HashMap<ChannelId, Vec<UserId>>,
    skips: ChannelSkips,
) -> Selection {
    let mut selection = Selection::default();
    if !skips.direct {
        select_direct(config, me, channels, usernames, &mut selection);
    }
    if !skips.groups {
        select_groups(
            config,
            me.0,
            channels,
            usernames,
            group_members,
            &mut selection,
        );
    }
    if !skips.teams {
        select_team_channels(config, me.1, teams, channels, &mut selection);
    }
    selection
}

fn select_direct(
    config: &ChannelsConfig,
    me: (&UserId, &str),
    channels: &[ChannelView],
    usernames: &HashMap<UserId, String>,
    out: &mut Selection,
) {
    let mut wanted: BTreeSet<&str> = config.direct.iter().map(String::as_str).collect();
    for channel in channels.iter().filter(|c| c.kind == ChannelType::Direct) {
        let Some(other) = dm_other_user(&channel.name, me.0) else {
            continue;
        };
        let username = if &other == me.0 {
            Some(me.1)
        } else {
            usernames.get(other.as_str()).map(String::as_str)
        };
        let Some(username) = username else {
            out.undecided.push((
                channel.id.clone(),
                format!("the server did not return its other user {other}"),
            ));
            continue;
        };
        if config.direct.iter().any(|d| d == username) {
            wanted.remove(username);
            out.channels.push(SelectedChannel {
                id: channel.id.clone(),
                export_name: Some(username.to_owned()),
            });
        }
    }
    if !wanted.is_empty() {
        out.notes.push(format!(
            "configured but missing direct channels: {}",
            quoted_list(wanted)
        ));
    }
}

fn select_groups(
    config: &ChannelsConfig,
    me: &UserId,
    channels: &[ChannelView],
    usernames: &HashMap<UserId, String>,
    group_members: &HashMap<ChannelId, Vec<UserId>>,
    out: &mut Selection,
) {
    let exact: Vec<BTreeSet<&str>> = config
        .groups_exact
        .iter()
        .map(|g| g.iter().map(String::as_str).collect())
        .collect();
    let subset: Vec<BTreeSet<&str>> = config
        .groups_subset
        .iter()
        .map(|g| g.iter().map(String::as_str).collect())
        .collect();
    let mut exact_hit = vec![false; exact.len()];
    let mut subset_hit = vec![false; subset.len()];
    for channel in channels.iter().filter(|c| c.kind == ChannelType::Group) {
        let Some(members) = group_members.get(&channel.id) else {
            out.undecided
                .push((channel.id.clone(), "its members are unknown".into()));
            continue;
        };
        let others: BTreeSet<&str> = members
            .iter()
            .filter(|id| id.as_str() != me.as_str())
            .map(|id| usernames.get(id).map_or(id.as_str(), String::as_str))
            .collect();
        let mut selected = false;
        for (i, set) in exact.iter().enumerate() {
            if *set == others {
                exact_hit[i] = true;
                selected = true;
            }
        }
        for (i, set) in subset.iter().enumerate() {
            if set.is_subset(&others) {
                subset_hit[i] = true;
                selected = true;
            }
        }
        if selected {
            out.channels.push(SelectedChannel {
                id: channel.id.clone(),
                export_name: Some(others.into_iter().collect::<Vec<_>>().join("__")),
            });
        }
    }
    for (set, hit) in exact
        .iter()
        .zip(exact_hit)
        .chain(subset.iter().zip(subset_hit))
    {
        if !hit {
            out.notes.push(format!(
                "configured group matched no group channel: {}",
                quoted_list(set.iter().copied())
            ));
        }
    }
}

fn select_team_channels(
    config: &ChannelsConfig,
    my_username: &str,
    teams: &[TeamView],
    channels: &[ChannelView],
    out: &mut Selection,
) {
    for (key, rule) in &config.teams {
        let Some(team) = teams
            .iter()
            .find(|t| t.name == *key || t.display_name == *key)
        else {
            out.notes.push(format!(
                "user '{my_username}' does not have access to team \"{key}\"; skipping team"
            ));
            continue;
        };
        if out.team_ids.contains(&team.id) {
            continue;
        }
        out.team_ids.push(team.id.clone());
        let team_channels: Vec<&ChannelView> = channels
            .iter()
            .filter(|c| c.team_id == team.id && c.kind.is_team_channel())
            .collect();
        let matching =
            |names: &[String], label: &str, notes: &mut Vec<String>| -> BTreeSet<ChannelId> {
                let found: BTreeSet<ChannelId> = team_channels
                    .iter()
                    .filter(|c| names.contains(&c.name) || names.contains(&c.display_name))
                    .map(|c| c.id.clone())
                    .collect();
                let missing: BTreeSet<&str> = names
                    .iter()
                    .filter(|n| {
                        !team_channels
                            .iter()
                            .any(|c| &c.name == *n || &c.display_name == *n)
                    })
                    .map(String::as_str)
                    .collect();
                if !missing.is_empty() {
                    notes.push(format!(
                        "team \"{key}\": {label} channel names not found: {}",
                        quoted_list(missing)
                    ));
                }
                found
            };
        let mut chosen = matching(&rule.include, "include", &mut out.notes);
        if chosen.is_empty() {
            // The Python tool's rule: no (matching) include list means every channel.
            chosen = team_channels.iter().map(|c| c.id.clone()).collect();
        }
        let excluded = matching(&rule.exclude, "exclude", &mut out.notes);
        for channel in team_channels
            .iter()
            .filter(|c| chosen.contains(&c.id) && !excluded.contains(&c.id))
        {
            out.channels.push(SelectedChannel {
                id: channel.id.clone(),
                export_name: None,
            });
        }
    }
}

fn quoted_list<'a>(names: impl IntoIterator<Item = &'a str>) -> String {
    let quoted: Vec<String> = names.into_iter().map(|n| format!("\"{n}\"")).collect();
    format!("[{}]", quoted.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TeamRule;

    fn team(id: &str, name: &str, display: &str) -> TeamView {
        TeamView {
            id: id.into(),
            name: name.into(),
            display_name: display.into(),
        }
    }

    fn channel(id: &str, team_id: &str, kind: &str, name: &str, display: &str) -> ChannelView {
        ChannelView {
            id: id.into(),
            team_id: team_id.into(),
            kind: ChannelType::from_code(kind),
            name: name.into(),
            display_name: display.into(),
        }
    }

    struct World {
        teams: Vec<TeamView>,
        channels: Vec<ChannelView>,
        usernames: HashMap<UserId, String>,
        groups: HashMap<ChannelId, Vec<UserId>>,
    }

    fn world() -> World {
        let usernames = [("me", "alice"), ("b", "bob"), ("c", "carol"), ("e", "erin")]
            .into_iter()
            .map(|(a, b)| (UserId::from(a), b.to_string()))
            .collect();
        let groups = [
            ("g1", vec!["me", "b", "c"]),
            ("g2", vec!["me", "b", "c", "e"]),
        ]
        .into_iter()
        .map(|(id, m)| {
            (
                ChannelId::from(id),
                m.into_iter().map(UserId::from).collect(),
            )
        })
        .collect();
        World {
            teams: vec![
                team("t1", "eng", "Engineering"),
                team("t2", "ops", "Operations"),
            ],
            channels: vec![
                channel("c1", "t1", "O", "town-square", "Town Square"),
                channel("c2", "t1", "O", "dev", "Development"),
                channel("c3", "t1", "P", "secret-plans", "Secret Plans"),
                channel("c4", "t2", "O", "town-square", "Town Square"),
                channel("d1", "", "D", "b__me", ""),
                channel("d2", "", "D", "me__me", ""),
                channel("d3", "", "D", "c__me", ""),
                channel("g1", "", "G", "hash1", "alice, bob, carol"),
                channel("g2", "", "G", "hash2", "alice, bob, carol, erin"),
            ],
            usernames,
            groups,
        }
    }

    fn rule(include: &[&str], exclude: &[&str]) -> TeamRule {
        TeamRule {
            include: include.iter().map(|s| s.to_string()).collect(),
            exclude: exclude.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn run(config: ChannelsConfig, skips: ChannelSkips) -> Selection {
        run_in(&world(), config, skips)
    }

    fn run_in(w: &World, config: ChannelsConfig, skips: ChannelSkips) -> Selection {
        plan_selection(
            &config,
            (&UserId::from("me"), "alice"),
            &w.teams,
            &w.channels,
            &w.usernames,
            &w.groups,
            skips,
        )
    }

    fn ids(s: &Selection) -> Vec<&str> {
        s.channels.iter().map(|c| c.id.as_str()).collect()
    }

    #[test]
    fn team_rules_table() {
        type Case = (
            &'static str,
            Vec<(&'static str, TeamRule)>,
            Vec<&'static str>,
            Vec<&'static str>,
        );
        let cases: Vec<Case> = vec![
            (
                "empty rule = all channels",
                vec![("eng", rule(&[], &[]))],
                vec!["c1", "c2", "c3"],
                vec![],
            ),
            (
                "display name selects team",
                vec![("Operations", rule(&[], &[]))],
                vec!["c4"],
                vec![],
            ),
            (
                "include by name and display name",
                vec![("eng", rule(&["dev", "Secret Plans"], &[]))],
                vec!["c2", "c3"],
                vec![],
            ),
            (
                "exclude wins over include",
                vec![("eng", rule(&["dev", "town-square"], &["dev"]))],
                vec!["c1"],
                vec![],
            ),
            (
                "exclude only",
                vec![("eng", rule(&[], &["Development"]))],
                vec!["c1", "c3"],
                vec![],
            ),
            (
                "include matching nothing falls back to all (Python rule), and says so",
                vec![("eng", rule(&["nope"], &[]))],
                vec!["c1", "c2", "c3"],
                vec!["include channel names not found: [\"nope\"]"],
            ),
            (
                "unknown exclude name is reported",
                vec![("eng", rule(&[], &["gone"]))],
                vec!["c1", "c2", "c3"],
                vec!["exclude channel names not found: [\"gone\"]"],
            ),
            (
                "team not joined is skipped",
                vec![("secret", rule(&[], &[]))],
                vec![],
                vec!["does not have access to team \"secret\""],
            ),
            (
                "same team twice counts once",
                vec![
                    ("eng", rule(&["dev"], &[])),
                    ("Engineering", rule(&[], &[])),
                ],
                vec!["c2"],
                vec![],
            ),
        ];
        for (what, teams, expected, notes) in cases {
            let config = ChannelsConfig {
                teams: teams.into_iter().map(|(k, r)| (k.to_string(), r)).collect(),
                ..Default::default()
            };
            let s = run(config, ChannelSkips::default());
            let mut got = ids(&s);
            got.sort();
            assert_eq!(got, expected, "{what}");
            for note in &notes {
                assert!(
                    s.notes.iter().any(|n| n.contains(note)),
                    "{what}: {:?}",
                    s.notes
                );
            }
            if notes.is_empty() {
                assert!(s.notes.is_empty(), "{what}: unexpected notes {:?}", s.notes);
            }
        }
    }

    #[test]
    fn direct_and_group_rules_table() {
        let strs = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        type Case = (
            &'static str,
            Vec<&'static str>,
            Vec<Vec<&'static str>>,
            Vec<Vec<&'static str>>,
            Vec<(&'static str, &'static str)>,
        );
        let cases: Vec<Case> = vec![
            (
                "dm by username",
                vec!["bob"],
                vec![],
                vec![],
                vec![("d1", "bob")],
            ),
            (
                "own username = self dm",
                vec!["alice"],
                vec![],
                vec![],
                vec![("d2", "alice")],
            ),
            (
                "exact group",
                vec![],
                vec![vec!["carol", "bob"]],
                vec![],
                vec![("g1", "bob__carol")],
            ),
            (
                "exact does not match superset",
                vec![],
                vec![vec!["bob", "carol", "erin"]],
                vec![],
                vec![("g2", "bob__carol__erin")],
            ),
            (
                "subset matches both groups",
                vec![],
                vec![],
                vec![vec!["bob", "carol"]],
                vec![("g1", "bob__carol"), ("g2", "bob__carol__erin")],
            ),
            (
                "subset with erin matches one",
                vec![],
                vec![],
                vec![vec!["erin"]],
                vec![("g2", "bob__carol__erin")],
            ),
        ];
        for (what, direct, exact, subset, expected) in cases {
            let config = ChannelsConfig {
                direct: strs(&direct),
                groups_exact: exact.iter().map(|g| strs(g)).collect(),
                groups_subset: subset.iter().map(|g| strs(g)).collect(),
                ..Default::default()
            };
            let s = run(config, ChannelSkips::default());
            let got: Vec<(&str, &str)> = s
                .channels
                .iter()
                .map(|c| (c.id.as_str(), c.export_name.as_deref().unwrap()))
                .collect();
            assert_eq!(got, expected, "{what}");
        }
    }

    #[test]
    fn missing_names_and_skips() {
        let config = ChannelsConfig {
            teams: vec![("eng".into(), TeamRule::default())],
            direct: vec!["bob".into(), "nobody".into()],
            groups_exact: vec![vec!["zed".into()]],
            ..Default::default()
        };
        let s = run(config.clone(), ChannelSkips::default());
        assert!(
            s.notes
                .iter()
                .any(|n| n == "configured but missing direct channels: [\"nobody\"]"),
            "{:?}",
            s.notes
        );
        assert!(
            s.notes
                .iter()
                .any(|n| n.contains("matched no group channel: [\"zed\"]")),
            "{:?}",
            s.notes
        );
        let skipped = run(
            config,
            ChannelSkips {
                teams: true,
                direct: true,
                groups: true,
            },
        );
        assert!(skipped.channels.is_empty());
        assert!(skipped.team_ids.is_empty());
    }

    #[test]
    fn channels_that_cannot_be_judged_are_undecided_not_dropped() {
        let mut w = world();
        w.groups.remove("g2");
        w.usernames.remove("c");
        let config = ChannelsConfig {
            direct: vec!["bob".into()],
            groups_subset: vec![vec!["bob".into()]],
            ..Default::default()
        };
        let s = run_in(&w, config, ChannelSkips::default());
        assert_eq!(ids(&s), ["d1", "g1"]);
        assert_eq!(
            s.undecided,
            [
                (
                    ChannelId::from("d3"),
                    "the server did not return its other user c".to_string()
                ),
                (ChannelId::from("g2"), "its members are unknown".to_string()),
            ]
        );
    }
}
