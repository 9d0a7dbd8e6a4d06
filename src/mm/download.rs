//! Binaries (attachments, pictures, icons, emoji images) streamed into the caller's
//! [`ByteSink`] chunk by chunk, never held whole in memory. `mm` never touches disk: the
//! caller's sink does (`sync` hands in a blob writer), and its failure comes back as the
//! caller's own error type, [`DownloadError::Sink`].
//!
//! May import: nothing of the crate besides `mm` itself.

use reqwest::Method;
use reqwest::header::CONTENT_TYPE;

use super::transport::{BodyError, ReadBody, endpoint_name};
use super::{Client, MmError};

/// Where a download's bytes go, in order, as they arrive.
pub trait ByteSink: Send {
    type Error;
    fn write(&mut self, chunk: &[u8]) -> Result<(), Self::Error>;
}

/// A binary fetched whole into its sink, with the type the server gave it.
pub struct Downloaded<S> {
    pub sink: S,
    /// The `Content-Type` header; `application/octet-stream` without one.
    pub content_type: String,
}

/// Why a download failed: the server (one failed item, or the end of a run, as
/// [`MmError::is_fatal`] says), or the sink (the caller decides).
#[derive(Debug, thiserror::Error)]
pub enum DownloadError<E> {
    #[error(transparent)]
    Server(#[from] MmError),
    #[error(transparent)]
    Sink(E),
}

/// Takes in a body by writing its chunks into a new sink per attempt: a sink of a failed
/// attempt is dropped, never reused, so no partial bytes reach the next one.
struct IntoSink<F>(F);

impl<S, F> ReadBody for IntoSink<F>
where
    S: ByteSink,
    F: FnMut() -> Result<S, S::Error> + Send,
{
    type Output = Downloaded<S>;
    type Error = DownloadError<S::Error>;

    async fn read(
        &mut self,
        _endpoint: &str,
        mut response: reqwest::Response,
    ) -> Result<Downloaded<S>, BodyError<DownloadError<S::Error>>> {
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("application/octet-stream")
            .to_owned();
        let sink_failed = |e| BodyError::Final(DownloadError::Sink(e));
        let mut sink = (self.0)().map_err(sink_failed)?;
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => sink.write(&chunk).map_err(sink_failed)?,
                Ok(None) => return Ok(Downloaded { sink, content_type }),
                Err(e) => return Err(BodyError::Cut(e.to_string())),
            }
        }
    }
}

impl Client {
    /// `GET` of a binary into a sink made by `new_sink`, one per attempt: retryable failures
    /// (a connection cut mid-body included) start over with a new sink. The in-flight slot
    /// is free again when this returns, while the caller makes the bytes durable.
    pub async fn download<S, F>(
        &self,
        segments: &[&str],
        new_sink: F,
    ) -> Result<Downloaded<S>, DownloadError<S::Error>>
    where
        S: ByteSink,
        F: FnMut() -> Result<S, S::Error> + Send,
    {
        let endpoint = endpoint_name("GET", segments);
        let url = self.url(segments, &[]);
        self.fetch_body(Method::GET, url, None, &endpoint, IntoSink(new_sink))
            .await
    }
}
