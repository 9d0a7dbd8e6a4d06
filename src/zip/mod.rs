//! Zip archives as matterbak writes and reads them: stored (uncompressed) entries, streamed
//! with memory that does not grow with the number of entries.
//!
//! - [`write`]: [`ZipStream`], the writer of every zip an export writes (through
//!   `export::sink::ZipSink`: the Python layout's zip and the bulk-import zip);
//! - [`read`]: [`ZipIndex`], the central-directory reader of `import`;
//! - [`format`]: the signatures, record lengths and limits both sides share.
//!
//! May import: nothing of the crate (a leaf, like `pylayout` and `config`), so both the
//! exports and `import` use it without depending on each other.

pub mod format;
pub mod read;
pub mod write;

pub use read::{Listed, ZipIndex};
pub use write::ZipStream;
