//! The parts of the zip format (PKWARE APPNOTE 6.3) that the writer and the reader must agree
//! on: record signatures, fixed record lengths, the classic fields' limits (a field at its
//! limit means "see the ZIP64 record") and the ZIP64 extra field's id.
//!
//! May import: nothing (std only). Values are APPNOTE's; a change here changes every zip.

/// Local file header (APPNOTE 4.3.7), 30 bytes before the name and extra field.
pub const LOCAL_SIG: u32 = 0x0403_4b50;
pub const LOCAL_LEN: usize = 30;
/// Central directory file header (4.3.12), 46 bytes before name, extra field and comment.
pub const CENTRAL_SIG: u32 = 0x0201_4b50;
pub const CENTRAL_LEN: usize = 46;
/// End of central directory record (4.3.16), 22 bytes before its comment (at most 65,535).
pub const EOCD_SIG: u32 = 0x0605_4b50;
pub const EOCD_LEN: usize = 22;
/// ZIP64 end of central directory record (4.3.14) and its locator (4.3.15).
pub const ZIP64_EOCD_SIG: u32 = 0x0606_4b50;
pub const ZIP64_LOCATOR_SIG: u32 = 0x0706_4b50;
/// Header id of the ZIP64 extended information extra field (4.5.3).
pub const ZIP64_EXTRA_ID: u16 = 0x0001;
/// Largest value of a classic 16-bit count; at this value the ZIP64 record holds the count.
pub const MAX_U16: u64 = 0xFFFF;
/// Largest value of a classic 32-bit size or offset; at this value the ZIP64 field holds it.
pub const MAX_U32: u64 = 0xFFFF_FFFF;
