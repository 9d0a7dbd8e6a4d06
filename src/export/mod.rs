//! Pure building blocks of `matterbak export`, which writes the folder layout (and zip) of
//! the Python tool `matterbak` 0.4.0 byte for byte from the catalog:
//!
//! - [`pyjson`]: re-serialise stored raw JSON exactly as Python's `json.dump` writes it;
//! - [`layout`]: the relative path of every exported object, with server-controlled names
//!   made safe (they can never leave the export root or hit another entry);
//! - [`sink`]: where the bytes go: a directory, a deterministic zip, or both at once;
//! - [`html`]: a sibling format, the archive as an offline website.
//!
//! - [`chat`], [`markdown`], [`hgf`]: one channel as a document (`--format markdown|hgf`),
//!   the Python `matterexport`'s formats; driven by `export_chats`.
//!
//! The building blocks never touch the catalog or the network, so they are tested on
//! literals; [`export_archive`] walks a read-only snapshot of the catalog and feeds them.
//! Export never touches the network: it is a pure function of the archive.

pub mod bulk_import;
pub mod chat;
mod chatexport;
pub mod hgf;
pub mod html;
pub mod layout;
pub mod markdown;
pub mod pyjson;
pub mod sink;
mod walk;

pub use chat::Flavor;
pub use chatexport::{
    ChatExportError, ChatFormat, ChatOptions, ChatOutput, ChatReport, export_chats,
};
pub use walk::{ExportError, ExportOptions, ExportReport, default_zip_name, export_archive};
