//! The integration tests: one test binary (`cargo test --test it`), a module per area, so the
//! crate and its dependencies are linked once instead of once per file (issue 21: measured on
//! 2 cores, rebuilding the tests after a change in `src/` and the test executables' size).
//! Run one area with `cargo test --test it <area>::` (say `cargo test --test it sync::`).
//!
//! A new area is a file here with a `mod` line below, never a new `tests/*.rs` (the layering
//! test fails on one). The tests share one process: none may change its environment, current
//! directory or other process-wide state, and a measurement of the process itself (memory,
//! threads, open files) runs in a child of its own (see `sql_streaming`).

mod common;
mod mock_support;

mod bulk_import;
mod chat_export;
mod cli;
mod export;
mod follow;
mod fuzz;
mod hostile;
mod import;
mod layering;
mod man;
mod mock_posts;
mod mock_server;
mod mock_websocket;
mod network;
mod query;
mod readme;
mod resume;
mod s3;
mod schema_doc;
mod site;
mod site_browser;
mod sql_streaming;
mod sync;
mod verify;
mod ws_client;
