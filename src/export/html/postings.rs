//! The search index's postings while a site is built: each term and the posts that hold it
//! (sequence numbers in the order posts were added). Held in memory up to
//! [`RUN_POSTINGS`] postings, then written to an unnamed temporary file as a run sorted by
//! [`shard_key`], so a build's memory does not grow with the archive; read back merged, one
//! term at a time, in that order, which keeps the terms of one index shard together
//! whatever the number of shards turns out to be (see [`super::search`]).
//!
//! Imports only std and the search's hash. Invariants: a term's sequence numbers come back
//! ascending (runs are written in the order posts were added, and each holds its posts'
//! numbers ascending); every distinct term is counted once ([`Postings::distinct`]).

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};

use super::search::fnv1a;

/// Postings held in memory before they are written out as a run: about 4 bytes each, plus
/// the terms; 4,000,000 keep a run under 40 MB.
pub const RUN_POSTINGS: usize = 4_000_000;

/// The order terms come back in: the low 12 bits of the term's hash, reversed, so that the
/// terms of a shard (the low `b` bits of the hash, `b` ≤ 12) follow each other for any `b`.
pub fn shard_key(term: &str) -> u32 {
    (fnv1a(term) & 0xfff).reverse_bits() >> 20
}

/// An open file already removed from its directory: nothing is left behind whatever
/// happens to the build.
pub fn unnamed_file() -> io::Result<File> {
    let dir = std::env::temp_dir();
    let mut n = 0u32;
    loop {
        let path = dir.join(format!("matterbak-site-{}-{n}.tmp", std::process::id()));
        match std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(file) => {
                std::fs::remove_file(&path)?;
                return Ok(file);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && n < 1000 => n += 1,
            Err(e) => return Err(e),
        }
    }
}

pub struct Postings {
    map: HashMap<Box<str>, Vec<u32>>,
    held: usize,
    /// Postings held before a run is written (tests make it small).
    pub run_postings: usize,
    runs: Vec<File>,
    terms: HashSet<Box<str>>,
}

impl Default for Postings {
    fn default() -> Self {
        Postings {
            map: HashMap::new(),
            held: 0,
            run_postings: RUN_POSTINGS,
            runs: Vec::new(),
            terms: HashSet::new(),
        }
    }
}

impl Postings {
    /// Records that post `seq` holds `term` (once per post: `seq` never decreases).
    pub fn add(&mut self, term: &str, seq: u32) {
        match self.map.get_mut(term) {
            Some(list) => {
                if list.last() != Some(&seq) {
                    list.push(seq);
                    self.held += 1;
                }
            }
            None => {
                if !self.terms.contains(term) {
                    self.terms.insert(term.into());
                }
                self.map.insert(term.into(), vec![seq]);
                self.held += 1;
            }
        }
    }

    /// Writes a run once enough postings are held; called between posts.
    pub fn maybe_spill(&mut self) -> io::Result<()> {
        if self.held < self.run_postings {
            return Ok(());
        }
        let mut file = BufWriter::with_capacity(1 << 16, unnamed_file()?);
        for (term, list) in self.sorted() {
            write_varint(&mut file, term.len() as u64)?;
            file.write_all(term.as_bytes())?;
            write_varint(&mut file, list.len() as u64)?;
            let mut prev = 0;
            for seq in list {
                write_varint(&mut file, u64::from(seq - prev))?;
                prev = seq;
            }
        }
        let mut file = file.into_inner().map_err(io::IntoInnerError::into_error)?;
        file.seek(SeekFrom::Start(0))?;
        self.runs.push(file);
        self.held = 0;
        Ok(())
    }

    /// The terms held in memory, in [`shard_key`] order (then by term), emptying the map.
    fn sorted(&mut self) -> Vec<(Box<str>, Vec<u32>)> {
        let mut entries: Vec<(u32, Box<str>, Vec<u32>)> = self
            .map
            .drain()
            .map(|(term, list)| (shard_key(&term), term, list))
            .collect();
        entries.sort_unstable_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
        self.map.shrink_to_fit();
        entries.into_iter().map(|(_, t, l)| (t, l)).collect()
    }

    /// How many distinct terms were added.
    pub fn distinct(&self) -> usize {
        self.terms.len()
    }

    /// Every term with all its posts (ascending), in [`shard_key`] order then by term.
    pub fn merged(mut self) -> Merged {
        let memory = self.sorted();
        self.terms = HashSet::new();
        let mut sources: Vec<Source> = self
            .runs
            .into_iter()
            .map(|f| Source::Run(BufReader::with_capacity(1 << 16, f)))
            .collect();
        sources.push(Source::Memory(memory.into_iter()));
        Merged {
            heads: sources.iter().map(|_| None).collect(),
            sources,
            started: false,
        }
    }
}

/// A term with its shard key and posts.
type Entry = (u32, Box<str>, Vec<u32>);

enum Source {
    Run(BufReader<File>),
    Memory(std::vec::IntoIter<(Box<str>, Vec<u32>)>),
}

impl Source {
    fn next(&mut self) -> io::Result<Option<Entry>> {
        let (term, list) = match self {
            Source::Memory(it) => match it.next() {
                Some(entry) => entry,
                None => return Ok(None),
            },
            Source::Run(r) => {
                let Some(len) = read_varint(r)? else {
                    return Ok(None);
                };
                let mut bytes = vec![0; len as usize];
                r.read_exact(&mut bytes)?;
                let term = String::from_utf8(bytes)
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
                let n = read_varint(r)?.ok_or(io::ErrorKind::UnexpectedEof)?;
                let mut list = Vec::with_capacity(n as usize);
                let mut prev = 0u32;
                for _ in 0..n {
                    let delta = read_varint(r)?.ok_or(io::ErrorKind::UnexpectedEof)?;
                    prev += delta as u32;
                    list.push(prev);
                }
                (term.into_boxed_str(), list)
            }
        };
        Ok(Some((shard_key(&term), term, list)))
    }
}

/// The runs and the memory's last terms merged: see [`Postings::merged`].
pub struct Merged {
    sources: Vec<Source>,
    heads: Vec<Option<Entry>>,
    started: bool,
}

impl Merged {
    /// The next term and its posts, or None at the end.
    pub fn next_term(&mut self) -> io::Result<Option<(String, Vec<u32>)>> {
        if !self.started {
            for (head, source) in self.heads.iter_mut().zip(&mut self.sources) {
                *head = source.next()?;
            }
            self.started = true;
        }
        let Some(min) = self
            .heads
            .iter()
            .flatten()
            .map(|(k, t, _)| (*k, t.clone()))
            .min()
        else {
            return Ok(None);
        };
        let mut all = Vec::new();
        // Sources in the order they were written: their posts ascend.
        for (head, source) in self.heads.iter_mut().zip(&mut self.sources) {
            if head
                .as_ref()
                .is_some_and(|(k, t, _)| (*k, t) == (min.0, &min.1))
            {
                let (_, _, list) = head.take().expect("checked");
                all.extend(list);
                *head = source.next()?;
            }
        }
        Ok(Some((min.1.into_string(), all)))
    }
}

fn write_varint(w: &mut impl Write, mut n: u64) -> io::Result<()> {
    let mut buf = [0u8; 10];
    let mut i = 0;
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            buf[i] = byte;
            i += 1;
            break;
        }
        buf[i] = byte | 0x80;
        i += 1;
    }
    w.write_all(&buf[..i])
}

/// A varint, or None at a clean end of the file.
fn read_varint(r: &mut impl Read) -> io::Result<Option<u64>> {
    let mut n = 0u64;
    let mut shift = 0;
    let mut byte = [0u8; 1];
    loop {
        if r.read(&mut byte)? == 0 {
            return if shift == 0 {
                Ok(None)
            } else {
                Err(io::ErrorKind::UnexpectedEof.into())
            };
        }
        n |= u64::from(byte[0] & 0x7f) << shift;
        if byte[0] & 0x80 == 0 {
            return Ok(Some(n));
        }
        shift += 7;
        if shift > 63 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "varint too long",
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs written every few postings come back merged as if all had stayed in memory:
    /// every term once, with all its posts ascending, in shard order.
    #[test]
    fn runs_merge_back_to_what_memory_held() {
        let words = [
            "alpha", "beta", "gamma", "delta", "in:x", "from:y", "ünï", "会議",
        ];
        let fill = |p: &mut Postings| {
            for seq in 0..500u32 {
                for (k, w) in words.iter().enumerate() {
                    if (seq as usize).is_multiple_of(k + 1) {
                        p.add(w, seq);
                        p.add(w, seq);
                    }
                }
                p.add(&format!("n{}", seq % 37), seq);
                p.maybe_spill().unwrap();
            }
        };
        let mut small = Postings {
            run_postings: 50,
            ..Postings::default()
        };
        fill(&mut small);
        assert!(small.runs.len() > 10, "{}", small.runs.len());
        let mut whole = Postings {
            run_postings: usize::MAX,
            ..Postings::default()
        };
        fill(&mut whole);
        assert_eq!(small.distinct(), words.len() + 37);
        assert_eq!(whole.distinct(), words.len() + 37);
        let drain = |p: Postings| {
            let mut m = p.merged();
            let mut out = Vec::new();
            while let Some(t) = m.next_term().unwrap() {
                out.push(t);
            }
            out
        };
        let (a, b) = (drain(small), drain(whole));
        assert_eq!(a, b);
        assert_eq!(a.len(), words.len() + 37);
        let alpha = a.iter().find(|(t, _)| t == "alpha").unwrap();
        assert_eq!(alpha.1, (0..500).collect::<Vec<u32>>());
        let keys: Vec<(u32, &str)> = a.iter().map(|(t, _)| (shard_key(t), t.as_str())).collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]), "{keys:?}");
    }

    #[test]
    fn a_shards_terms_are_together_for_every_shard_count() {
        let mut terms: Vec<String> = (0..3000).map(|i| format!("t{i}")).collect();
        terms.sort_by_key(|t| (shard_key(t), t.clone()));
        for bits in 1..=12 {
            let mask = (1u32 << bits) - 1;
            let mut seen = HashSet::new();
            let mut last = None;
            for t in &terms {
                let shard = fnv1a(t) & mask;
                if last != Some(shard) {
                    assert!(seen.insert(shard), "shard {shard} of {bits} bits split");
                    last = Some(shard);
                }
            }
        }
    }
}
