//! What one WebSocket event means for the archive (`sync --follow`): a catalog write, a
//! targeted REST fetch, a catch-up sync, or nothing. Pure: the follower does the I/O.
//!
//! The `channels.json` selection applies as for a sync: an event of a channel the catalog
//! holds unselected is dropped unread; one of a channel it does not hold yet (created, or
//! joined, since the last sync) asks for that channel to be fetched, and the rules decide.
//! Channel, membership, user, emoji and team events ask for the rows they change to be
//! fetched (API notes §15.7 lists what each event carries); a payload that does not decode
//! asks for a catch-up sync.
//!
//! May import what `sync` may.

use std::collections::HashMap;

use crate::catalog::LiveWrite;
use crate::mm::ws::{Event, WsEvent};
use crate::model::object::{Emoji, Raw};
use crate::model::{ChannelId, TeamId, UserId};

/// What to do about one event.
#[derive(Debug)]
pub(crate) enum Action {
    Write(Box<LiveWrite>),
    /// The channel is in the catalog but not selected.
    NotSelected,
    /// Rows to fetch over REST (and write as a sync would).
    Fetch(Fetch),
    /// Something changed that only a sync finds (a payload we cannot read): run one.
    CatchUp,
    /// Nothing a backup keeps (typing, read state, status…), or nothing a sync would write
    /// (a channel we are not in, a channel we left).
    Ignore,
}

/// A targeted fetch: the rows an event changed, as a sync writes them.
#[derive(Debug)]
pub(crate) enum Fetch {
    /// The channel's row (`GET /channels/{id}`), selected by `channels.json`; a channel
    /// selected now and not before gets its posts and members too.
    Channel(ChannelId),
    /// A selected channel's member list.
    Members(ChannelId),
    /// A changed user's row, read again as a sync reads it (by id), and the picture when it
    /// changed.
    User(UserId),
    /// A new custom emoji's row and image.
    Emoji(Box<Raw<Emoji>>),
    /// A team's row from the team list, the rules applied; `joined`: we were added to it.
    Team { team_id: TeamId, joined: bool },
    /// Someone left a team: the member lists that named them, and their user row.
    TeamMemberLeft { team_id: TeamId, user_id: UserId },
}

/// The action for `event`; `selection` is channel id → selected, `me` the account's user
/// id, `now` (ms) stamps a deletion the event does not date.
pub(crate) fn plan(
    event: WsEvent,
    selection: &HashMap<ChannelId, bool>,
    me: &str,
    now: i64,
) -> Action {
    let in_channel = |channel_id: &str, write: LiveWrite| match selection.get(channel_id) {
        Some(true) => Action::Write(Box::new(write)),
        Some(false) => Action::NotSelected,
        None => Action::Fetch(Fetch::Channel(channel_id.into())),
    };
    // A channel event of a channel the catalog holds: fetch it again. Team-scoped events
    // (archive, restore, convert of public channels) also reach us about public channels
    // we are not in, which no sync archives: those are ignored.
    let known_channel = |channel_id: String| {
        if selection.contains_key(channel_id.as_str()) {
            Action::Fetch(Fetch::Channel(channel_id.into()))
        } else {
            Action::Ignore
        }
    };
    match event.event {
        Event::Posted { post, .. } | Event::PostEdited { post } => {
            let channel_id = post.value.channel_id.clone();
            in_channel(&channel_id, LiveWrite::Post(post))
        }
        Event::PostDeleted { post, .. } => {
            let channel_id = post.value.channel_id.clone();
            in_channel(&channel_id, LiveWrite::Deleted { post, at: now })
        }
        Event::ReactionAdded {
            reaction,
            post_id,
            channel_id,
        } => in_channel(
            &channel_id,
            LiveWrite::ReactionAdded(reaction, post_id.into()),
        ),
        Event::ReactionRemoved {
            reaction,
            post_id,
            channel_id,
        } => {
            let at = reaction_time(reaction.json(), now);
            let write = LiveWrite::ReactionRemoved {
                post_id: post_id.into(),
                user_id: reaction.value.user_id.clone(),
                emoji_name: reaction.value.emoji_name.clone(),
                at,
            };
            in_channel(&channel_id, write)
        }
        // To its creator only: a channel we are in.
        Event::ChannelCreated { channel_id, .. }
        | Event::DirectAdded { channel_id }
        | Event::GroupAdded { channel_id, .. } => Action::Fetch(Fetch::Channel(channel_id.into())),
        // To the channel's members: renamed, patched, converted.
        Event::ChannelUpdated { channel } => {
            Action::Fetch(Fetch::Channel(channel.value.id.clone()))
        }
        Event::ChannelDeleted { channel_id, .. }
        | Event::ChannelRestored { channel_id }
        | Event::ChannelConverted { channel_id } => known_channel(channel_id),
        // We joined: the channel is (again) ours, its row and selection are fetched.
        Event::UserAdded {
            channel_id,
            user_id,
        } if user_id == me => Action::Fetch(Fetch::Channel(channel_id.into())),
        // We left or were removed: a sync no longer lists the channel and writes nothing
        // of it; the archive keeps what it has.
        Event::UserRemoved { user_id, .. } if user_id == me => Action::Ignore,
        Event::UserAdded { channel_id, .. } | Event::UserRemoved { channel_id, .. } => {
            match selection.get(channel_id.as_str()) {
                Some(true) => Action::Fetch(Fetch::Members(channel_id.into())),
                Some(false) => Action::NotSelected,
                None => Action::Fetch(Fetch::Channel(channel_id.into())),
            }
        }
        Event::UserUpdated { user } => Action::Fetch(Fetch::User(user.value.id.clone())),
        Event::EmojiAdded { emoji } => Action::Fetch(Fetch::Emoji(Box::new(emoji))),
        // To the added user only (`app/team.go` JoinUserToTeam): we joined.
        Event::AddedToTeam { team_id, user_id } if user_id == me => Action::Fetch(Fetch::Team {
            team_id: team_id.into(),
            joined: true,
        }),
        Event::AddedToTeam { .. } => Action::Ignore,
        // We left: a sync no longer lists the team; the archive keeps what it has.
        Event::LeaveTeam { user_id, .. } if user_id == me => Action::Ignore,
        Event::LeaveTeam { team_id, user_id } => Action::Fetch(Fetch::TeamMemberLeft {
            team_id: team_id.into(),
            user_id: user_id.into(),
        }),
        // `update_team`, `restore_team`, `delete_team`.
        Event::TeamUpdated { team } => Action::Fetch(Fetch::Team {
            team_id: team.value.id.clone(),
            joined: false,
        }),
        // A payload we cannot read: the sync reads what it said.
        Event::Malformed { .. } => Action::CatchUp,
        Event::Other { .. } => Action::Ignore,
    }
}

impl Fetch {
    /// Both fetch the same rows (a run of events changing one channel's members needs one
    /// member list).
    pub(crate) fn same_rows(&self, other: &Fetch) -> bool {
        match (self, other) {
            (Fetch::Channel(a), Fetch::Channel(b)) | (Fetch::Members(a), Fetch::Members(b)) => {
                a == b
            }
            (Fetch::User(a), Fetch::User(b)) => a == b,
            // A joined team is fetched with our own user row: that one covers an update.
            (
                Fetch::Team {
                    team_id: a,
                    joined: joined_a,
                },
                Fetch::Team {
                    team_id: b,
                    joined: joined_b,
                },
            ) => a == b && (joined_a == joined_b || *joined_a),
            (
                Fetch::TeamMemberLeft {
                    team_id: a,
                    user_id: u,
                },
                Fetch::TeamMemberLeft {
                    team_id: b,
                    user_id: v,
                },
            ) => a == b && u == v,
            // Emojis carry their rows: each is written.
            _ => false,
        }
    }
}

/// The channel an event is about, when the account receives it as one of the channel's
/// members (so a channel the catalog does not hold is one to fetch): posts, reactions,
/// membership changes, a channel created, opened or updated. Not the team-wide archive,
/// restore and convert events, nor our own leaving.
pub(crate) fn channel_named<'e>(event: &'e WsEvent, me: &str) -> Option<&'e str> {
    match &event.event {
        Event::Posted { post, .. }
        | Event::PostEdited { post }
        | Event::PostDeleted { post, .. } => Some(post.value.channel_id.as_str()),
        Event::ReactionAdded { channel_id, .. }
        | Event::ReactionRemoved { channel_id, .. }
        | Event::ChannelCreated { channel_id, .. }
        | Event::DirectAdded { channel_id }
        | Event::GroupAdded { channel_id, .. }
        | Event::UserAdded { channel_id, .. } => Some(channel_id.as_str()),
        Event::UserRemoved {
            channel_id,
            user_id,
        } if user_id != me => Some(channel_id.as_str()),
        Event::ChannelUpdated { channel } => Some(channel.value.id.as_str()),
        _ => None,
    }
    .filter(|id| !id.is_empty())
}

/// When the server stamped the change an event reports (ms, server clock): a post's or
/// channel's `update_at` (an edit moves it), a reaction's `create_at`, a removal's
/// `update_at`, an archived channel's `delete_at`, a user's, emoji's or team's `update_at`.
/// None when the event carries no such time: `post_deleted` carries the post as it was
/// before the deletion (§15.7), and bookkeeping events carry none.
pub(crate) fn event_time(event: &WsEvent) -> Option<i64> {
    let at = match &event.event {
        Event::Posted { post, .. } | Event::PostEdited { post } => post.value.update_at,
        Event::ReactionAdded { reaction, .. } => reaction.value.create_at,
        Event::ReactionRemoved { reaction, .. } => reaction_time(reaction.json(), 0),
        Event::ChannelUpdated { channel } => channel.value.update_at,
        Event::ChannelDeleted { delete_at, .. } => *delete_at,
        Event::UserUpdated { user } => user.value.update_at,
        Event::EmojiAdded { emoji } => emoji.value.update_at.max(emoji.value.create_at),
        Event::TeamUpdated { team } => team.value.update_at,
        _ => 0,
    };
    (at > 0).then_some(at)
}

/// A removed reaction's `update_at` is when it was removed (§15.7); `now` when absent.
fn reaction_time(json: &str, now: i64) -> i64 {
    #[derive(serde::Deserialize)]
    struct Stamp {
        #[serde(default)]
        update_at: i64,
    }
    serde_json::from_str::<Stamp>(json)
        .ok()
        .map(|s| s.update_at)
        .filter(|&at| at > 0)
        .unwrap_or(now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mm::ws::Broadcast;
    use crate::model::object::Raw;
    use serde_json::value::RawValue;

    fn raw<T: serde::de::DeserializeOwned>(json: &str) -> Raw<T> {
        Raw::parse(RawValue::from_string(json.to_owned()).unwrap()).unwrap()
    }

    fn event(event: Event) -> WsEvent {
        WsEvent {
            seq: 1,
            broadcast: Broadcast::default(),
            event,
            wire_bytes: 100,
        }
    }

    fn posted(channel: &str) -> WsEvent {
        event(Event::Posted {
            post: raw(&format!(
                r#"{{"id":"p1","channel_id":"{channel}","create_at":1,"message":"m"}}"#
            )),
            channel_type: "O".into(),
            team_id: "t".into(),
        })
    }

    #[test]
    fn the_selection_decides_what_is_written() {
        let selection = HashMap::from([("in".into(), true), ("out".into(), false)]);
        assert!(matches!(
            plan(posted("in"), &selection, "me", 5),
            Action::Write(w) if matches!(*w, LiveWrite::Post(_))
        ));
        assert!(matches!(
            plan(posted("out"), &selection, "me", 5),
            Action::NotSelected
        ));
        assert!(matches!(
            plan(posted("new"), &selection, "me", 5),
            Action::Fetch(Fetch::Channel(c)) if c == "new"
        ));
    }

    #[test]
    fn a_removed_reaction_is_dated_by_its_update_at() {
        let selection = HashMap::from([("c".into(), true)]);
        let removed = event(Event::ReactionRemoved {
            reaction: raw(
                r#"{"user_id":"u","post_id":"p","emoji_name":"smile","create_at":0,"update_at":1234,"delete_at":0,"channel_id":""}"#,
            ),
            post_id: "p".into(),
            channel_id: "c".into(),
        });
        match plan(removed, &selection, "me", 99) {
            Action::Write(w) => match *w {
                LiveWrite::ReactionRemoved { at, emoji_name, .. } => {
                    assert_eq!((at, emoji_name.as_str()), (1234, "smile"));
                }
                other => panic!("{other:?}"),
            },
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_deletion_is_dated_when_received_and_channel_events_ask_for_the_channel() {
        let selection = HashMap::from([("c".into(), true)]);
        let deleted = event(Event::PostDeleted {
            post: raw(r#"{"id":"p1","channel_id":"c","create_at":1,"delete_at":0}"#),
            delete_by: None,
        });
        assert!(matches!(
            plan(deleted, &selection, "me", 77),
            Action::Write(w) if matches!(*w, LiveWrite::Deleted { at: 77, .. })
        ));
        let created = event(Event::ChannelCreated {
            channel_id: "n".into(),
            team_id: "t".into(),
        });
        assert!(matches!(
            plan(created, &selection, "me", 1),
            Action::Fetch(Fetch::Channel(c)) if c == "n"
        ));
    }

    /// The `user_updated` the server sends a user about themself (`app/user.go`
    /// sendUpdatedUserEvent: the unsanitized copy) holds private fields: the follower reads
    /// the user again over REST instead of writing the payload.
    #[test]
    fn a_user_updated_payload_is_never_written_the_user_is_fetched() {
        let payload = r#"{"id":"aliceid","create_at":1700000000000,"update_at":1700000090000,"delete_at":0,"username":"alice","password":"$2a$10$Y0bM3wV8hS2pC1kQ9dZ5uO","auth_data":"","auth_service":"","email":"alice@example.com","email_verified":true,"nickname":"Al","first_name":"Alice","last_name":"A","position":"","roles":"system_user","notify_props":{"desktop":"mention","email":"true"},"last_password_update":1700000000000,"last_picture_update":0,"failed_attempts":0,"locale":"en","timezone":{"automaticTimezone":"","manualTimezone":"","useAutomaticTimezone":"true"},"mfa_active":false,"mfa_secret":"JBSWY3DPEHPK3PXP","disable_welcome_email":false}"#;
        let updated = event(Event::UserUpdated { user: raw(payload) });
        assert_eq!(super::event_time(&updated), Some(1_700_000_090_000));
        match plan(updated, &HashMap::new(), "aliceid", 1) {
            Action::Fetch(Fetch::User(id)) => assert_eq!(id, "aliceid"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn membership_events_fetch_members_of_selected_channels_and_our_own_channel() {
        let selection = HashMap::from([("in".into(), true), ("out".into(), false)]);
        let added = |channel: &str, user: &str| {
            event(Event::UserAdded {
                channel_id: channel.into(),
                user_id: user.into(),
            })
        };
        let removed = |channel: &str, user: &str| {
            event(Event::UserRemoved {
                channel_id: channel.into(),
                user_id: user.into(),
            })
        };
        let fetch = |e: WsEvent| match plan(e, &selection, "me", 1) {
            Action::Fetch(Fetch::Members(c)) => format!("members {c}"),
            Action::Fetch(Fetch::Channel(c)) => format!("channel {c}"),
            Action::NotSelected => "not selected".into(),
            Action::Ignore => "ignore".into(),
            other => format!("{other:?}"),
        };
        assert_eq!(fetch(added("in", "bob")), "members in");
        assert_eq!(fetch(removed("in", "bob")), "members in");
        assert_eq!(fetch(added("out", "bob")), "not selected");
        // We joined: the channel itself (it may be new, or selected now).
        assert_eq!(fetch(added("out", "me")), "channel out");
        assert_eq!(fetch(added("new", "bob")), "channel new");
        // We left: a sync writes nothing more of it.
        assert_eq!(fetch(removed("in", "me")), "ignore");
        // Archived elsewhere: only channels the catalog holds.
        let archived = |c: &str| {
            event(Event::ChannelDeleted {
                channel_id: c.into(),
                delete_at: 5,
            })
        };
        assert_eq!(fetch(archived("out")), "channel out");
        assert_eq!(fetch(archived("stranger")), "ignore");
    }
}
