//! matterbak backs up a Mattermost workspace into an archive (a SQLite catalog plus a BLAKE3
//! content-addressed blob store, local or in S3) and exports it in several formats.
//!
//! ```text
//!  server ──REST──▶ mm ──▶ sync ───┐                     ┌─▶ export: json (Python layout + zip),
//!  Python backups ──▶ import ──────┼─▶ catalog + blobs ──┤   html, markdown/hgf, bulk-import
//!                                  │                     └─▶ sql/search/stats, verify, snapshot
//! ```
//!
//! Data flows one way: `mm` reads the server; `sync` decides what to fetch and hands rows to
//! `catalog` and bytes to `blobs`; `import` is a second way in (Python matterbak backups),
//! through the same calls; `export` and the read commands only read the archive.
//!
//! The modules, each using only the ones its row of docs/design.md "Allowed directions"
//! names (`tests/it/layering.rs` checks every `crate::` path against that table):
//! - drivers: `cli` (arguments, each command's driver and printing), `main` (the binary);
//! - ways in: `sync` (the server into the archive), `import` (Python backups);
//! - ways out: `export` (`--format json|html|markdown|hgf|bulk-import`), `verify` (findings
//!   and repair), `snapshot` (catalog copies beside blobs in a bucket; `pull`), `results`
//!   (tables, CSV and JSON of `sql`, `search` and `stats`);
//! - the archive: `archive` (opens it, for reading or locked for writing, and names
//!   everything in it: every command takes an opened archive), `catalog` (all SQL), `blobs`
//!   (the store), `outdir` (never write into a foreign directory);
//! - the server: `mm` (HTTP client: auth, endpoints, retry, pacing);
//! - leaves: `model` (ids and the server objects every layer shares, `model::object`),
//!   `config` (`credentials.json`, `channels.json`), `pylayout` (the Python tool's names and
//!   paths, both directions), `zip` (streaming zip writer and reader), `progress` (bars and
//!   log lines on the terminal);
//! - `mock`: a Mattermost server for tests, benches and the demo; it imports nothing of the
//!   product.

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
pub mod pylayout;
pub mod results;
pub mod selection;
pub mod snapshot;
pub mod sync;
pub mod verify;
pub mod zip;
