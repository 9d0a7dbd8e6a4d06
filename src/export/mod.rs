//! `matterbak export`: every output format, each a pure function of the archive (a read-only
//! snapshot of the catalog plus the blobs); nothing here touches the network.
//!
//! - [`pylayout`] (`--format json`): the Python tool `matterbak` 0.4.0's folder layout and
//!   zip, byte for byte, with [`pyjson`] (stored JSON re-serialised as Python's `json.dump`
//!   writes it) and [`sink`] (a directory, a deterministic zip, or both at once);
//! - [`html`] (`--format html`): the archive as an offline website;
//! - [`chat`], [`markdown`], [`hgf`] (`--format markdown|hgf`): one channel as a document,
//!   the Python `matterexport`'s formats, driven by [`export_chats`];
//! - [`bulk_import`] (`--format bulk-import`): a Mattermost bulk-import zip, to restore into
//!   a server;
//! - [`zone`]: the time zone of local times in json, markdown and hgf (`--tz`);
//! - [`view`]: the one read model of the channel-at-a-time formats (Markdown, HGF, the
//!   website, bulk import): teams, users and one channel as typed objects over `model`,
//!   built from the catalog's records.
//!
//! Each format reads the catalog through `catalog`'s read functions (never SQL of its own)
//! and the blobs through `blobs`; the channel-at-a-time formats render from [`view`] and
//! never pick stored JSON apart themselves. The pure parts (`pyjson`, paging, naming,
//! Markdown rendering, the bulk-import rules) are tested on literals.
//!
//! May import: `pylayout`, `zip`, `selection`, `archive`, `catalog`, `blobs`, `outdir`,
//! `model` (docs/design.md "Allowed directions"); never `mm`, `sync` or `import`.

pub mod bulk_import;
pub mod chat;
mod chatexport;
pub mod hgf;
pub mod html;
pub mod markdown;
pub mod pyjson;
pub mod pylayout;
pub mod sink;
pub mod view;
pub mod zone;

pub use chat::Flavor;
pub use chatexport::{
    ChatExportError, ChatFormat, ChatOptions, ChatOutput, ChatReport, export_chats,
};
pub use pylayout::{
    PyLayoutError, PyLayoutOptions, PyLayoutReport, default_zip_name, export_pylayout,
};
pub use zone::Zone;
