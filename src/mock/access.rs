//! Who may see what: membership and read-permission rules of an ordinary user.
//!
//! Mirrors the server's defaults: a channel is readable by its members and, for public
//! channels, by every member of its team; archived channels stay readable (newest
//! servers); DMs/GMs only by their members.

use super::model::{Channel, ChannelMember, TeamMember};
use super::workspace::Workspace;

impl Workspace {
    pub(crate) fn team_membership(&self, team_id: &str, user_id: &str) -> Option<&TeamMember> {
        self.team_members
            .iter()
            .find(|m| m.team_id == team_id && m.user_id == user_id && m.delete_at == 0)
    }

    pub(crate) fn is_team_member(&self, team_id: &str, user_id: &str) -> bool {
        self.team_membership(team_id, user_id).is_some()
    }

    pub(crate) fn is_channel_member(&self, channel_id: &str, user_id: &str) -> bool {
        self.channel_members
            .iter()
            .any(|m| m.channel_id == channel_id && m.user_id == user_id)
    }

    pub(crate) fn channel_members_of<'a>(
        &'a self,
        channel_id: &'a str,
    ) -> impl Iterator<Item = &'a ChannelMember> {
        self.channel_members
            .iter()
            .filter(move |m| m.channel_id == channel_id)
    }

    pub(crate) fn can_read_channel(&self, user_id: &str, channel: &Channel) -> bool {
        self.is_channel_member(&channel.id, user_id)
            || (channel.kind == 'O' && self.is_team_member(&channel.team_id, user_id))
    }

    /// The user a session or access token belongs to, if the token is valid and the user
    /// active.
    pub(crate) fn session_user(&self, token: &str) -> Option<&str> {
        let row = self.tokens.get(token)?;
        let user = self.users.get(&row.user_id)?;
        (user.delete_at == 0).then_some(user.id.as_str())
    }

    /// Channels the user is a member of, each once, ordered by id.
    pub(crate) fn member_channels(&self, user_id: &str) -> Vec<&Channel> {
        self.channels
            .values()
            .filter(|c| self.is_channel_member(&c.id, user_id))
            .collect()
    }
}
