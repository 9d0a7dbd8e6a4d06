//! The endpoints matterbak reads (§ numbers refer to `mattermost-api.md`): one `fetch_*` per
//! server call, paged where the server pages, with the server's quirks handled here (old
//! servers without an endpoint, duplicates across pages, silent caps).
//!
//! May import: `model` (the objects parsed from the answers).

use std::collections::{HashMap, HashSet};

use reqwest::header::HeaderMap;
use serde_json::value::RawValue;

use super::wire::PostList;
use super::{Client, MmError, Result};
use crate::model::object::{
    Channel, ChannelMember, Emoji, FileInfo, Raw, Team, TeamMember, User, parse_list,
};
use crate::model::{ChannelId, FileId, PostId, TeamId, UserId};

/// The page size the server allows at most (§0); larger requests are clamped silently.
pub const MAX_PER_PAGE: usize = 200;
/// Ids per `POST /users/ids` body: far below the 300 kB body cap.
const USER_BATCH: usize = 1000;
/// Ids the server reads of a `POST /users/group_channels` body; it drops the rest without a
/// word (`MaxGroupChannelsForProfiles`, §14.1).
pub const GROUP_CHANNEL_BATCH: usize = 50;

/// Query for `GET /channels/{id}/posts` (§2.1): exactly one mode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PostsQuery {
    /// Newest first, `page` pages of `per_page` from the newest post.
    Page { page: u32 },
    /// Older than the given post, `page` pages away from it.
    Before { post_id: PostId, page: u32 },
    /// Every row changed after the given time (ms), deleted and history rows included.
    Since { since: i64 },
}

/// A posts response plus the header we need for the watermark.
pub struct PostsPage {
    pub list: PostList,
    /// Max update_at of the channel when the page was served (from the page-mode ETag).
    pub etag_update_at: Option<i64>,
}

fn parse_etag_update_at(headers: &HeaderMap) -> Option<i64> {
    let etag = headers.get("etag")?.to_str().ok()?;
    let etag = etag.trim().trim_start_matches("W/").trim_matches('"');
    etag.rsplit('.').next()?.parse().ok()
}

impl Client {
    /// `GET /users/me`: your own user, as a run stores it (live capture reads it again when
    /// joining a team changed it).
    pub async fn fetch_me(&self) -> Result<Raw<User>> {
        self.get(&["users", "me"], &[]).await
    }

    /// `GET /users/me/teams`: every team you belong to (not paged).
    pub async fn fetch_teams(&self) -> Result<Vec<Raw<Team>>> {
        self.get(&["users", "me", "teams"], &[]).await
    }

    /// Every channel of the user in one request (archived included), or None on servers
    /// without that endpoint: then [`Client::fetch_team_channels`] per team.
    pub async fn fetch_my_channels(&self) -> Result<Option<Vec<Raw<Channel>>>> {
        let deleted = [("include_deleted", "true".to_string())];
        match self.get(&["users", "me", "channels"], &deleted).await {
            Ok(channels) => Ok(Some(channels)),
            Err(
                MmError::Status {
                    status: 404 | 501, ..
                }
                | MmError::NotMattermost { .. },
            ) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The user's channels team by team (older servers), without duplicates (DMs and GMs
    /// come with every team).
    pub async fn fetch_team_channels(&self, team_ids: &[TeamId]) -> Result<Vec<Raw<Channel>>> {
        let deleted = [("include_deleted", "true".to_string())];
        let mut seen = HashSet::new();
        let mut all = Vec::new();
        for team_id in team_ids {
            for channel in self
                .get::<Vec<Raw<Channel>>>(&["users", "me", "teams", team_id, "channels"], &deleted)
                .await?
            {
                if seen.insert(channel.value.id.clone()) {
                    all.push(channel);
                }
            }
        }
        Ok(all)
    }

    /// `GET /channels/{id}`: one channel, as the lists show it (live capture fetches the
    /// channel an event names).
    pub async fn fetch_channel(&self, channel_id: &ChannelId) -> Result<Raw<Channel>> {
        self.get(&["channels", channel_id], &[]).await
    }

    pub async fn fetch_team_members(&self, team_id: &TeamId) -> Result<Vec<Raw<TeamMember>>> {
        self.get_all_pages(&["teams", team_id, "members"], &[])
            .await
    }

    /// Channel members; the server's order is not stable across pages (§4.3), so duplicates
    /// are dropped.
    pub async fn fetch_channel_members(
        &self,
        channel_id: &ChannelId,
    ) -> Result<Vec<Raw<ChannelMember>>> {
        let mut seen = HashSet::new();
        let members = self
            .get_all_pages::<ChannelMember>(&["channels", channel_id, "members"], &[])
            .await?;
        Ok(members
            .into_iter()
            .filter(|m| seen.insert(m.value.user_id.clone()))
            .collect())
    }

    /// `POST /users/ids`, in batches; with `since`, only users changed after it.
    pub async fn fetch_users(&self, ids: &[UserId], since: Option<i64>) -> Result<Vec<Raw<User>>> {
        let mut all = Vec::new();
        let query: Vec<(&str, String)> = since
            .map(|s| ("since", s.to_string()))
            .into_iter()
            .collect();
        for batch in ids.chunks(USER_BATCH) {
            all.extend(
                self.post_json(&["users", "ids"], &query, &batch, parse_list)
                    .await?,
            );
        }
        Ok(all)
    }

    /// `POST /users/group_channels`: the other members of group channels, in batches of
    /// [`GROUP_CHANNEL_BATCH`] (the server ignores ids beyond that). A channel missing from
    /// the answer is missing from the map; `Ok(None)` when the server does not have the
    /// endpoint (404/501, §14.1): then use [`Client::fetch_channel_members`].
    pub async fn fetch_group_channel_users(
        &self,
        channel_ids: &[ChannelId],
    ) -> Result<Option<HashMap<ChannelId, Vec<Raw<User>>>>> {
        let mut all = HashMap::new();
        for batch in channel_ids.chunks(GROUP_CHANNEL_BATCH) {
            match self.fetch_group_channel_batch(batch).await {
                Ok(map) => all.extend(map),
                Err(
                    MmError::Status {
                        status: 404 | 501, ..
                    }
                    | MmError::NotMattermost { .. },
                ) => return Ok(None),
                Err(e) => return Err(e),
            }
        }
        Ok(Some(all))
    }

    async fn fetch_group_channel_batch(
        &self,
        channel_ids: &[ChannelId],
    ) -> Result<HashMap<ChannelId, Vec<Raw<User>>>> {
        self.post_json(&["users", "group_channels"], &[], &channel_ids, |body| {
            let map: HashMap<ChannelId, Vec<Box<RawValue>>> = serde_json::from_slice(body)?;
            map.into_iter()
                .map(|(k, users)| {
                    Ok((
                        k,
                        users
                            .into_iter()
                            .map(Raw::parse)
                            .collect::<serde_json::Result<Vec<_>>>()?,
                    ))
                })
                .collect()
        })
        .await
    }

    pub async fn fetch_posts(
        &self,
        channel_id: &ChannelId,
        query: &PostsQuery,
    ) -> Result<PostsPage> {
        let per_page = ("per_page", MAX_PER_PAGE.to_string());
        let skip_threads = ("skipFetchThreads", "true".to_string());
        let params: Vec<(&str, String)> = match query {
            PostsQuery::Page { page } => vec![("page", page.to_string()), per_page, skip_threads],
            PostsQuery::Before { post_id, page } => {
                vec![
                    ("before", post_id.to_string()),
                    ("page", page.to_string()),
                    per_page,
                    skip_threads,
                ]
            }
            PostsQuery::Since { since } => vec![("since", since.to_string()), skip_threads],
        };
        let (list, headers) = self
            .get_json(&["channels", channel_id, "posts"], &params, |body| {
                serde_json::from_slice::<PostList>(body)
            })
            .await?;
        Ok(PostsPage {
            list,
            etag_update_at: parse_etag_update_at(&headers),
        })
    }

    /// Whether a post still exists for us (`GET /posts/{id}`): a 404 means deleted.
    pub async fn post_exists(&self, post_id: &PostId) -> Result<bool> {
        // The body does not matter; only that a whole one came.
        match self.get_json(&["posts", post_id], &[], |_| Ok(())).await {
            Ok(_) => Ok(true),
            Err(MmError::Status { status: 404, .. } | MmError::NotMattermost { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    pub async fn fetch_file_info(&self, file_id: &FileId) -> Result<Raw<FileInfo>> {
        self.get(&["files", file_id, "info"], &[]).await
    }

    /// `GET /emoji?sort=name`, all pages. None when custom emojis are disabled (501).
    pub async fn fetch_emojis(&self) -> Result<Option<Vec<Raw<Emoji>>>> {
        match self
            .get_all_pages(&["emoji"], &[("sort", "name".to_string())])
            .await
        {
            Ok(list) => Ok(Some(list)),
            Err(MmError::Status { status: 501, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etag_watermark_is_the_number_after_the_last_dot() {
        let mut h = HeaderMap::new();
        h.insert("etag", "\"9.11.0.1700000123456\"".parse().unwrap());
        assert_eq!(parse_etag_update_at(&h), Some(1700000123456));
        h.insert("etag", "W/\"garbage\"".parse().unwrap());
        assert_eq!(parse_etag_update_at(&h), None);
    }
}
