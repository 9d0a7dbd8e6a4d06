//! What one WebSocket event means for the archive (`sync --follow`): a catalog write, a
//! catch-up sync, or nothing. Pure: the follower does the I/O.
//!
//! The `channels.json` selection applies as for a sync: an event of a channel the catalog
//! holds unselected is dropped unread; one of a channel it does not hold yet (created, or
//! joined, since the last sync) asks for a catch-up sync, which discovers the channel and
//! applies the rules. Channel, membership, team and user events ask for one too: the sync
//! writes the rows it would (API notes §15.7 lists what each event carries).
//!
//! May import what `sync` may.

use std::collections::HashMap;

use crate::catalog::LiveWrite;
use crate::mm::ws::{Event, WsEvent};

/// What to do about one event.
#[derive(Debug)]
pub(crate) enum Action {
    Write(Box<LiveWrite>),
    /// The channel is in the catalog but not selected.
    NotSelected,
    /// A channel the catalog does not hold (yet).
    UnknownChannel(String),
    /// Something changed that a sync writes (channels, members, users, emojis): run one.
    CatchUp,
    /// Nothing a backup keeps (typing, read state, status…).
    Ignore,
}

/// The action for `event`; `selection` is channel id → selected, `now` (ms) stamps a
/// deletion the event does not date.
pub(crate) fn plan(event: WsEvent, selection: &HashMap<String, bool>, now: i64) -> Action {
    let in_channel = |channel_id: &str, write: LiveWrite| match selection.get(channel_id) {
        Some(true) => Action::Write(Box::new(write)),
        Some(false) => Action::NotSelected,
        None => Action::UnknownChannel(channel_id.to_owned()),
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
        } => in_channel(&channel_id, LiveWrite::ReactionAdded(reaction, post_id)),
        Event::ReactionRemoved {
            reaction,
            post_id,
            channel_id,
        } => {
            let at = reaction_time(reaction.json(), now);
            let write = LiveWrite::ReactionRemoved {
                post_id,
                user_id: reaction.value.user_id.clone(),
                emoji_name: reaction.value.emoji_name.clone(),
                at,
            };
            in_channel(&channel_id, write)
        }
        Event::ChannelCreated { .. }
        | Event::ChannelUpdated { .. }
        | Event::ChannelDeleted { .. }
        | Event::ChannelRestored { .. }
        | Event::ChannelConverted { .. }
        | Event::UserAdded { .. }
        | Event::UserRemoved { .. }
        | Event::DirectAdded { .. }
        | Event::GroupAdded { .. }
        | Event::AddedToTeam { .. }
        | Event::LeaveTeam { .. }
        | Event::TeamUpdated { .. }
        | Event::UserUpdated { .. }
        | Event::EmojiAdded { .. }
        // A payload we cannot read: the sync reads what it said.
        | Event::Malformed { .. } => Action::CatchUp,
        Event::Other { .. } => Action::Ignore,
    }
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
        let selection = HashMap::from([("in".to_owned(), true), ("out".to_owned(), false)]);
        assert!(matches!(
            plan(posted("in"), &selection, 5),
            Action::Write(w) if matches!(*w, LiveWrite::Post(_))
        ));
        assert!(matches!(
            plan(posted("out"), &selection, 5),
            Action::NotSelected
        ));
        assert!(matches!(
            plan(posted("new"), &selection, 5),
            Action::UnknownChannel(c) if c == "new"
        ));
    }

    #[test]
    fn a_removed_reaction_is_dated_by_its_update_at() {
        let selection = HashMap::from([("c".to_owned(), true)]);
        let removed = event(Event::ReactionRemoved {
            reaction: raw(
                r#"{"user_id":"u","post_id":"p","emoji_name":"smile","create_at":0,"update_at":1234,"delete_at":0,"channel_id":""}"#,
            ),
            post_id: "p".into(),
            channel_id: "c".into(),
        });
        match plan(removed, &selection, 99) {
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
    fn a_deletion_is_dated_when_received_and_channel_events_ask_for_a_sync() {
        let selection = HashMap::from([("c".to_owned(), true)]);
        let deleted = event(Event::PostDeleted {
            post: raw(r#"{"id":"p1","channel_id":"c","create_at":1,"delete_at":0}"#),
            delete_by: None,
        });
        assert!(matches!(
            plan(deleted, &selection, 77),
            Action::Write(w) if matches!(*w, LiveWrite::Deleted { at: 77, .. })
        ));
        let created = event(Event::ChannelCreated {
            channel_id: "n".into(),
            team_id: "t".into(),
        });
        assert!(matches!(plan(created, &selection, 1), Action::CatchUp));
    }
}
