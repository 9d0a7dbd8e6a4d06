//! Attachment downloads for the whole run, fed by the channel tasks as pages commit.
//!
//! A channel's walk is a chain of requests, one page after another; its files are not. Queuing
//! each page's files as soon as the page is committed, into one download stage shared by all
//! channels, keeps every request slot busy: while a walk waits for its next page, files of
//! pages already stored are downloading (a one-channel workspace would otherwise use one slot
//! of `--concurrency` until its walk ends).
//!
//! Also the one way a binary enters the archive ([`fetch_and_store`], [`download_blob`]):
//! the client streams it into a blob writer, the blob is committed, then its row.
//!
//! May import what `sync` may.

use std::collections::{HashSet, VecDeque};
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;
use tokio::sync::mpsc;

use super::{SyncContext, SyncError, Tally, record_failure};
use crate::blobs::{BlobError, BlobStore, BlobWriter};
use crate::catalog::{Catalog, CatalogWriter, PendingFile, Result as CatalogResult};
use crate::mm::{ByteSink, Client, DownloadError, Downloaded, MmError};
use crate::model::{BlobRef, now_ms};
use crate::progress::{Observer, Progress};

/// Files queued but not yet downloading. Channel tasks wait when it is full (downloads are
/// then the bottleneck anyway), which bounds memory on first syncs with many attachments.
const QUEUE: usize = 1024;
/// Failed file ids a queue still recognises: enough for a run's closing sweeps to find the
/// files its pages queued and failed without fetching them twice, while a follow session
/// keeps a bounded set for days.
const REMEMBER_FAILED: usize = 16_384;

/// The file ids a download stage has seen: every id queued or downloading, and the last
/// `capacity` that failed. Bounded by `QUEUE + 2 × concurrency + capacity` ids whatever the
/// length of the session.
///
/// A stored file is forgotten at once: its row has its blob, so neither a closing sweep
/// (`Catalog::pending_files`: files without one) nor a later copy of its post (whose file
/// info upsert returns it only while it has none) can queue it again. Remembering the stored
/// ones too made a follower's memory grow with the files of its first 16,384 posts with an
/// attachment (about 2 MB: two copies of each id), so it was not flat over a long session.
#[derive(Debug)]
pub(crate) struct SeenFiles {
    /// Queued or downloading.
    pending: HashSet<String>,
    /// Failed, oldest first, mirrored in `failed_set` for lookups.
    failed: VecDeque<String>,
    failed_set: HashSet<String>,
    capacity: usize,
}

impl SeenFiles {
    pub(crate) fn new(capacity: usize) -> SeenFiles {
        SeenFiles {
            pending: HashSet::new(),
            failed: VecDeque::new(),
            failed_set: HashSet::new(),
            capacity,
        }
    }

    /// True when `id` is new: neither pending nor among the remembered failed ones.
    pub(crate) fn insert(&mut self, id: &str) -> bool {
        if self.pending.contains(id) || self.failed_set.contains(id) {
            return false;
        }
        self.pending.insert(id.to_owned());
        true
    }

    /// `id`'s download ended: forgotten when its blob is `stored`, else remembered among the
    /// failed, the oldest failed one forgotten beyond the capacity.
    pub(crate) fn finish(&mut self, id: &str, stored: bool) {
        let Some(id) = self.pending.take(id) else {
            return;
        };
        if stored || self.capacity == 0 {
            return;
        }
        if self.failed.len() == self.capacity
            && let Some(oldest) = self.failed.pop_front()
        {
            self.failed_set.remove(&oldest);
        }
        self.failed_set.insert(id.clone());
        self.failed.push_back(id);
    }

    /// Ids held: pending plus remembered failed ones.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.pending.len() + self.failed.len()
    }
}

/// Where channel tasks put files to download, each once per run: a channel's closing sweep
/// re-finds files its pages already queued, and those must not take queue space (a full
/// queue holds the channel tasks back). A closed queue (the run is ending on an error) drops
/// what is sent: every file without bytes is found again by the next sync. What it
/// remembers is bounded ([`SeenFiles`]): a follow session's queue lives for days.
#[derive(Clone)]
pub(crate) struct FileQueue<'a> {
    tx: mpsc::Sender<PendingFile>,
    queued: Arc<Mutex<SeenFiles>>,
    observer: &'a dyn Observer,
}

impl FileQueue<'_> {
    pub(crate) async fn push(&self, files: impl IntoIterator<Item = PendingFile>) {
        for file in files {
            let new = match self.queued.lock() {
                Ok(mut queued) => queued.insert(&file.id),
                Err(_) => true,
            };
            if !new {
                continue;
            }
            self.observer.progress(Progress::FilesQueued(1));
            if self.tx.send(file).await.is_err() {
                return;
            }
        }
    }
}

/// A queue and the stream that downloads what arrives on it, `concurrency` at a time. The
/// stream ends when every `FileQueue` clone is dropped and the downloads are done.
pub(crate) fn download_stage<'a>(
    ctx: SyncContext<'a>,
) -> (FileQueue<'a>, BoxStream<'a, Stored<PendingFile>>) {
    let (tx, rx) = mpsc::channel(QUEUE);
    let queued = Arc::new(Mutex::new(SeenFiles::new(REMEMBER_FAILED)));
    let seen = Arc::clone(&queued);
    let writer = ctx.writer;
    let arrivals = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|file| (file, rx))
    })
    // Looked at concurrently: one at a time, each download would wait for the writer's
    // current transaction before it could start.
    .map(move |file: PendingFile| {
        let seen = Arc::clone(&seen);
        async move { not_stored_yet(writer, &seen, file).await }
    })
    .buffer_unordered(2 * ctx.concurrency())
    .filter_map(std::future::ready)
    .map(|file: PendingFile| {
        let segments = vec!["files".to_owned(), file.id.to_string()];
        (file, segments)
    });
    let finished = queued.clone();
    let downloads = fetch_and_store(ctx, arrivals, |c, file, blob, _| {
        c.set_file_blob(&file.id, blob, now_ms())
    })
    .inspect(move |stored: &Stored<PendingFile>| {
        if let Ok(mut seen) = finished.lock() {
            seen.finish(&stored.key.id, stored.result.is_ok());
        }
    })
    .boxed();
    let queue = FileQueue {
        tx,
        queued,
        observer: ctx.observer,
    };
    (queue, downloads)
}

/// `file`, unless the catalog holds its bytes already. A stored file is forgotten by the
/// queue at once (see [`SeenFiles`]), and a caller that read the catalog's files without
/// bytes just before that download committed (a channel's closing sweep, a page read
/// again) queues it again: without this look it was downloaded and counted twice.
async fn not_stored_yet(
    writer: &CatalogWriter,
    queued: &Mutex<SeenFiles>,
    file: PendingFile,
) -> Option<PendingFile> {
    let id = file.id.clone();
    match writer.call(move |c| c.file_blob_state(&id)).await {
        Ok(Some((true, _))) => {
            if let Ok(mut seen) = queued.lock() {
                seen.finish(&file.id, true);
            }
            None
        }
        // Not stored, or the look failed: the download decides (and reports a failure).
        _ => Some(file),
    }
}

/// Waits for the download stage to end, counting what came and recording what did not: the
/// file row keeps the error and the next sync retries it.
pub(crate) async fn drain(
    mut downloads: BoxStream<'_, Stored<PendingFile>>,
    ctx: SyncContext<'_>,
) -> Result<Tally, SyncError> {
    let SyncContext {
        writer, observer, ..
    } = ctx;
    let mut tally = Tally::default();
    while let Some(Stored { key: file, result }) = downloads.next().await {
        match result {
            Ok(bytes) => {
                tally.files_fetched += 1;
                tally.bytes_fetched += bytes;
                observer.progress(Progress::FileFetched { bytes });
            }
            // Not a failure of the file: the run is stopping.
            Err(SyncError::Server(e @ MmError::Stopped { .. })) => return Err(e.into()),
            // The archive's disk failed: the file keeps why, and the run ends (every later
            // file would fail too).
            Err(SyncError::Blob(e)) => {
                let (id, note) = (file.id.clone(), e.to_string());
                writer.call(move |c| c.set_file_error(&id, &note)).await?;
                return Err(e.into());
            }
            Err(SyncError::Server(e)) => {
                let (id, note) = (file.id.clone(), e.to_string());
                writer.call(move |c| c.set_file_error(&id, &note)).await?;
                let item = format!("file {} ({})", file.id, file.name);
                record_failure(observer, &mut tally.failures, item, e)?;
            }
            Err(fatal) => return Err(fatal),
        }
    }
    Ok(tally)
}

/// A blob writer takes a download's bytes as they arrive, hashing them on the way.
impl ByteSink for BlobWriter {
    type Error = BlobError;

    fn write(&mut self, chunk: &[u8]) -> Result<(), BlobError> {
        self.write_all(chunk).map_err(|source| BlobError::Io {
            action: "write",
            path: self.temp_path().to_owned(),
            source,
        })
    }
}

/// Downloads a binary into the blob store and makes it durable: the committed blob and the
/// server's content type. A failed attempt's partial temp file is discarded.
pub(crate) async fn download_blob(
    client: &Client,
    blobs: &BlobStore,
    segments: &[&str],
) -> Result<(BlobRef, String), DownloadError<BlobError>> {
    let Downloaded { sink, content_type } = client.download(segments, || blobs.writer()).await?;
    // fsync of file and directory: off the async workers, which a blocking disk flush would
    // otherwise stall for every task.
    let committed = tokio::task::spawn_blocking(move || sink.commit())
        .await
        .map_err(|e| BlobError::Io {
            action: "commit",
            path: PathBuf::from("tmp"),
            source: std::io::Error::other(e),
        })
        .and_then(|committed| committed)
        .map_err(DownloadError::Sink)?;
    Ok((committed, content_type))
}

/// A binary fetched and stored: the caller's key, and its size in bytes or why not.
pub(crate) struct Stored<K> {
    pub(crate) key: K,
    pub(crate) result: Result<u64, SyncError>,
}

/// Stores a fetched binary's row once its blob is durable.
pub(crate) type StoreFn<K> = fn(&mut Catalog, &K, &BlobRef, &str) -> CatalogResult<()>;

/// Downloads binaries (`(key, path segments)`) into the blob store and commits each one's row
/// with `store`, yielding `(key, bytes)` or the failure as each completes. Up to
/// `2 × concurrency` items are under way: the client caps requests in flight at
/// `concurrency`, and the others are ready to take a slot the moment one frees (while a
/// finished download flushes its blob and waits for the writer). Download and commit happen
/// in the same task, blob first (the crash-safety order). A download error is
/// `SyncError::Server` (one failed item); a catalog error is fatal to the run. Items not
/// started before a stop request are skipped.
pub(crate) fn fetch_and_store<'a, K: Clone + Send + Sync + 'static>(
    ctx: SyncContext<'a>,
    items: impl futures_util::Stream<Item = (K, Vec<String>)> + Send + 'a,
    store: StoreFn<K>,
) -> BoxStream<'a, Stored<K>> {
    let SyncContext {
        client,
        writer,
        blobs,
        stop,
        ..
    } = ctx;
    items
        .map(move |(key, segments)| -> BoxFuture<'a, Option<Stored<K>>> {
            Box::pin(async move {
                if stop.requested() {
                    return None;
                }
                let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
                let result = match download_blob(client, blobs, &segments).await {
                    Ok((blob, content_type)) => {
                        let (k, size) = (key.clone(), blob.size);
                        writer
                            .call(move |c| store(c, &k, &blob, &content_type))
                            .await
                            .map(|()| size)
                            .map_err(SyncError::from)
                    }
                    Err(e) => Err(e.into()),
                };
                Some(Stored { key, result })
            })
        })
        .buffer_unordered(2 * ctx.concurrency())
        .filter_map(std::future::ready)
        .boxed()
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::SeenFiles;

    /// A file the catalog holds the bytes of, queued again (as a channel's closing sweep
    /// does when it read the catalog just before that file's download committed), is not
    /// handed to the downloads, and the queue forgets it; a file without bytes, or one the
    /// catalog does not know, is.
    #[tokio::test]
    async fn a_file_queued_again_after_it_was_stored_is_not_fetched_again() {
        use crate::catalog::{Access, Catalog, CatalogWriter, PendingFile};
        use crate::model::object::{FileInfo, Raw};
        use crate::model::{BlobId, BlobRef};

        let dir = tempfile::tempdir().unwrap();
        let mut catalog =
            Catalog::open(&dir.path().join("catalog.sqlite"), Access::ReadWrite).unwrap();
        for id in ["stored", "missing"] {
            let json = format!(
                r#"{{"id":"{id}","post_id":"p1","channel_id":"c1","name":"{id}.txt","size":3,"create_at":1}}"#
            );
            let value = serde_json::value::RawValue::from_string(json).unwrap();
            let info: Raw<FileInfo> = Raw::parse(value).unwrap();
            catalog.upsert_file_info(&info).unwrap();
        }
        let blob = BlobRef {
            id: BlobId::parse(blake3::hash(b"abc").to_hex().as_str()).unwrap(),
            size: 3,
        };
        catalog.set_file_blob(&"stored".into(), &blob, 1).unwrap();
        let (writer, _thread) = CatalogWriter::spawn(catalog);

        let queued = Mutex::new(SeenFiles::new(16));
        let file = |id: &str| PendingFile {
            id: id.into(),
            channel_id: "c1".into(),
            name: format!("{id}.txt"),
            size: 3,
        };
        for id in ["stored", "missing", "unknown"] {
            assert!(queued.lock().unwrap().insert(id));
        }
        assert!(
            super::not_stored_yet(&writer, &queued, file("stored"))
                .await
                .is_none(),
            "a stored file was handed to the downloads"
        );
        for id in ["missing", "unknown"] {
            let passed = super::not_stored_yet(&writer, &queued, file(id)).await;
            assert_eq!(passed.map(|f| f.id.to_string()), Some(id.to_owned()));
        }
        // Forgotten as stored: queued again later, it is looked at again (not refused as
        // pending); the two that passed are still pending.
        let mut seen = queued.lock().unwrap();
        assert!(seen.insert("stored"));
        assert!(!seen.insert("missing"));
        assert!(!seen.insert("unknown"));
    }

    #[test]
    fn seen_files_stay_bounded_over_a_long_session_and_never_repeat_a_pending_file() {
        let mut seen = SeenFiles::new(3);
        // A session queuing a file with every post: a million files, each failing.
        for n in 0..1_000_000 {
            let id = format!("f{n}");
            assert!(seen.insert(&id));
            assert!(!seen.insert(&id), "queued twice: {id}");
            seen.finish(&id, false);
            assert!(seen.len() <= 3, "{} ids held after {n}", seen.len());
        }
        // The last three failed are still recognised (a closing sweep finds them again);
        // older ones are forgotten and may be queued again.
        assert!(!seen.insert("f999999"));
        assert!(!seen.insert("f999997"));
        assert!(seen.insert("f999996"));
        // Pending ids count beside the failed ones, and are never forgotten.
        assert!(seen.insert("a"));
        assert!(seen.insert("b"));
        assert_eq!(seen.len(), 3 + 3);
        for n in 0..10 {
            let id = format!("g{n}");
            seen.insert(&id);
            seen.finish(&id, false);
        }
        assert!(!seen.insert("a"));
        assert!(!seen.insert("b"));
        // Finishing an id that was never queued changes nothing.
        seen.finish("never", false);
        assert_eq!(seen.len(), 3 + 3);
    }

    /// A stored file has its blob in the catalog, which is what keeps it from being queued
    /// again: the set holds nothing for it, so a session storing a file with every post
    /// holds no more ids after a million than after ten.
    #[test]
    fn stored_files_are_forgotten_at_once() {
        let mut seen = SeenFiles::new(16_384);
        for n in 0..1_000_000 {
            let id = format!("f{n}");
            assert!(seen.insert(&id));
            assert!(!seen.insert(&id), "queued twice while pending: {id}");
            seen.finish(&id, true);
            assert_eq!(seen.len(), 0, "ids held after {n}");
        }
        // A failure among them is remembered; the stored ones around it are not.
        seen.insert("bad");
        seen.finish("bad", false);
        assert!(!seen.insert("bad"));
        assert_eq!(seen.len(), 1);
    }
}
