//! A streaming writer for stored (uncompressed) zip archives whose memory does not grow with
//! the number of entries: the central directory is spooled to a temp file as entries are
//! written and appended at the end. The `zip` crate keeps every entry's metadata in memory
//! (hundreds of bytes each) and flushes and seeks per entry, which made a 200,000-post export
//! five times slower and 15× bigger in memory than writing the same files to a directory.
//!
//! Format (APPNOTE 6.3): each entry is a local header, then its bytes; CRC-32 and sizes are
//! patched into the local header after the data (in the write buffer when still there, else
//! with one positioned write), so no data descriptors are needed. ZIP64 records are used
//! when sizes, offsets or the entry count exceed the classic limits. Every field that could
//! vary between runs is fixed (time 1980-01-01 00:00, Unix permissions), so equal input gives
//! equal bytes.
//!
//! May import: [`super::format`] only.

use std::fs::File;
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::format::{
    CENTRAL_LEN, CENTRAL_SIG, EOCD_SIG, LOCAL_LEN, LOCAL_SIG, MAX_U16, MAX_U32, ZIP64_EOCD_SIG,
    ZIP64_EXTRA_ID, ZIP64_LOCATOR_SIG,
};

/// Bit 11: names are UTF-8.
const FLAG_UTF8: u16 = 0x0800;
/// DOS date for 1980-01-01 (day 1, month 1, year 0); time 00:00:00 is 0.
const DOS_DATE: u16 = (1 << 5) | 1;
/// "Made by" Unix (3) with spec version 4.5, so readers apply our permission bits.
const MADE_BY: u16 = (3 << 8) | 45;
/// Bytes buffered before a write; a local header still in the buffer is patched in place.
const BUFFER: usize = 64 * 1024;

/// Where an entry started and what it holds, until its header is patched.
struct Open {
    name: Vec<u8>,
    offset: u64,
    zip64: bool,
    crc: crc32fast::Hasher,
    size: u64,
    mode: u32,
}

pub struct ZipStream {
    file: File,
    /// Bytes not yet written to `file`; they belong at `flushed`.
    buf: Vec<u8>,
    flushed: u64,
    central: BufWriter<File>,
    central_path: PathBuf,
    central_size: u64,
    entries: u64,
    open: Option<Open>,
}

fn le16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_le_bytes());
}
fn le32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}
fn le64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn clamp32(v: u64) -> u32 {
    v.min(MAX_U32) as u32
}

impl ZipStream {
    /// Writes the zip to `file`; the central directory spools to `spool` (removed at the end
    /// or on drop).
    pub fn new(file: File, spool: &Path) -> io::Result<ZipStream> {
        let central = File::create(spool)?;
        Ok(ZipStream {
            file,
            buf: Vec::with_capacity(BUFFER),
            flushed: 0,
            central: BufWriter::with_capacity(64 * 1024, central),
            central_path: spool.to_owned(),
            central_size: 0,
            entries: 0,
            open: None,
        })
    }

    fn position(&self) -> u64 {
        self.flushed + self.buf.len() as u64
    }

    fn flush_buf(&mut self) -> io::Result<()> {
        self.file.write_all(&self.buf)?;
        self.flushed += self.buf.len() as u64;
        self.buf.clear();
        Ok(())
    }

    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        if self.buf.len() + bytes.len() > BUFFER {
            self.flush_buf()?;
            if bytes.len() >= BUFFER {
                self.file.write_all(bytes)?;
                self.flushed += bytes.len() as u64;
                return Ok(());
            }
        }
        self.buf.extend_from_slice(bytes);
        Ok(())
    }

    /// Adds a directory entry (`name` ends with `/`).
    pub fn add_directory(&mut self, name: &str, mode: u32) -> io::Result<()> {
        self.start(name, 0o040000 | mode, false)?;
        self.finish_entry()
    }

    /// Starts a file entry; write its bytes with `write`, then call `finish_entry`. `large`
    /// must be true when the entry may reach 4 GiB (it then carries ZIP64 sizes).
    pub fn start_file(&mut self, name: &str, mode: u32, large: bool) -> io::Result<()> {
        self.start(name, 0o100000 | mode, large)
    }

    fn start(&mut self, name: &str, mode: u32, large: bool) -> io::Result<()> {
        if self.open.is_some() {
            return Err(io::Error::other(
                "zip entry started before the previous one finished",
            ));
        }
        if name.len() > MAX_U16 as usize {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "zip entry name longer than 65535 bytes",
            ));
        }
        let offset = self.position();
        let mut header = Vec::with_capacity(LOCAL_LEN + name.len() + 20);
        le32(&mut header, LOCAL_SIG);
        le16(&mut header, if large { 45 } else { 20 });
        le16(&mut header, FLAG_UTF8);
        le16(&mut header, 0); // stored
        le16(&mut header, 0); // time
        le16(&mut header, DOS_DATE);
        le32(&mut header, 0); // crc, patched
        le32(&mut header, if large { u32::MAX } else { 0 }); // compressed size, patched
        le32(&mut header, if large { u32::MAX } else { 0 }); // size, patched
        le16(&mut header, name.len() as u16);
        le16(&mut header, if large { 20 } else { 0 });
        header.extend_from_slice(name.as_bytes());
        if large {
            le16(&mut header, ZIP64_EXTRA_ID);
            le16(&mut header, 16);
            le64(&mut header, 0); // size, patched
            le64(&mut header, 0); // compressed size, patched
        }
        self.put(&header)?;
        self.open = Some(Open {
            name: name.as_bytes().to_vec(),
            offset,
            zip64: large,
            crc: crc32fast::Hasher::new(),
            size: 0,
            mode,
        });
        Ok(())
    }

    /// Writes bytes of the open entry.
    pub fn write_data(&mut self, bytes: &[u8]) -> io::Result<()> {
        let open = self
            .open
            .as_mut()
            .ok_or_else(|| io::Error::other("no zip entry open"))?;
        open.crc.update(bytes);
        open.size += bytes.len() as u64;
        if !open.zip64 && open.size > MAX_U32 {
            return Err(io::Error::other(
                "zip entry reached 4 GiB without ZIP64 sizes",
            ));
        }
        self.put(bytes)
    }

    /// Completes the open entry: patches its header and records it for the directory.
    pub fn finish_entry(&mut self) -> io::Result<()> {
        let open = self
            .open
            .take()
            .ok_or_else(|| io::Error::other("no zip entry open"))?;
        let crc = open.crc.clone().finalize();
        // crc at +14, sizes at +18/+22; ZIP64 sizes in the extra field after the name.
        let mut patches: Vec<(u64, Vec<u8>)> = vec![(open.offset + 14, crc.to_le_bytes().to_vec())];
        if open.zip64 {
            let mut sizes = Vec::new();
            le64(&mut sizes, open.size);
            le64(&mut sizes, open.size);
            patches.push((
                open.offset + LOCAL_LEN as u64 + open.name.len() as u64 + 4,
                sizes,
            ));
        } else {
            let mut sizes = Vec::new();
            le32(&mut sizes, open.size as u32);
            le32(&mut sizes, open.size as u32);
            patches.push((open.offset + 18, sizes));
        }
        for (at, bytes) in patches {
            if at >= self.flushed {
                let start = (at - self.flushed) as usize;
                self.buf[start..start + bytes.len()].copy_from_slice(&bytes);
            } else {
                self.file.write_all_at(&bytes, at)?;
            }
        }
        self.central_record(&open, crc)
    }

    fn central_record(&mut self, open: &Open, crc: u32) -> io::Result<()> {
        let mut extra = Vec::new();
        if open.size > MAX_U32 || open.zip64 {
            le64(&mut extra, open.size);
            le64(&mut extra, open.size);
        }
        if open.offset >= MAX_U32 {
            le64(&mut extra, open.offset);
        }
        let sizes_in_extra = open.size > MAX_U32 || open.zip64;
        let mut record = Vec::with_capacity(CENTRAL_LEN + open.name.len() + extra.len() + 4);
        le32(&mut record, CENTRAL_SIG);
        le16(&mut record, MADE_BY);
        le16(&mut record, if extra.is_empty() { 20 } else { 45 });
        le16(&mut record, FLAG_UTF8);
        le16(&mut record, 0);
        le16(&mut record, 0);
        le16(&mut record, DOS_DATE);
        le32(&mut record, crc);
        let size = if sizes_in_extra {
            u32::MAX
        } else {
            open.size as u32
        };
        le32(&mut record, size);
        le32(&mut record, size);
        le16(&mut record, open.name.len() as u16);
        le16(
            &mut record,
            if extra.is_empty() {
                0
            } else {
                extra.len() as u16 + 4
            },
        );
        le16(&mut record, 0); // comment
        le16(&mut record, 0); // disk
        le16(&mut record, 0); // internal attributes
        let dos_dir = if open.mode & 0o040000 != 0 { 0x10 } else { 0 };
        le32(&mut record, (open.mode << 16) | dos_dir);
        le32(&mut record, clamp32(open.offset));
        record.extend_from_slice(&open.name);
        if !extra.is_empty() {
            le16(&mut record, ZIP64_EXTRA_ID);
            le16(&mut record, extra.len() as u16);
            record.extend_from_slice(&extra);
        }
        self.central.write_all(&record)?;
        self.central_size += record.len() as u64;
        self.entries += 1;
        Ok(())
    }

    /// Appends the central directory and end records; returns the finished file.
    pub fn finish(mut self) -> io::Result<File> {
        if self.open.is_some() {
            return Err(io::Error::other("zip finished with an entry still open"));
        }
        let central_offset = self.position();
        self.central.flush()?;
        let mut spool = File::open(&self.central_path)?;
        spool.seek(SeekFrom::Start(0))?;
        let mut chunk = vec![0u8; 256 * 1024];
        loop {
            let n = spool.read(&mut chunk)?;
            if n == 0 {
                break;
            }
            self.put(&chunk[..n])?;
        }
        let end_of_central = self.position();
        let mut tail = Vec::new();
        let zip64 =
            self.entries >= MAX_U16 || central_offset >= MAX_U32 || self.central_size >= MAX_U32;
        if zip64 {
            le32(&mut tail, ZIP64_EOCD_SIG);
            le64(&mut tail, 44);
            le16(&mut tail, MADE_BY);
            le16(&mut tail, 45);
            le32(&mut tail, 0);
            le32(&mut tail, 0);
            le64(&mut tail, self.entries);
            le64(&mut tail, self.entries);
            le64(&mut tail, self.central_size);
            le64(&mut tail, central_offset);
            le32(&mut tail, ZIP64_LOCATOR_SIG);
            le32(&mut tail, 0);
            le64(&mut tail, end_of_central);
            le32(&mut tail, 1);
        }
        le32(&mut tail, EOCD_SIG);
        le16(&mut tail, 0);
        le16(&mut tail, 0);
        let count = self.entries.min(MAX_U16) as u16;
        le16(&mut tail, count);
        le16(&mut tail, count);
        le32(&mut tail, clamp32(self.central_size));
        le32(&mut tail, clamp32(central_offset));
        le16(&mut tail, 0);
        self.put(&tail)?;
        self.flush_buf()?;
        let _ = std::fs::remove_file(&self.central_path);
        self.file.try_clone()
    }
}

impl Drop for ZipStream {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.central_path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(entries: &[(&str, Option<&[u8]>)]) -> Vec<u8> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.zip");
        let mut z = ZipStream::new(File::create(&path).unwrap(), &dir.path().join("cd")).unwrap();
        for (name, data) in entries {
            match data {
                None => z.add_directory(name, 0o755).unwrap(),
                Some(bytes) => {
                    z.start_file(name, 0o644, false).unwrap();
                    z.write_data(bytes).unwrap();
                    z.finish_entry().unwrap();
                }
            }
        }
        z.finish().unwrap();
        assert!(!dir.path().join("cd").exists(), "spool removed");
        std::fs::read(&path).unwrap()
    }

    #[test]
    fn readers_see_names_contents_and_modes() {
        let bytes = build(&[
            ("d/", None),
            ("d/a.json", Some(b"{\"a\": 1}")),
            ("\u{00fc}ber.txt", Some(b"")),
        ]);
        let mut z = zip::ZipArchive::new(io::Cursor::new(bytes)).unwrap();
        assert_eq!(z.len(), 3);
        let d = z.by_index(0).unwrap();
        assert!(d.is_dir());
        assert_eq!(d.unix_mode(), Some(0o040755));
        drop(d);
        let mut a = z.by_name("d/a.json").unwrap();
        let mut s = String::new();
        a.read_to_string(&mut s).unwrap();
        assert_eq!(s, "{\"a\": 1}");
        assert_eq!(a.unix_mode(), Some(0o100644));
        drop(a);
        assert_eq!(z.by_name("\u{00fc}ber.txt").unwrap().size(), 0);
    }

    #[test]
    fn equal_input_gives_equal_bytes() {
        let e: &[(&str, Option<&[u8]>)] = &[("x/", None), ("x/y", Some(b"data"))];
        assert_eq!(build(e), build(e));
    }

    #[test]
    fn many_entries_use_zip64_end_records_and_big_entries_patch_outside_the_buffer() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.zip");
        let mut z = ZipStream::new(File::create(&path).unwrap(), &dir.path().join("cd")).unwrap();
        // Larger than the buffer: its header is patched with a positioned write.
        let big = vec![7u8; BUFFER * 2 + 123];
        z.start_file("big.bin", 0o644, true).unwrap();
        z.write_data(&big[..1000]).unwrap();
        z.write_data(&big[1000..]).unwrap();
        z.finish_entry().unwrap();
        for i in 0..70_000u32 {
            z.start_file(&format!("f/{i}"), 0o644, false).unwrap();
            z.write_data(&i.to_le_bytes()).unwrap();
            z.finish_entry().unwrap();
        }
        z.finish().unwrap();
        let mut archive = zip::ZipArchive::new(File::open(&path).unwrap()).unwrap();
        assert_eq!(archive.len(), 70_001);
        let mut entry = archive.by_name("big.bin").unwrap();
        let mut read = Vec::new();
        entry.read_to_end(&mut read).unwrap();
        assert_eq!(read, big);
        drop(entry);
        let mut last = Vec::new();
        archive
            .by_name("f/69999")
            .unwrap()
            .read_to_end(&mut last)
            .unwrap();
        assert_eq!(last, 69_999u32.to_le_bytes());
    }
}
