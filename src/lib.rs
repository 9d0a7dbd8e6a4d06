//! matterbak backs up a Mattermost workspace: `sync` copies what a user can read into an
//! archive (a SQLite catalog plus a BLAKE3 content-addressed blob store), `export` renders
//! the Python matterbak's folder layout and zip from it (and, in `export::html`, a website
//! that reads offline); `sql`, `search` and `stats` read it
//! (queries in `catalog`, printing in `results`).
//!
//! Data flows one way: `mm` reads the server; `sync` decides what to fetch and hands rows to
//! `catalog` and bytes to `blobs`; `import` is a second way in (Python matterbak backups),
//! through the same calls; `export` and the read commands only read the archive. The server
//! objects all of them share are in `model::object`.
//! `mock` is a Mattermost server for tests, benches and the demo. `snapshot` copies the
//! catalog beside blobs kept in object storage and `pull`s it back onto a new machine.

pub mod archive;
pub mod blobs;
pub mod catalog;
pub mod cli;
pub mod config;
pub mod export;
pub mod import;
pub mod mm;
pub mod mock;
pub mod model;
pub mod outdir;
pub mod progress;
pub mod results;
pub mod snapshot;
pub mod sync;
pub mod verify;
pub mod zip;
