//! The single writer: one thread owns the read-write connection and runs jobs sent to it, so
//! async tasks never hold a SQLite connection across an `.await` and writes never interleave.

use std::thread::JoinHandle;

use tokio::sync::{mpsc, oneshot};

use super::{Catalog, CatalogError, Result};

type Job = Box<dyn FnOnce(&mut Catalog) + Send>;

/// Cheap to clone; every clone feeds the same thread.
#[derive(Clone)]
pub struct CatalogWriter {
    jobs: mpsc::Sender<Job>,
}

impl CatalogWriter {
    /// Moves the catalog onto its own thread. The thread ends (closing the connection) when
    /// every `CatalogWriter` clone is dropped; join the handle to be sure it has.
    pub fn spawn(mut catalog: Catalog) -> (CatalogWriter, JoinHandle<()>) {
        // A small bound gives back-pressure: fetchers wait rather than queue unbounded pages.
        let (jobs, mut queue) = mpsc::channel::<Job>(16);
        let handle = std::thread::Builder::new()
            .name("catalog-writer".into())
            .spawn(move || {
                while let Some(job) = queue.blocking_recv() {
                    job(&mut catalog);
                }
            })
            .expect("spawning the catalog writer thread");
        (CatalogWriter { jobs }, handle)
    }

    /// Runs `f` on the writer thread and returns its result.
    pub async fn call<R, F>(&self, f: F) -> Result<R>
    where
        R: Send + 'static,
        F: FnOnce(&mut Catalog) -> Result<R> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job: Job = Box::new(move |catalog| {
            let _ = reply.send(f(catalog));
        });
        self.jobs
            .send(job)
            .await
            .map_err(|_| CatalogError::WriterGone)?;
        answer.await.map_err(|_| CatalogError::WriterGone)?
    }
}
