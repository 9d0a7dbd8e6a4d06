//! How a request travels: waiting its turn (a 429 pause, a free slot, the user's rate limit,
//! the server's pace), sending, retrying by the policy of `retry`, and taking in the body of a
//! success. One retry loop for bodies ([`Client::fetch_body`]) serves every kind of request:
//! JSON read whole and decoded, and downloads streamed into the caller's sink.
//!
//! May import: `config` (the token is a `Secret`). Never touches disk.

use std::future::Future;
use std::sync::atomic::Ordering;
use std::time::Duration;

use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap};
use reqwest::{Method, StatusCode, Url};
use tokio::sync::OwnedSemaphorePermit;

use super::endpoints::MAX_PER_PAGE;
use super::error::{error_from, looks_like_html, transport_reason};
use super::retry::{self, Attempt, Decision};
use super::{Client, MmError, Result, pace};
use crate::model::object::{Raw, parse_list};

/// Whether a request waits its turn (every request but the logout at the very end, which
/// must not be held up, even by a stop).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Pacing {
    Paced,
    Unpaced,
}

/// A name for errors: method and path with ids, never the query (which never holds secrets
/// either, but keeps messages short).
pub(super) fn endpoint_name(method: &str, segments: &[&str]) -> String {
    format!("{method} /api/v4/{}", segments.join("/"))
}

/// A request's turn to be sent: its in-flight slot (held until its body is read) and its
/// reservation in the pacer's mirror of the server's bucket.
pub struct Turn {
    permit: OwnedSemaphorePermit,
    ticket: Option<u64>,
}

/// Why the body of a success response could not be taken in.
pub(super) enum BodyError<E> {
    /// The connection broke mid-body: retried like a dropped connection.
    Cut(String),
    /// The whole body came but is not what the endpoint sends (JSON cut off mid-stream):
    /// retried, then [`MmError::Decode`].
    Bad(serde_json::Error),
    /// Ends the request at once, without a retry.
    Final(E),
}

/// How one kind of request takes in the body of a success response. Called once per
/// attempt, so it starts afresh each time (a download opens a new sink).
pub(super) trait ReadBody: Send {
    type Output;
    type Error: From<MmError>;
    fn read(
        &mut self,
        endpoint: &str,
        response: reqwest::Response,
    ) -> impl Future<Output = std::result::Result<Self::Output, BodyError<Self::Error>>> + Send;
}

/// A JSON body read whole and decoded by the function, with the response's headers.
pub(super) struct Json<F>(pub(super) F);

impl<T, F> ReadBody for Json<F>
where
    F: Fn(&[u8]) -> serde_json::Result<T> + Send,
{
    type Output = (T, HeaderMap);
    type Error = MmError;

    async fn read(
        &mut self,
        endpoint: &str,
        response: reqwest::Response,
    ) -> std::result::Result<(T, HeaderMap), BodyError<MmError>> {
        let headers = response.headers().clone();
        let body = response
            .bytes()
            .await
            .map_err(|e| BodyError::Cut(e.to_string()))?;
        match (self.0)(&body) {
            Ok(value) => Ok((value, headers)),
            Err(_) if looks_like_html(&body) => Err(BodyError::Final(MmError::NotMattermost {
                endpoint: endpoint.to_owned(),
                why: "got an HTML page instead of JSON: is the URL the server's address?".into(),
            })),
            Err(e) => Err(BodyError::Bad(e)),
        }
    }
}

/// What a JSON body of a GET is decoded into: one server object or a list of them, each
/// keeping its bytes ([`Raw`]), so one path ([`Client::get`]) serves both.
pub(super) trait FromBody: Sized {
    fn from_body(body: &[u8]) -> serde_json::Result<Self>;
}

impl<T: serde::de::DeserializeOwned> FromBody for Raw<T> {
    fn from_body(body: &[u8]) -> serde_json::Result<Self> {
        Raw::parse(serde_json::from_slice(body)?)
    }
}

impl<T: serde::de::DeserializeOwned> FromBody for Vec<Raw<T>> {
    fn from_body(body: &[u8]) -> serde_json::Result<Self> {
        parse_list(body)
    }
}

impl Client {
    /// Waits for `wait` unless a stop is requested first.
    pub(super) async fn unless_stopped<T>(
        &self,
        endpoint: &str,
        wait: impl Future<Output = T>,
    ) -> Result<T> {
        tokio::select! {
            biased;
            () = self.stop.stopped() => Err(MmError::Stopped { endpoint: endpoint.to_owned() }),
            value = wait => Ok(value),
        }
    }

    pub(super) async fn sleep(&self, endpoint: &str, delay: Duration) -> Result<()> {
        self.unless_stopped(endpoint, tokio::time::sleep(delay))
            .await
    }

    pub(super) fn url(&self, segments: &[&str], query: &[(&str, String)]) -> Url {
        let mut url = self.api.clone();
        {
            let mut path = url.path_segments_mut().expect("http URLs have paths");
            path.pop_if_empty();
            for segment in segments {
                path.push(segment);
            }
        }
        if !query.is_empty() {
            url.query_pairs_mut()
                .extend_pairs(query.iter().map(|(k, v)| (*k, v.as_str())));
        }
        url
    }

    /// Waits for this request's turn as every paced request does: a 429 pause, a free slot,
    /// the user's rate limit, the server's pace. Every wait ends on a stop request. A
    /// connection made outside this client (a WebSocket handshake) takes its turn here too,
    /// then reports the answer with [`Client::answered`] or [`Client::unanswered`].
    pub async fn wait_turn(&self, endpoint: &str) -> Result<Turn> {
        self.take_turn(Pacing::Paced, endpoint).await
    }

    async fn take_turn(&self, pacing: Pacing, endpoint: &str) -> Result<Turn> {
        let paced = pacing == Pacing::Paced;
        let until = self.paused_until.lock().ok().and_then(|p| *p);
        if let (Some(until), true) = (until, paced) {
            self.unless_stopped(endpoint, tokio::time::sleep_until(until))
                .await?;
        }
        let permit = self
            .unless_stopped(endpoint, self.in_flight.clone().acquire_owned())
            .await?
            .expect("the semaphore is never closed");
        let mut ticket = None;
        if paced {
            if let Some(limiter) = &self.limiter {
                self.unless_stopped(endpoint, limiter.until_ready()).await?;
            }
            let reserved = self
                .pacer
                .lock()
                .ok()
                .map(|mut p| p.reserve(std::time::Instant::now()));
            if let Some((t, wait)) = reserved {
                ticket = Some(t);
                if !wait.is_zero() {
                    self.sleep(endpoint, wait).await?;
                }
            }
        }
        Ok(Turn { permit, ticket })
    }

    /// The server answered the request of `turn`: its rate-limit headers (if any) correct the
    /// pacer's mirror; `refused` says the answer was a 429, which took no token.
    pub fn answered(&self, turn: &Turn, headers: &HeaderMap, refused: bool) {
        self.reached.store(true, Ordering::Relaxed);
        match pace::RateHeaders::from_headers(headers) {
            Some(rate) => {
                if let (Some(ticket), Ok(mut pacer)) = (turn.ticket, self.pacer.lock()) {
                    pacer.observe(ticket, std::time::Instant::now(), rate, refused);
                }
            }
            None => self.unanswered(turn),
        }
    }

    /// The request of `turn` got no answer the pacer can learn from: its reservation is
    /// dropped.
    pub fn unanswered(&self, turn: &Turn) {
        if let (Some(ticket), Ok(mut pacer)) = (turn.ticket, self.pacer.lock()) {
            pacer.forget(ticket);
        }
    }

    /// One attempt: waits its turn ([`Client::take_turn`]), sends, counts, and feeds the
    /// answer's rate headers to the pacer. `Pacing::Unpaced` (the logout at the very end)
    /// skips the waits.
    async fn attempt(
        &self,
        pacing: Pacing,
        method: &Method,
        url: &Url,
        body: Option<&Vec<u8>>,
        auth: bool,
        endpoint: &str,
    ) -> Result<(OwnedSemaphorePermit, reqwest::Result<reqwest::Response>)> {
        let turn = self.take_turn(pacing, endpoint).await?;
        self.requests.fetch_add(1, Ordering::Relaxed);
        let mut request = self.http.request(method.clone(), url.clone());
        if auth {
            request = request.header(AUTHORIZATION, format!("Bearer {}", self.token.expose()));
        }
        if let Some(body) = body {
            request = request
                .header(CONTENT_TYPE, "application/json")
                .body(body.clone());
        }
        // A request on the wire ends with a stop too: a stalling server must not hold a
        // stop for the read timeout. The logout at the very end (unpaced) is let finish.
        let sent = match pacing {
            Pacing::Paced => match self.unless_stopped(endpoint, request.send()).await {
                Ok(sent) => sent,
                Err(stopped) => {
                    self.unanswered(&turn);
                    return Err(stopped);
                }
            },
            Pacing::Unpaced => request.send().await,
        };
        let response = match sent {
            Ok(response) => response,
            Err(e) => {
                self.unanswered(&turn);
                return Ok((turn.permit, Err(e)));
            }
        };
        let refused = response.status() == StatusCode::TOO_MANY_REQUESTS;
        self.answered(&turn, response.headers(), refused);
        if let Some(version) = response
            .headers()
            .get("x-version-id")
            .and_then(|v| v.to_str().ok())
            && let Ok(mut slot) = self.server_version.lock()
            && slot.is_none()
        {
            *slot = Some(version.to_owned());
        }
        Ok((turn.permit, Ok(response)))
    }
    /// Counts a failed attempt; too many in a row means the server is down.
    fn record_failure(&self, endpoint: &str, last: &str) -> Result<()> {
        let failures = self.consecutive_failures.fetch_add(1, Ordering::Relaxed) + 1;
        if failures >= self.max_consecutive_failures {
            return Err(MmError::ServerDown {
                endpoint: endpoint.to_owned(),
                failures,
                last: last.to_owned(),
            });
        }
        Ok(())
    }

    fn record_success(&self) {
        self.consecutive_failures.store(0, Ordering::Relaxed);
    }

    /// A 429 pauses every request of the client for the server's delay.
    fn pause_all(&self, delay: Duration) {
        if let Ok(mut until) = self.paused_until.lock() {
            let new = tokio::time::Instant::now() + delay;
            if until.is_none_or(|u| u < new) {
                *until = Some(new);
            }
        }
    }

    /// Sends with retries; returns the first non-retryable response (success or not) with
    /// the in-flight permit, to be held until its body is read.
    pub(super) async fn send_as(
        &self,
        pacing: Pacing,
        method: Method,
        url: Url,
        body: Option<Vec<u8>>,
        auth: bool,
        endpoint: &str,
    ) -> Result<(reqwest::Response, OwnedSemaphorePermit)> {
        // Failures only: 429s are counted as time waited, not as attempts.
        let mut attempt = 0;
        let mut limited_wait = Duration::ZERO;
        loop {
            let (permit, result) = self
                .attempt(pacing, &method, &url, body.as_ref(), auth, endpoint)
                .await?;
            let response = match result {
                Ok(response) => response,
                Err(source) => {
                    attempt += 1;
                    let last = transport_reason(&source);
                    self.record_failure(endpoint, &last)?;
                    if self.decide(attempt, &Attempt::Transport) == Decision::GiveUp {
                        return Err(MmError::Transport {
                            endpoint: endpoint.to_owned(),
                            error: source,
                        });
                    }
                    drop(permit);
                    self.pause(attempt, &Attempt::Transport, endpoint, &last)
                        .await?;
                    continue;
                }
            };
            let status = response.status().as_u16();
            let retry_after = retry::delay_hint(status, response.headers());
            if status == 429 {
                // The server is up: not a failure, and the failure streak ends.
                self.record_success();
                let what = Attempt::Limited {
                    retry_after,
                    waited: limited_wait,
                };
                let Decision::RetryAfter(delay) = self.decide(attempt, &what) else {
                    return Ok((response, permit));
                };
                if pace::RateHeaders::from_headers(response.headers()).is_none() {
                    // No rate headers for the pacer to learn from: everyone waits.
                    self.pause_all(delay);
                }
                drop(permit);
                limited_wait += delay;
                self.sleep(endpoint, delay).await?;
                continue;
            }
            if response.status().is_success() || !retry::is_retryable_status(status) {
                self.record_success();
                return Ok((response, permit));
            }
            attempt += 1;
            let what = Attempt::Status {
                status,
                retry_after,
            };
            let last = format!("HTTP {status}");
            self.record_failure(endpoint, &last)?;
            if self.decide(attempt, &what) == Decision::GiveUp {
                return Ok((response, permit));
            }
            drop(permit);
            self.pause(attempt, &what, endpoint, &last).await?;
        }
    }

    fn decide(&self, attempt: u32, what: &Attempt) -> Decision {
        let first_contact;
        let policy = if *what == Attempt::Transport && !self.reached.load(Ordering::Relaxed) {
            first_contact = self.retry.first_contact();
            &first_contact
        } else {
            &self.retry
        };
        retry::decide(policy, attempt, what, rand::random::<f64>())
    }

    async fn pause(&self, attempt: u32, what: &Attempt, endpoint: &str, last: &str) -> Result<()> {
        match self.decide(attempt, what) {
            Decision::RetryAfter(delay) => self.sleep(endpoint, delay).await,
            Decision::GiveUp => Err(MmError::GaveUp {
                endpoint: endpoint.to_owned(),
                attempts: attempt,
                last: last.to_owned(),
            }),
        }
    }

    /// Sends with retries ([`Client::send_as`]) and takes in a success's body with `reader`;
    /// a body cut off or not decodable is fetched again, by the same policy and attempt
    /// count as failed requests. The in-flight slot is held until the body is in, and freed
    /// while waiting to retry.
    pub(super) async fn fetch_body<R: ReadBody>(
        &self,
        method: Method,
        url: Url,
        body: Option<Vec<u8>>,
        endpoint: &str,
        mut reader: R,
    ) -> std::result::Result<R::Output, R::Error> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let (response, permit) = self
                .send_as(
                    Pacing::Paced,
                    method.clone(),
                    url.clone(),
                    body.clone(),
                    true,
                    endpoint,
                )
                .await?;
            if !response.status().is_success() {
                return Err(error_from(endpoint, response).await.into());
            }
            let (what, last) = match self
                .unless_stopped(endpoint, reader.read(endpoint, response))
                .await?
            {
                Ok(value) => return Ok(value),
                Err(BodyError::Final(e)) => return Err(e),
                Err(BodyError::Cut(last)) => (Attempt::Transport, last),
                Err(BodyError::Bad(source)) => {
                    if self.decide(attempt, &Attempt::BadBody) == Decision::GiveUp {
                        let endpoint = endpoint.to_owned();
                        return Err(MmError::Decode { endpoint, source }.into());
                    }
                    (Attempt::BadBody, source.to_string())
                }
            };
            drop(permit);
            self.pause(attempt, &what, endpoint, &last).await?;
        }
    }

    /// GET + decode, with the response's headers.
    pub(super) async fn get_json<T>(
        &self,
        segments: &[&str],
        query: &[(&str, String)],
        decode: impl Fn(&[u8]) -> serde_json::Result<T> + Send,
    ) -> Result<(T, HeaderMap)> {
        let endpoint = endpoint_name("GET", segments);
        let url = self.url(segments, query);
        self.fetch_body(Method::GET, url, None, &endpoint, Json(decode))
            .await
    }

    /// POST of a JSON body + decode.
    pub(super) async fn post_json<T>(
        &self,
        segments: &[&str],
        query: &[(&str, String)],
        body: &impl serde::Serialize,
        decode: impl Fn(&[u8]) -> serde_json::Result<T> + Send,
    ) -> Result<T> {
        let endpoint = endpoint_name("POST", segments);
        let body = serde_json::to_vec(body).expect("ids serialize");
        let url = self.url(segments, query);
        let (value, _) = self
            .fetch_body(Method::POST, url, Some(body), &endpoint, Json(decode))
            .await?;
        Ok(value)
    }

    /// GET + decode into one server object or a list of them, each keeping its bytes.
    pub(super) async fn get<V: FromBody>(
        &self,
        segments: &[&str],
        query: &[(&str, String)],
    ) -> Result<V> {
        Ok(self.get_json(segments, query, V::from_body).await?.0)
    }

    /// Pages through a list endpoint with `per_page=200` until a short page.
    pub(super) async fn get_all_pages<T: serde::de::DeserializeOwned>(
        &self,
        segments: &[&str],
        extra: &[(&str, String)],
    ) -> Result<Vec<Raw<T>>> {
        let mut all = Vec::new();
        for page in 0u32.. {
            let mut query = vec![
                ("page", page.to_string()),
                ("per_page", MAX_PER_PAGE.to_string()),
            ];
            query.extend(extra.iter().cloned());
            let items: Vec<Raw<T>> = self.get(segments, &query).await?;
            let n = items.len();
            all.extend(items);
            if n < MAX_PER_PAGE {
                break;
            }
        }
        Ok(all)
    }
}
