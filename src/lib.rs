//! matterbak backs up a Mattermost workspace: `sync` copies what a user can read into an
//! archive (a SQLite catalog plus a BLAKE3 content-addressed blob store), `export` renders
//! the Python matterbak's folder layout and zip from it; `sql`, `search` and `stats` read it
//! (queries in `catalog`, printing in `results`).
//!
//! Data flows one way: `mm` reads the server; `sync` decides what to fetch and hands rows to
//! `catalog` and bytes to `blobs`; `export` and the read commands only read the archive.
//! `mock` is a Mattermost server for tests, benches and the demo. `snapshot` copies the
//! catalog beside blobs kept in object storage and `pull`s it back onto a new machine.

pub mod archive;
pub mod blobs;
pub mod catalog;
pub mod cli;
pub mod config;
pub mod export;
pub mod mm;
pub mod mock;
pub mod model;
pub mod outdir;
pub mod progress;
pub mod results;
pub mod snapshot;
pub mod sync;
pub mod verify;
