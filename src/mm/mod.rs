//! The Mattermost REST v4 client: the only code that does HTTP. Authentication, endpoints
//! (paged where the server pages), the client-side rate limit and the retry policy.
//!
//! Every attempt, retries included, waits on the user's rate limit (`--rate-limit`, an upper
//! bound) and then on the [`pace::Pacer`], which follows the server's own limit as its
//! `X-Ratelimit-*` headers describe it. A 429 slows the client down; it is not a failure
//! (see `retry`). A stop request ends every such wait at once ([`MmError::Stopped`]).
//! Secrets are sent only in the `Authorization` header and never appear in URLs, errors or
//! logs.

pub mod pace;
pub mod retry;
mod stop;
pub mod wire;

pub use stop::StopSignal;

use std::collections::HashMap;
use std::io::Write;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap};
use reqwest::{Method, StatusCode, Url};
use serde::Deserialize;
use serde_json::value::RawValue;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::blobs::{BlobError, BlobStore};
use crate::config::{Auth, Credentials, Secret};
use crate::model::BlobRef;
use retry::{Attempt, Decision, RetryPolicy};
use wire::Raw;

/// The page size the server allows at most (§0); larger requests are clamped silently.
pub const MAX_PER_PAGE: usize = 200;
/// Ids per `POST /users/ids` body: far below the 300 kB body cap.
const USER_BATCH: usize = 1000;
/// Ids the server reads of a `POST /users/group_channels` body; it drops the rest without a
/// word (`MaxGroupChannelsForProfiles`, §14.1).
pub const GROUP_CHANNEL_BATCH: usize = 50;

#[derive(Debug, thiserror::Error)]
pub enum MmError {
    #[error(
        "{endpoint}: the server refused the credentials (HTTP 401{}); check the password or token in the credentials file (an MMAUTHTOKEN expires at logout)",
        id_suffix(.id)
    )]
    Unauthorized {
        endpoint: String,
        id: Option<String>,
    },
    #[error("{endpoint}: this account needs a multi-factor code: pass --mfa-token CODE")]
    MfaRequired { endpoint: String },
    #[error("{endpoint}: HTTP {status}{}{}", id_suffix(.id), message_suffix(.message))]
    Status {
        endpoint: String,
        status: u16,
        id: Option<String>,
        message: Option<String>,
    },
    /// Not a `#[source]`: reqwest's chain repeats the URL and the cause that
    /// [`describe_transport`] already says in the user's words.
    #[error("{endpoint}: cannot reach the server: {}", describe_transport(.error))]
    Transport {
        endpoint: String,
        error: reqwest::Error,
    },
    #[error("{endpoint}: the response is not what a Mattermost server sends: {why}")]
    NotMattermost { endpoint: String, why: String },
    #[error("{endpoint}: cannot decode the response")]
    Decode {
        endpoint: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("{endpoint}: gave up after {attempts} attempts; last failure: {last}")]
    GaveUp {
        endpoint: String,
        attempts: u32,
        last: String,
    },
    #[error(
        "the server looks down: {failures} requests in a row failed; last: {endpoint}: {last}. Nothing archived is lost; run sync again later"
    )]
    ServerDown {
        endpoint: String,
        failures: u32,
        last: String,
    },
    #[error("TLS setup: {0}")]
    Tls(String),
    /// A stop was requested while the request waited for its turn; it was not sent.
    #[error("{endpoint}: not sent: stopping on request")]
    Stopped { endpoint: String },
    #[error(transparent)]
    Blob(#[from] BlobError),
}

/// Says which of the usual reasons kept a request from reaching the server, naming the host,
/// because "error sending request" alone does not tell a typo from a firewall. reqwest does
/// not type these cases, so they are read off the error's source chain.
fn describe_transport(error: &reqwest::Error) -> String {
    let host = error
        .url()
        .map(|url| {
            let host = url.host_str().unwrap_or("?");
            match url.port_or_known_default() {
                Some(port) => format!("{host}:{port}"),
                None => host.to_owned(),
            }
        })
        .unwrap_or_else(|| "the server".into());
    let https = error.url().is_some_and(|u| u.scheme() == "https");
    let mut chain: Vec<String> = Vec::new();
    let mut io_kinds = Vec::new();
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = cause {
        chain.push(e.to_string().to_lowercase());
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            io_kinds.push(io.kind());
        }
        cause = e.source();
    }
    let says = |needle: &str| chain.iter().any(|m| m.contains(needle));
    use std::io::ErrorKind;
    if says("dns error") || says("failed to lookup address") {
        let name = host.rsplit_once(':').map_or(host.as_str(), |(h, _)| h);
        format!("cannot resolve host name {name} (check the url in the credentials file)")
    } else if io_kinds.contains(&ErrorKind::ConnectionRefused) || says("connection refused") {
        format!("connection refused by {host} (is the server running, and is the port right?)")
    } else if error.is_timeout() || io_kinds.contains(&ErrorKind::TimedOut) {
        format!("no answer from {host} in time")
    } else if https
        && error.is_connect()
        && (io_kinds.contains(&ErrorKind::InvalidData)
            || says("tls")
            || says("certificate")
            || says("handshake")
            || says("corrupt message"))
    {
        format!(
            "TLS handshake with {host} failed (a server without https, or a certificate that is not trusted; for a plain-HTTP server use http://)"
        )
    } else {
        // The innermost cause is the one worth reading (reqwest's outer layers repeat the URL).
        let root = chain.last().map(String::as_str).unwrap_or("unknown cause");
        if error.is_connect() {
            format!("cannot connect to {host} ({root})")
        } else {
            format!("the connection to {host} failed ({root})")
        }
    }
}

fn id_suffix(id: &Option<String>) -> String {
    id.as_deref()
        .map(|id| format!(", {id}"))
        .unwrap_or_default()
}

fn message_suffix(message: &Option<String>) -> String {
    message
        .as_deref()
        .map(|m| format!(": {m}"))
        .unwrap_or_default()
}

impl MmError {
    /// The HTTP status, when the server answered with one.
    pub fn status(&self) -> Option<u16> {
        match self {
            MmError::Unauthorized { .. } => Some(401),
            MmError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Errors that make the rest of a run pointless (auth) as opposed to one failed item.
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            MmError::Unauthorized { .. }
                | MmError::MfaRequired { .. }
                | MmError::NotMattermost { .. }
                | MmError::ServerDown { .. }
                | MmError::Tls(_)
                | MmError::Stopped { .. }
                // The archive's disk is full or failing: every later item would fail too.
                | MmError::Blob(_)
        )
    }

    /// Names the server in the endpoint (`POST https://chat.example.com/api/v4/users/login`),
    /// for errors of the first requests, where a wrong URL is the likely cause.
    fn at_server(mut self, server: &str) -> MmError {
        let endpoint = match &mut self {
            MmError::Unauthorized { endpoint, .. }
            | MmError::MfaRequired { endpoint }
            | MmError::Status { endpoint, .. }
            | MmError::Transport { endpoint, .. }
            | MmError::NotMattermost { endpoint, .. }
            | MmError::Decode { endpoint, .. }
            | MmError::GaveUp { endpoint, .. }
            | MmError::Stopped { endpoint }
            | MmError::ServerDown { endpoint, .. } => endpoint,
            MmError::Blob(_) | MmError::Tls(_) => return self,
        };
        if let Some((method, path)) = endpoint.split_once(' ')
            && path.starts_with("/api/")
        {
            *endpoint = format!("{method} {server}{path}");
        }
        self
    }

    /// A first request answered 404/405/501: the URL does not lead to a Mattermost API.
    fn missing_api(self) -> MmError {
        match self {
            MmError::Status {
                endpoint,
                status: status @ (404 | 405 | 501),
                ..
            } => MmError::NotMattermost {
                endpoint,
                why: format!(
                    "HTTP {status}: no Mattermost API there; is the url the server's address (https://host, without a path)?"
                ),
            },
            other => other,
        }
    }
}

pub type Result<T, E = MmError> = std::result::Result<T, E>;

/// Knobs for the HTTP layer.
#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// Requests per second, every attempt counted; None = unlimited.
    pub rate_limit: Option<f64>,
    /// Requests in flight at once, over all tasks of the run.
    pub concurrency: usize,
    pub retry: RetryPolicy,
    /// Failed attempts in a row (any endpoint) after which the server counts as down and the
    /// run ends; bounds the time a dead server can cost.
    pub max_consecutive_failures: u32,
    pub connect_timeout: Duration,
    /// Longest silence while reading a response; not a total timeout, so big downloads live.
    pub read_timeout: Duration,
    pub tls: TlsOptions,
}

impl Default for ClientOptions {
    fn default() -> ClientOptions {
        ClientOptions {
            rate_limit: Some(10.0),
            concurrency: 4,
            retry: RetryPolicy::default(),
            max_consecutive_failures: 30,
            connect_timeout: Duration::from_secs(20),
            read_timeout: Duration::from_secs(120),
            tls: TlsOptions::default(),
        }
    }
}

/// TLS beyond the platform's trusted roots (rustls).
#[derive(Clone, Debug, Default)]
pub struct TlsOptions {
    /// PEM certificates of a private CA to trust in addition to the system's.
    pub extra_roots_pem: Option<Vec<u8>>,
    /// Accept any certificate. Only for testing; the CLI warns loudly.
    pub accept_invalid_certs: bool,
}

/// Mattermost's JSON error body (§0); only the fields we show.
#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    id: String,
    #[serde(default)]
    message: String,
}

/// Query for `GET /channels/{id}/posts` (§2.1): exactly one mode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PostsQuery {
    /// Newest first, `page` pages of `per_page` from the newest post.
    Page { page: u32 },
    /// Older than the given post, `page` pages away from it.
    Before { post_id: String, page: u32 },
    /// Every row changed after the given time (ms), deleted and history rows included.
    Since { since: i64 },
}

/// A posts response plus the header we need for the watermark.
pub struct PostsPage {
    pub list: wire::PostList,
    /// Max update_at of the channel when the page was served (from the page-mode ETag).
    pub etag_update_at: Option<i64>,
}

/// A Mattermost server session.
pub struct Client {
    http: reqwest::Client,
    api: Url,
    token: Secret,
    limiter: Option<Arc<DefaultDirectRateLimiter>>,
    /// Caps requests in flight; a permit lives until the response body is read.
    in_flight: Arc<Semaphore>,
    /// After a 429 without rate-limit headers every task waits until then: the whole client
    /// slows down, not one request. (With the headers the pacer knows better.)
    paused_until: std::sync::Mutex<Option<tokio::time::Instant>>,
    pacer: std::sync::Mutex<pace::Pacer>,
    stop: StopSignal,
    /// Answers 429 so far (they are also in `requests`).
    rate_limited: AtomicU64,
    consecutive_failures: AtomicU32,
    max_consecutive_failures: u32,
    retry: RetryPolicy,
    requests: AtomicU64,
    server_version: std::sync::Mutex<Option<String>>,
    /// Session tokens we obtained by password are revoked at the end; PATs are not ours to end.
    owns_session: bool,
    /// Whether the server ever answered. Until it has, a connection failure most likely means
    /// a wrong URL or a server that is down, so it is retried only briefly (fail fast).
    reached: std::sync::atomic::AtomicBool,
}

fn parse_etag_update_at(headers: &HeaderMap) -> Option<i64> {
    let etag = headers.get("etag")?.to_str().ok()?;
    let etag = etag.trim().trim_start_matches("W/").trim_matches('"');
    etag.rsplit('.').next()?.parse().ok()
}

impl Client {
    /// Logs in (password) or adopts a token, then reads the user it authenticates. `stop`
    /// ends every wait of the client (see the module doc).
    pub async fn connect(
        credentials: &Credentials,
        mfa_token: Option<&str>,
        options: &ClientOptions,
        stop: &StopSignal,
    ) -> Result<(Client, Raw<wire::User>)> {
        let mut builder = reqwest::Client::builder()
            .user_agent(concat!("matterbak/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(options.connect_timeout)
            .read_timeout(options.read_timeout);
        if let Some(pem) = &options.tls.extra_roots_pem {
            let certs = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| MmError::Tls(format!("cannot read the CA certificate: {e}")))?;
            if certs.is_empty() {
                return Err(MmError::Tls(
                    "the CA certificate file holds no PEM certificate".into(),
                ));
            }
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        if options.tls.accept_invalid_certs {
            builder = builder.tls_danger_accept_invalid_certs(true);
        }
        let http = builder.build().map_err(|error| MmError::Transport {
            endpoint: "client setup".into(),
            error,
        })?;
        let api = Url::parse(&format!("{}/api/v4/", credentials.server)).map_err(|e| {
            MmError::NotMattermost {
                endpoint: credentials.server.clone(),
                why: format!("not a URL: {e}"),
            }
        })?;
        let limiter = options.rate_limit.filter(|r| *r > 0.0).map(|rate| {
            let period = Duration::from_secs_f64(1.0 / rate);
            let quota = Quota::with_period(period)
                .unwrap_or_else(|| Quota::per_second(NonZeroU32::MAX))
                .allow_burst(NonZeroU32::MIN);
            Arc::new(RateLimiter::direct(quota))
        });
        let mut client = Client {
            http,
            api,
            token: Secret::new(""),
            limiter,
            in_flight: Arc::new(Semaphore::new(options.concurrency.max(1))),
            paused_until: std::sync::Mutex::new(None),
            pacer: std::sync::Mutex::new(pace::Pacer::default()),
            stop: stop.clone(),
            rate_limited: AtomicU64::new(0),
            consecutive_failures: AtomicU32::new(0),
            max_consecutive_failures: options.max_consecutive_failures.max(1),
            retry: options.retry.clone(),
            requests: AtomicU64::new(0),
            server_version: std::sync::Mutex::new(None),
            owns_session: false,
            reached: std::sync::atomic::AtomicBool::new(false),
        };
        let server = credentials.server.as_str();
        let first_error = |e: MmError| e.missing_api().at_server(server);
        match &credentials.auth {
            Auth::Token(token) => client.token = token.clone(),
            Auth::Password(password) => {
                client.token = client
                    .login(&credentials.user, password, mfa_token)
                    .await
                    .map_err(first_error)?;
                client.owns_session = true;
            }
        }
        let me = client
            .get_one::<wire::User>(&["users", "me"], &[])
            .await
            .map_err(first_error)?;
        Ok((client, me))
    }

    async fn login(
        &self,
        user: &str,
        password: &Secret,
        mfa_token: Option<&str>,
    ) -> Result<Secret> {
        let body = serde_json::json!({
            "login_id": user,
            "password": password.expose(),
            "token": mfa_token.unwrap_or(""),
        });
        let endpoint = "POST /api/v4/users/login".to_string();
        let body = serde_json::to_vec(&body).expect("a JSON literal serializes");
        let (response, _permit) = self
            .send(
                Method::POST,
                self.url(&["users", "login"], &[]),
                Some(body),
                false,
                &endpoint,
            )
            .await?;
        let status = response.status();
        if status.is_success() {
            let token = response
                .headers()
                .get("token")
                .and_then(|v| v.to_str().ok())
                .filter(|t| !t.is_empty())
                .map(Secret::new);
            if let Some(token) = token {
                return Ok(token);
            }
            // Web servers and proxies answer any POST with a page; say so rather than
            // complain about a missing header.
            let body = response.bytes().await.unwrap_or_default();
            let why = if looks_like_html(&body) {
                "got an HTML page instead of the Mattermost API: is the url the server's address?"
            } else {
                "login succeeded without a Token header"
            };
            return Err(MmError::NotMattermost {
                endpoint,
                why: why.into(),
            });
        }
        Err(self.error_from(&endpoint, response).await)
    }

    /// Revokes a session we created by password login; a no-op for tokens.
    pub async fn logout(&self) {
        if self.owns_session {
            let endpoint = "POST /api/v4/users/logout".to_string();
            let _ = self
                .send_as(
                    Pacing::Unpaced,
                    Method::POST,
                    self.url(&["users", "logout"], &[]),
                    None,
                    true,
                    &endpoint,
                )
                .await;
        }
    }

    /// Requests sent so far, every attempt counted.
    pub fn request_count(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Of those, the ones the server answered 429.
    pub fn rate_limited_count(&self) -> u64 {
        self.rate_limited.load(Ordering::Relaxed)
    }

    /// Waits for `wait` unless a stop is requested first.
    async fn unless_stopped<T>(
        &self,
        endpoint: &str,
        wait: impl std::future::Future<Output = T>,
    ) -> Result<T> {
        tokio::select! {
            biased;
            () = self.stop.stopped() => Err(MmError::Stopped { endpoint: endpoint.to_owned() }),
            value = wait => Ok(value),
        }
    }

    async fn sleep(&self, endpoint: &str, delay: Duration) -> Result<()> {
        self.unless_stopped(endpoint, tokio::time::sleep(delay))
            .await
    }

    /// `X-Version-Id` of the server, once a response carried it.
    pub fn server_version(&self) -> Option<String> {
        self.server_version.lock().ok()?.clone()
    }

    fn url(&self, segments: &[&str], query: &[(&str, String)]) -> Url {
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

    /// One attempt: waits for a 429 pause, a free slot, the user's rate limit and the
    /// server's (pacer), sends, counts, and feeds the answer's rate headers to the pacer.
    /// Every wait ends on a stop request; `Pacing::Unpaced` (the logout at the very end)
    /// skips them.
    async fn attempt(
        &self,
        pacing: Pacing,
        method: &Method,
        url: &Url,
        body: Option<&Vec<u8>>,
        auth: bool,
        endpoint: &str,
    ) -> Result<(OwnedSemaphorePermit, reqwest::Result<reqwest::Response>)> {
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
        let forget = |ticket: Option<u64>| {
            if let (Some(ticket), Ok(mut pacer)) = (ticket, self.pacer.lock()) {
                pacer.forget(ticket);
            }
        };
        let response = match request.send().await {
            Ok(response) => response,
            Err(e) => {
                forget(ticket);
                return Ok((permit, Err(e)));
            }
        };
        self.reached.store(true, Ordering::Relaxed);
        let refused = response.status() == StatusCode::TOO_MANY_REQUESTS;
        if refused {
            self.rate_limited.fetch_add(1, Ordering::Relaxed);
        }
        match pace::RateHeaders::from_headers(response.headers()) {
            Some(rate) => {
                if let (Some(ticket), Ok(mut pacer)) = (ticket, self.pacer.lock()) {
                    pacer.observe(ticket, std::time::Instant::now(), rate, refused);
                }
            }
            None => forget(ticket),
        }
        if let Some(version) = response
            .headers()
            .get("x-version-id")
            .and_then(|v| v.to_str().ok())
            && let Ok(mut slot) = self.server_version.lock()
            && slot.is_none()
        {
            *slot = Some(version.to_owned());
        }
        Ok((permit, Ok(response)))
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
    async fn send(
        &self,
        method: Method,
        url: Url,
        body: Option<Vec<u8>>,
        auth: bool,
        endpoint: &str,
    ) -> Result<(reqwest::Response, OwnedSemaphorePermit)> {
        self.send_as(Pacing::Paced, method, url, body, auth, endpoint)
            .await
    }

    async fn send_as(
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

    /// Turns a non-success response into a typed error.
    async fn error_from(&self, endpoint: &str, response: reqwest::Response) -> MmError {
        let status = response.status();
        let is_json = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.starts_with("application/json"));
        let body = response.bytes().await.unwrap_or_default();
        let parsed: Option<ErrorBody> = if is_json {
            serde_json::from_slice(&body).ok()
        } else {
            None
        };
        let id = parsed
            .as_ref()
            .map(|b| b.id.clone())
            .filter(|s| !s.is_empty());
        let message = parsed
            .as_ref()
            .map(|b| b.message.clone())
            .filter(|s| !s.is_empty());
        let endpoint = endpoint.to_owned();
        if status == StatusCode::UNAUTHORIZED {
            if id
                .as_deref()
                .is_some_and(|id| id.starts_with("mfa.") || id.contains("check_user_mfa"))
            {
                return MmError::MfaRequired { endpoint };
            }
            return MmError::Unauthorized { endpoint, id };
        }
        if status == StatusCode::NOT_FOUND && parsed.is_none() {
            return MmError::NotMattermost {
                endpoint,
                why: "HTTP 404 without a Mattermost error body: is the URL the server's address?"
                    .into(),
            };
        }
        MmError::Status {
            endpoint,
            status: status.as_u16(),
            id,
            message,
        }
    }

    /// GET returning the body bytes of a success; retries truncated bodies too.
    async fn get_body(
        &self,
        segments: &[&str],
        query: &[(&str, String)],
        endpoint: &str,
    ) -> Result<(bytes::Bytes, HeaderMap)> {
        let url = self.url(segments, query);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let (response, permit) = self
                .send(Method::GET, url.clone(), None, true, endpoint)
                .await?;
            if !response.status().is_success() {
                return Err(self.error_from(endpoint, response).await);
            }
            let headers = response.headers().clone();
            match response.bytes().await {
                Ok(body) => return Ok((body, headers)),
                Err(e) => {
                    // The slot is free while waiting to retry.
                    drop(permit);
                    self.pause(attempt, &Attempt::Transport, endpoint, &e.to_string())
                        .await?
                }
            }
        }
    }

    /// GET + decode, retrying bodies that do not decode (a 200 cut off mid-stream).
    async fn get_decoded<T>(
        &self,
        segments: &[&str],
        query: &[(&str, String)],
        decode: impl Fn(&[u8]) -> serde_json::Result<T>,
    ) -> Result<(T, HeaderMap)> {
        let endpoint = endpoint_name("GET", segments);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let (body, headers) = self.get_body(segments, query, &endpoint).await?;
            match decode(&body) {
                Ok(value) => return Ok((value, headers)),
                Err(source) => {
                    if looks_like_html(&body) {
                        return Err(MmError::NotMattermost {
                            endpoint,
                            why:
                                "got an HTML page instead of JSON: is the URL the server's address?"
                                    .into(),
                        });
                    }
                    if self.decide(attempt, &Attempt::BadBody) == Decision::GiveUp {
                        return Err(MmError::Decode { endpoint, source });
                    }
                    self.pause(attempt, &Attempt::BadBody, &endpoint, &source.to_string())
                        .await?;
                }
            }
        }
    }

    async fn get_one<T: serde::de::DeserializeOwned>(
        &self,
        segments: &[&str],
        query: &[(&str, String)],
    ) -> Result<Raw<T>> {
        let (value, _) = self
            .get_decoded(segments, query, |body| {
                let raw: Box<RawValue> = serde_json::from_slice(body)?;
                Raw::parse(raw)
            })
            .await?;
        Ok(value)
    }

    async fn get_list<T: serde::de::DeserializeOwned>(
        &self,
        segments: &[&str],
        query: &[(&str, String)],
    ) -> Result<Vec<Raw<T>>> {
        Ok(self.get_decoded(segments, query, wire::parse_list).await?.0)
    }

    /// Pages through a list endpoint with `per_page=200` until a short page.
    async fn get_all_pages<T: serde::de::DeserializeOwned>(
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
            let items = self.get_list::<T>(segments, &query).await?;
            let n = items.len();
            all.extend(items);
            if n < MAX_PER_PAGE {
                break;
            }
        }
        Ok(all)
    }

    async fn post_json<T>(
        &self,
        segments: &[&str],
        query: &[(&str, String)],
        body: &impl serde::Serialize,
        decode: impl Fn(&[u8]) -> serde_json::Result<T>,
    ) -> Result<T> {
        let endpoint = endpoint_name("POST", segments);
        let body = serde_json::to_vec(body).expect("ids serialize");
        let url = self.url(segments, query);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let (response, permit) = self
                .send(
                    Method::POST,
                    url.clone(),
                    Some(body.clone()),
                    true,
                    &endpoint,
                )
                .await?;
            if !response.status().is_success() {
                return Err(self.error_from(&endpoint, response).await);
            }
            let failure = match response.bytes().await {
                Ok(bytes) => match decode(&bytes) {
                    Ok(value) => return Ok(value),
                    Err(e) if self.decide(attempt, &Attempt::BadBody) == Decision::GiveUp => {
                        return Err(MmError::Decode {
                            endpoint,
                            source: e,
                        });
                    }
                    Err(e) => (Attempt::BadBody, e.to_string()),
                },
                Err(e) => (Attempt::Transport, e.to_string()),
            };
            drop(permit);
            self.pause(attempt, &failure.0, &endpoint, &failure.1)
                .await?;
        }
    }

    // ----- endpoints -----------------------------------------------------------------------

    /// `GET /users/me/teams`: every team you belong to (not paged).
    pub async fn fetch_teams(&self) -> Result<Vec<Raw<wire::Team>>> {
        self.get_list(&["users", "me", "teams"], &[]).await
    }

    /// Every channel you are a member of, archived ones included, each once. Uses the
    /// all-teams endpoint (server ≥ 6.1) and falls back to one request per team.
    /// Every channel of the user in one request (archived included), or None on servers
    /// without that endpoint: then [`Client::fetch_team_channels`] per team.
    pub async fn fetch_my_channels(&self) -> Result<Option<Vec<Raw<wire::Channel>>>> {
        let deleted = [("include_deleted", "true".to_string())];
        match self.get_list(&["users", "me", "channels"], &deleted).await {
            Ok(channels) => Ok(Some(channels)),
            Err(
                MmError::Status {
                    status: 404 | 501, ..
                }
                | MmError::NotMattermost { .. },
            ) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The user's channels team by team (older servers), without duplicates (DMs and GMs
    /// come with every team).
    pub async fn fetch_team_channels(
        &self,
        team_ids: &[String],
    ) -> Result<Vec<Raw<wire::Channel>>> {
        let deleted = [("include_deleted", "true".to_string())];
        let mut seen = std::collections::HashSet::new();
        let mut all = Vec::new();
        for team_id in team_ids {
            for channel in self
                .get_list::<wire::Channel>(&["users", "me", "teams", team_id, "channels"], &deleted)
                .await?
            {
                if seen.insert(channel.value.id.clone()) {
                    all.push(channel);
                }
            }
        }
        Ok(all)
    }

    pub async fn fetch_team_members(&self, team_id: &str) -> Result<Vec<Raw<wire::TeamMember>>> {
        self.get_all_pages(&["teams", team_id, "members"], &[])
            .await
    }

    /// Channel members; the server's order is not stable across pages (§4.3), so duplicates
    /// are dropped.
    pub async fn fetch_channel_members(
        &self,
        channel_id: &str,
    ) -> Result<Vec<Raw<wire::ChannelMember>>> {
        let mut seen = std::collections::HashSet::new();
        let members = self
            .get_all_pages::<wire::ChannelMember>(&["channels", channel_id, "members"], &[])
            .await?;
        Ok(members
            .into_iter()
            .filter(|m| seen.insert(m.value.user_id.clone()))
            .collect())
    }

    /// `POST /users/ids`, in batches; with `since`, only users changed after it.
    pub async fn fetch_users(
        &self,
        ids: &[String],
        since: Option<i64>,
    ) -> Result<Vec<Raw<wire::User>>> {
        let mut all = Vec::new();
        let query: Vec<(&str, String)> = since
            .map(|s| ("since", s.to_string()))
            .into_iter()
            .collect();
        for batch in ids.chunks(USER_BATCH) {
            all.extend(
                self.post_json(&["users", "ids"], &query, &batch, wire::parse_list)
                    .await?,
            );
        }
        Ok(all)
    }

    /// `POST /users/group_channels`: the other members of group channels, in batches of
    /// [`GROUP_CHANNEL_BATCH`] (the server ignores ids beyond that). A channel missing from
    /// the answer is missing from the map; `Ok(None)` when the server does not have the
    /// endpoint (404/501, §14.1): then use [`Client::fetch_channel_members`].
    pub async fn fetch_group_channel_users(
        &self,
        channel_ids: &[String],
    ) -> Result<Option<HashMap<String, Vec<Raw<wire::User>>>>> {
        let mut all = HashMap::new();
        for batch in channel_ids.chunks(GROUP_CHANNEL_BATCH) {
            match self.fetch_group_channel_batch(batch).await {
                Ok(map) => all.extend(map),
                Err(
                    MmError::Status {
                        status: 404 | 501, ..
                    }
                    | MmError::NotMattermost { .. },
                ) => return Ok(None),
                Err(e) => return Err(e),
            }
        }
        Ok(Some(all))
    }

    async fn fetch_group_channel_batch(
        &self,
        channel_ids: &[String],
    ) -> Result<HashMap<String, Vec<Raw<wire::User>>>> {
        self.post_json(&["users", "group_channels"], &[], &channel_ids, |body| {
            let map: HashMap<String, Vec<Box<RawValue>>> = serde_json::from_slice(body)?;
            map.into_iter()
                .map(|(k, users)| {
                    Ok((
                        k,
                        users
                            .into_iter()
                            .map(Raw::parse)
                            .collect::<serde_json::Result<Vec<_>>>()?,
                    ))
                })
                .collect()
        })
        .await
    }

    pub async fn fetch_posts(&self, channel_id: &str, query: &PostsQuery) -> Result<PostsPage> {
        let per_page = ("per_page", MAX_PER_PAGE.to_string());
        let skip_threads = ("skipFetchThreads", "true".to_string());
        let params: Vec<(&str, String)> = match query {
            PostsQuery::Page { page } => vec![("page", page.to_string()), per_page, skip_threads],
            PostsQuery::Before { post_id, page } => {
                vec![
                    ("before", post_id.clone()),
                    ("page", page.to_string()),
                    per_page,
                    skip_threads,
                ]
            }
            PostsQuery::Since { since } => vec![("since", since.to_string()), skip_threads],
        };
        let (list, headers) = self
            .get_decoded(&["channels", channel_id, "posts"], &params, |body| {
                serde_json::from_slice::<wire::PostList>(body)
            })
            .await?;
        Ok(PostsPage {
            list,
            etag_update_at: parse_etag_update_at(&headers),
        })
    }

    /// Whether a post still exists for us (`GET /posts/{id}`): a 404 means deleted.
    pub async fn post_exists(&self, post_id: &str) -> Result<bool> {
        match self
            .get_body(
                &["posts", post_id],
                &[],
                &endpoint_name("GET", &["posts", post_id]),
            )
            .await
        {
            Ok(_) => Ok(true),
            Err(MmError::Status { status: 404, .. } | MmError::NotMattermost { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    pub async fn fetch_file_info(&self, file_id: &str) -> Result<Raw<wire::FileInfo>> {
        self.get_one(&["files", file_id, "info"], &[]).await
    }

    /// `GET /emoji?sort=name`, all pages. None when custom emojis are disabled (501).
    pub async fn fetch_emojis(&self) -> Result<Option<Vec<Raw<wire::Emoji>>>> {
        match self
            .get_all_pages(&["emoji"], &[("sort", "name".to_string())])
            .await
        {
            Ok(list) => Ok(Some(list)),
            Err(MmError::Status { status: 501, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Streams a binary into the blob store while hashing it. A failure mid-way discards the
    /// partial temp file; retryable failures start over.
    pub async fn download(
        &self,
        segments: &[&str],
        blobs: &BlobStore,
    ) -> Result<(BlobRef, String)> {
        let endpoint = endpoint_name("GET", segments);
        let url = self.url(segments, &[]);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let (mut response, permit) = self
                .send(Method::GET, url.clone(), None, true, &endpoint)
                .await?;
            if !response.status().is_success() {
                return Err(self.error_from(&endpoint, response).await);
            }
            let content_type = response
                .headers()
                .get(CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("application/octet-stream")
                .to_owned();
            let mut writer = blobs.writer()?;
            let failure = loop {
                match response.chunk().await {
                    Ok(Some(chunk)) => {
                        if let Err(e) = writer.write_all(&chunk) {
                            return Err(MmError::Blob(BlobError::Io {
                                action: "write",
                                path: writer.temp_path().to_owned(),
                                source: e,
                            }));
                        }
                    }
                    Ok(None) => break None,
                    Err(e) => break Some(e.to_string()),
                }
            };
            // The body is in: the slot is free for another request while this file is
            // flushed to disk.
            drop(permit);
            match failure {
                None => {
                    // fsync of file and directory: off the async workers, which a
                    // blocking disk flush would otherwise stall for every task.
                    let committed = tokio::task::spawn_blocking(move || writer.commit())
                        .await
                        .map_err(|e| {
                            MmError::Blob(BlobError::Io {
                                action: "commit",
                                path: std::path::PathBuf::from("tmp"),
                                source: std::io::Error::other(e),
                            })
                        })??;
                    return Ok((committed, content_type));
                }
                Some(last) => {
                    drop(writer);
                    self.pause(attempt, &Attempt::Transport, &endpoint, &last)
                        .await?;
                }
            }
        }
    }
}

/// A name for errors: method and path with ids, never the query (which never holds secrets
/// either, but keeps messages short).
fn endpoint_name(method: &str, segments: &[&str]) -> String {
    format!("{method} /api/v4/{}", segments.join("/"))
}

/// Whether a request waits its turn (every request but the logout at the very end, which
/// must not be held up, even by a stop).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pacing {
    Paced,
    Unpaced,
}

/// What went wrong on the wire, for messages: the innermost cause says most (refused,
/// reset, certificate).
fn transport_reason(e: &reqwest::Error) -> String {
    let mut reason = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(inner) = source {
        reason = inner.to_string();
        source = inner.source();
    }
    reason
}

fn looks_like_html(body: &[u8]) -> bool {
    let start = body
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(body.len());
    let head = &body[start..body.len().min(start + 15)];
    head.first() == Some(&b'<')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etag_watermark_is_the_number_after_the_last_dot() {
        let mut h = HeaderMap::new();
        h.insert("etag", "\"9.11.0.1700000123456\"".parse().unwrap());
        assert_eq!(parse_etag_update_at(&h), Some(1700000123456));
        h.insert("etag", "W/\"garbage\"".parse().unwrap());
        assert_eq!(parse_etag_update_at(&h), None);
    }

    #[test]
    fn html_is_recognised() {
        assert!(looks_like_html(b"  <!DOCTYPE html><html>"));
        assert!(!looks_like_html(b"[{\"id\":1}]"));
    }
}
