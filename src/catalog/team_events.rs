//! What live capture's team events (`added_to_team`, `leave_team`, `update_team`) read of
//! the catalog to fetch only the rows they changed: whether a team is archived, and which
//! archived channels of a team list a user as a member.

use rusqlite::{OptionalExtension, params};

use super::{Catalog, Context, Result};
use crate::model::{ChannelId, TeamId, UserId};

impl Catalog {
    /// Whether `channels.json` selected the team when it was last stored; None when the
    /// catalog does not hold it.
    pub fn team_selected(&self, team_id: &TeamId) -> Result<Option<bool>> {
        self.conn
            .prepare_cached("SELECT selected FROM teams WHERE id = ?1")
            .and_then(|mut s| s.query_row([team_id], |r| r.get(0)).optional())
            .ctx(&self.path, "read team")
    }

    /// The selected channels of `team_id` that list `user_id` as a current member: those
    /// whose member lists a user leaving the team changes (the server removes the
    /// memberships without an event, `app/team.go` LeaveTeam).
    pub fn selected_channels_with_member(
        &self,
        team_id: &TeamId,
        user_id: &UserId,
    ) -> Result<Vec<ChannelId>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT c.id FROM channels c JOIN channel_members m ON m.channel_id = c.id
                 WHERE c.team_id = ?1 AND c.selected = 1 AND m.user_id = ?2 AND m.removed_at IS NULL
                 ORDER BY c.id",
            )
            .ctx(&self.path, "list channels of a member")?;
        stmt.query_map(params![team_id, user_id], |r| r.get(0))
            .and_then(|rows| rows.collect())
            .ctx(&self.path, "list channels of a member")
    }
}
