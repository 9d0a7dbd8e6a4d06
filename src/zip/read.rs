//! Reads the entries of a zip by its central directory, keeping per entry only what a read
//! needs (where its local header is, its size and CRC-32: 24 bytes). The `zip` crate keeps
//! several hundred bytes of metadata per entry for the whole read, which for a 200,000-post
//! backup (202,000 entries) was 130 MB of the import's memory.
//!
//! Format (APPNOTE 6.3), read side of [`super::write`]: the end-of-central-directory record
//! (or its ZIP64 form) locates the central directory; each central record gives an entry's
//! name, method, CRC-32, sizes and local header offset (ZIP64 extra field when they overflow
//! 32 bits). Reading an entry skips its local header and checks the CRC-32 at the end, so a
//! damaged or truncated entry is an error of that entry alone. Only the caller decides what
//! to do with compressed entries (`method`); reading one returns its stored bytes.
//!
//! May import: [`super::format`] only. Invariant: no input makes it panic; a file that is
//! not a zip, or is cut short anywhere, is an `InvalidData`/`UnexpectedEof` error.

use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;

use super::format::{
    CENTRAL_LEN, CENTRAL_SIG, EOCD_LEN, EOCD_SIG, LOCAL_LEN, LOCAL_SIG, MAX_U32, ZIP64_EOCD_SIG,
    ZIP64_EXTRA_ID, ZIP64_LOCATOR_SIG,
};

/// An entry as the central directory lists it.
pub struct Listed {
    pub name: String,
    /// Compression method (0 = stored).
    pub method: u16,
}

struct Entry {
    offset: u64,
    size: u64,
    crc: u32,
}

pub struct ZipIndex {
    file: File,
    entries: Vec<Entry>,
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// Where the central directory is and how many records it holds.
fn find_central_directory(file: &File, len: u64) -> io::Result<(u64, u64, u64)> {
    // Shorter than an end record: there is none to look for (and the search below reads a
    // whole record at each candidate position).
    if len < EOCD_LEN as u64 {
        return Err(invalid(format!(
            "{len} bytes, shorter than a zip's end of central directory record ({EOCD_LEN} bytes): not a zip, or truncated"
        )));
    }
    let tail_len = len.min((EOCD_LEN + 0xFFFF) as u64) as usize;
    let tail_start = len - tail_len as u64;
    let mut tail = vec![0; tail_len];
    file.read_exact_at(&mut tail, tail_start)?;
    let at = (0..=tail_len.saturating_sub(EOCD_LEN))
        .rev()
        .find(|&i| {
            u32_at(&tail, i) == EOCD_SIG
                && i + EOCD_LEN + usize::from(u16_at(&tail, i + 20)) <= tail_len
        })
        .ok_or_else(|| {
            invalid("no end of central directory record: not a zip, or truncated".into())
        })?;
    let eocd = tail_start + at as u64;
    let mut found = (
        u64::from(u16_at(&tail, at + 10)),
        u64::from(u32_at(&tail, at + 12)),
        u64::from(u32_at(&tail, at + 16)),
    );
    let mut locator = [0; 20];
    if eocd >= 20 {
        file.read_exact_at(&mut locator, eocd - 20)?;
    }
    if u32_at(&locator, 0) == ZIP64_LOCATOR_SIG {
        let mut record = [0; 56];
        file.read_exact_at(&mut record, u64_at(&locator, 8))
            .map_err(|_| invalid("ZIP64 end record outside the file: truncated".into()))?;
        if u32_at(&record, 0) != ZIP64_EOCD_SIG {
            return Err(invalid(
                "no ZIP64 end record where its locator points".into(),
            ));
        }
        found = (
            u64_at(&record, 32),
            u64_at(&record, 40),
            u64_at(&record, 48),
        );
    }
    let (_, size, offset) = found;
    if offset.checked_add(size).is_none_or(|end| end > eocd) {
        return Err(invalid(
            "central directory outside the file: truncated or damaged".into(),
        ));
    }
    Ok(found)
}

impl ZipIndex {
    /// Reads the central directory of `file`: the index and every entry (directories
    /// included, their names ending in `/`), numbered in directory order.
    pub fn open(file: File) -> io::Result<(ZipIndex, Vec<Listed>)> {
        let len = file.metadata()?.len();
        let (count, size, offset) = find_central_directory(&file, len)?;
        // A count larger than the directory can hold is damage, not a reason to allocate.
        let capacity = count.min(size / CENTRAL_LEN as u64) as usize;
        let mut entries = Vec::with_capacity(capacity);
        let mut listed = Vec::with_capacity(capacity);
        let mut reader = BufReader::new(&file);
        reader.seek(SeekFrom::Start(offset))?;
        let mut reader = reader.take(size);
        let mut record = [0; CENTRAL_LEN];
        let mut variable = Vec::new();
        for n in 0..count {
            reader.read_exact(&mut record).map_err(|_| {
                invalid(format!(
                    "central directory ends after {n} of {count} records"
                ))
            })?;
            if u32_at(&record, 0) != CENTRAL_SIG {
                return Err(invalid(format!("central record {n} is damaged")));
            }
            let name_len = usize::from(u16_at(&record, 28));
            let extra_len = usize::from(u16_at(&record, 30));
            let comment_len = usize::from(u16_at(&record, 32));
            variable.resize(name_len + extra_len + comment_len, 0);
            reader.read_exact(&mut variable).map_err(|_| {
                invalid(format!(
                    "central directory ends inside record {n} of {count}"
                ))
            })?;
            let mut size = u64::from(u32_at(&record, 20));
            let mut uncompressed = u64::from(u32_at(&record, 24));
            let mut local = u64::from(u32_at(&record, 42));
            zip64_fields(
                &variable[name_len..name_len + extra_len],
                [&mut uncompressed, &mut size, &mut local],
            );
            entries.push(Entry {
                offset: local,
                size,
                crc: u32_at(&record, 16),
            });
            listed.push(Listed {
                name: String::from_utf8_lossy(&variable[..name_len]).into_owned(),
                method: u16_at(&record, 10),
            });
        }
        Ok((ZipIndex { file, entries }, listed))
    }

    /// Streams an entry's (stored) bytes into `out` and checks them against the CRC-32 of
    /// the central directory; returns how many.
    pub fn copy_to(&self, index: usize, out: &mut dyn Write) -> io::Result<u64> {
        let entry = &self.entries[index];
        let mut header = [0; LOCAL_LEN];
        self.file
            .read_exact_at(&mut header, entry.offset)
            .map_err(|_| invalid("local header outside the file: truncated zip".into()))?;
        if u32_at(&header, 0) != LOCAL_SIG {
            return Err(invalid("no local header at the entry's offset".into()));
        }
        let start = entry.offset
            + LOCAL_LEN as u64
            + u64::from(u16_at(&header, 26))
            + u64::from(u16_at(&header, 28));
        let mut crc = crc32fast::Hasher::new();
        let mut buf = [0; 32 * 1024];
        let mut done = 0;
        while done < entry.size {
            let want = (entry.size - done).min(buf.len() as u64) as usize;
            let n = self.file.read_at(&mut buf[..want], start + done)?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "entry ends after {done} of {} bytes: truncated zip",
                        entry.size
                    ),
                ));
            }
            crc.update(&buf[..n]);
            out.write_all(&buf[..n])?;
            done += n as u64;
        }
        if crc.finalize() != entry.crc {
            return Err(invalid("CRC-32 mismatch: damaged entry".into()));
        }
        Ok(done)
    }
}

/// Replaces the fields a central record marks as overflowing (all ones) by the ZIP64 extra
/// field's values, which come in this order: uncompressed size, compressed size, offset.
fn zip64_fields(mut extra: &[u8], fields: [&mut u64; 3]) {
    while extra.len() >= 4 {
        let (id, len) = (u16_at(extra, 0), usize::from(u16_at(extra, 2)));
        let body = &extra[4..(4 + len).min(extra.len())];
        if id == ZIP64_EXTRA_ID {
            let mut at = 0;
            for field in fields {
                if *field == MAX_U32 && at + 8 <= body.len() {
                    *field = u64_at(body, at);
                    at += 8;
                }
            }
            return;
        }
        extra = &extra[(4 + len).min(extra.len())..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A zip written by the `zip` crate (another writer than our export's), stored.
    fn write(dir: &std::path::Path, entries: &[(&str, &[u8])]) -> std::path::PathBuf {
        let path = dir.join("t.zip");
        let mut zip = zip::ZipWriter::new(File::create(&path).unwrap());
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored);
        for (name, bytes) in entries {
            zip.start_file(*name, options).unwrap();
            zip.write_all(bytes).unwrap();
        }
        zip.finish().unwrap();
        path
    }

    fn read_all(path: &std::path::Path) -> io::Result<Vec<(String, Vec<u8>)>> {
        let (index, listed) = ZipIndex::open(File::open(path)?)?;
        let mut out = Vec::new();
        for (n, entry) in listed.into_iter().enumerate() {
            let mut bytes = Vec::new();
            index.copy_to(n, &mut bytes)?;
            out.push((entry.name, bytes));
        }
        Ok(out)
    }

    #[test]
    fn entries_read_back_and_damage_is_caught() {
        let dir = tempfile::tempdir().unwrap();
        let big = vec![7u8; 100_000];
        let path = write(dir.path(), &[("a/é.json", b"{}"), ("b/big", &big)]);
        let got = read_all(&path).unwrap();
        assert_eq!(got[0], ("a/é.json".to_owned(), b"{}".to_vec()));
        assert_eq!(got[1].1, big);

        // A flipped byte inside the big entry: that entry fails its CRC, the other reads.
        let mut bytes = std::fs::read(&path).unwrap();
        let at = bytes.windows(4).position(|w| w == [7, 7, 7, 7]).unwrap() + 50_000;
        bytes[at] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        let (index, _) = ZipIndex::open(File::open(&path).unwrap()).unwrap();
        assert_eq!(index.copy_to(0, &mut Vec::new()).unwrap(), 2);
        let err = index.copy_to(1, &mut Vec::new()).unwrap_err();
        assert!(err.to_string().contains("CRC-32 mismatch"), "{err}");

        // Cut off: no end record is found.
        std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
        let err = ZipIndex::open(File::open(&path).unwrap()).err().unwrap();
        assert!(
            err.to_string().contains("no end of central directory"),
            "{err}"
        );
    }

    /// Opens and reads every entry; an error anywhere is fine, a panic is not.
    fn read_bytes(dir: &std::path::Path, bytes: &[u8]) -> io::Result<Vec<(String, Vec<u8>)>> {
        let path = dir.join("cut.zip");
        std::fs::write(&path, bytes)?;
        read_all(&path)
    }

    #[test]
    fn every_cut_and_every_damaged_byte_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), &[("users/u1.json", b"{}"), ("b/", b"")]);
        let whole = std::fs::read(&path).unwrap();
        for len in 0..whole.len() {
            let err = read_bytes(dir.path(), &whole[..len]).unwrap_err();
            assert!(
                matches!(
                    err.kind(),
                    io::ErrorKind::InvalidData | io::ErrorKind::UnexpectedEof
                ),
                "cut at {len}: {err}"
            );
        }
        for at in 0..whole.len() {
            for value in [0x00, 0xFF] {
                let mut damaged = whole.clone();
                damaged[at] = value;
                let _ = read_bytes(dir.path(), &damaged);
            }
        }
        let err = read_bytes(dir.path(), b"PK\x05\x06").unwrap_err();
        assert!(
            err.to_string().starts_with("4 bytes, shorter than"),
            "{err}"
        );
    }

    #[test]
    fn many_entries_are_found_through_the_zip64_end_records() {
        let dir = tempfile::tempdir().unwrap();
        let names: Vec<String> = (0..70_000).map(|n| format!("users/u{n}.json")).collect();
        let entries: Vec<(&str, &[u8])> = names.iter().map(|n| (n.as_str(), &b"1"[..])).collect();
        let path = write(dir.path(), &entries);
        let (index, listed) = ZipIndex::open(File::open(&path).unwrap()).unwrap();
        assert_eq!(listed.len(), 70_000);
        assert_eq!(listed[69_999].name, "users/u69999.json");
        let mut bytes = Vec::new();
        index.copy_to(69_999, &mut bytes).unwrap();
        assert_eq!(bytes, b"1");
    }
}
