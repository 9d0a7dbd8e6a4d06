//! Wire shapes that only HTTP needs (paged responses). The server objects themselves (post,
//! channel, user…) are `model::object`'s, under that one name, shared with the catalog and
//! import.
//!
//! May import: nothing of the crate.

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::value::RawValue;

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
