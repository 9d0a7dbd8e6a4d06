//! Wire structs that only HTTP needs (paged responses). The server objects themselves
//! (post, channel, user…) live in `model::object`, shared with the catalog and import; they
//! are re-exported here so HTTP call sites read `wire::Post` as before.

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::value::RawValue;

pub use crate::model::object::{
    Channel, ChannelMember, Emoji, FileInfo, Post, PostMetadata, Raw, Reaction, Team, TeamMember,
    User, parse_list,
};

/// `GET /channels/{id}/posts` response (§2.2). `posts` can hold more than `order`.
#[derive(Debug, Deserialize)]
pub struct PostList {
    #[serde(default)]
    pub order: Vec<String>,
    #[serde(default)]
    pub posts: HashMap<String, Box<RawValue>>,
    #[serde(default)]
    pub next_post_id: String,
    #[serde(default)]
    pub prev_post_id: String,
}
