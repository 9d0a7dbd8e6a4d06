//! A stateful Mattermost REST v4 mock server on loopback, for tests, benches, demos and
//! conformance runs of other clients.
//!
//! It reproduces the real server's observable behaviour for everything an ordinary-user
//! backup touches — including its traps (strict cursor comparisons, the silent since
//! cap, blanked deleted rows, edit-history rows, per_page clamping, 403 on
//! `include_deleted`). Layout:
//! - [`Workspace`]: all state as plain data with a logical clock, lookups and mutations;
//! - `sample`: the deterministic built-in workspace and the standard update scenario;
//! - `file_names`: the file-name scenario (every kind of attachment name the server allows);
//! - `postlist` / `render`: the post-stream queries and the JSON wire shapes;
//! - [`MockServer`] (`server`, `api`): HTTP, request recording, injected [`Faults`];
//! - `events` / `hub`: the WebSocket events the mutations publish and the connections that
//!   receive them (`GET /api/v4/websocket`, API notes §15).
//!
//! Invariant: the same calls always produce the same ids, timestamps and bytes.
//!
//! May import: nothing of the product (it is its own program; only `cli` uses it).

mod access;
mod api;
mod error;
mod events;
mod faults;
mod file_names;
mod generate;
mod hub;
mod ids;
mod model;
mod png;
mod postlist;
mod render;
mod sample;
mod server;
mod workspace;

pub use faults::{Faults, RateLimit};
pub use file_names::{
    FILE_NAME_CASES, FILE_NAME_CASES_BEYOND_PYTHON, PYTHON_LONGEST_NAME_BYTES, long_names,
};
pub use generate::shape::{GenFile, GenPost, GenPosts, MAX_MESSAGE_CHARS};
pub use generate::stream::{Change, ChangeKind, ChangeStream, Mix};
pub use generate::{GENERATED_EMOJIS, GenSpec, MinimumRequests, username as generated_username};
pub use hub::{ConnectionInfo, DEAD_QUEUE_SIZE, SEND_QUEUE_SIZE, WsTiming};
pub use model::NewFile;
pub use postlist::SINCE_LIMIT;
pub use sample::{
    SAMPLE_MFA_CODE, SAMPLE_MFA_PASSWORD, SAMPLE_MFA_USER, SAMPLE_PASSWORD, SAMPLE_TOKEN,
    SAMPLE_USER, sample_png,
};
pub use server::{MockServer, RequestRecord, SERVER_VERSION};
pub use workspace::Workspace;

/// A `channels.json` for the sample workspace that exercises every selection rule: a team by
/// name with everything, a team by display name with an exclude, a team you are not in, DMs
/// (your own included, one with nobody), an exact and a subset group.
pub const SAMPLE_CHANNELS_JSON: &str = include_str!("sample_channels.json");

/// The demo's `channels.json`: the channels [`SAMPLE_CHANNELS_JSON`] selects, without the
/// names that select nothing (a team you are not in, a user who does not exist), so a first
/// run shows no warnings.
pub const DEMO_CHANNELS_JSON: &str = include_str!("demo_channels.json");
