//! The Mattermost REST v4 client: the only code that does HTTP. Authentication, endpoints
//! (paged where the server pages), the client-side rate limit and the retry policy.
//!
//! Every attempt, retries included, waits on the user's rate limit (`--rate-limit`, an upper
//! bound) and then on the [`pace::Pacer`], which follows the server's own limit as its
//! `X-Ratelimit-*` headers describe it. A 429 slows the client down; it is not a failure
//! (see `retry`). A stop request ends every such wait at once ([`MmError::Stopped`]).
//! Secrets are sent only in the `Authorization` header and never appear in URLs, errors or
//! logs. Binaries stream into the caller's [`ByteSink`]: `mm` never touches disk.
//!
//! The parts: `error` (what goes wrong, in the user's words), `tls`, `transport` (turns,
//! sending, retries, the one body-retry loop), `endpoints` (every `fetch_*`), `download`,
//! and the pure `retry` and `pace`; `stop` is the stop request shared with the run.
//!
//! May import: `model`, `config`. Nothing else of the crate (no `blobs`, no `catalog`).

mod download;
mod endpoints;
mod error;
pub mod pace;
pub mod retry;
mod stop;
mod tls;
mod transport;
pub mod wire;
pub mod ws;

pub use download::{ByteSink, DownloadError, Downloaded};
pub use endpoints::{GROUP_CHANNEL_BATCH, MAX_PER_PAGE, PostsPage, PostsQuery};
pub use error::MmError;
pub use stop::StopSignal;
pub use tls::TlsOptions;
pub use transport::Turn;

use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use reqwest::{Method, Url};
use tokio::sync::Semaphore;

use crate::config::{Auth, Credentials, Secret};
use crate::model::object::{Raw, User};
use error::{error_from, looks_like_html};
use retry::RetryPolicy;
use transport::Pacing;

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
    consecutive_failures: AtomicU32,
    max_consecutive_failures: u32,
    retry: RetryPolicy,
    requests: AtomicU64,
    server_version: std::sync::Mutex<Option<String>>,
    /// Session tokens we obtained by password are revoked at the end; PATs are not ours to end.
    owns_session: bool,
    /// Whether the server ever answered. Until it has, a connection failure most likely means
    /// a wrong URL or a server that is down, so it is retried only briefly (fail fast).
    reached: AtomicBool,
    /// Kept for connections beside the REST client (a WebSocket) to trust the same roots.
    tls: TlsOptions,
}

/// How long the logout at the end of a stopped run may take.
pub const LOGOUT_AFTER_STOP: Duration = Duration::from_millis(500);

impl Client {
    /// Logs in (password) or adopts a token, then reads the user it authenticates. `stop`
    /// ends every wait of the client (see the module doc).
    pub async fn connect(
        credentials: &Credentials,
        mfa_token: Option<&str>,
        options: &ClientOptions,
        stop: &StopSignal,
    ) -> Result<(Client, Raw<User>)> {
        let builder = reqwest::Client::builder()
            .user_agent(concat!("matterbak/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(options.connect_timeout)
            .read_timeout(options.read_timeout);
        let http = options
            .tls
            .configure(builder)?
            .build()
            .map_err(|error| MmError::Transport {
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
            consecutive_failures: AtomicU32::new(0),
            max_consecutive_failures: options.max_consecutive_failures.max(1),
            retry: options.retry.clone(),
            requests: AtomicU64::new(0),
            server_version: std::sync::Mutex::new(None),
            owns_session: false,
            reached: AtomicBool::new(false),
            tls: options.tls.clone(),
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
            .get::<Raw<User>>(&["users", "me"], &[])
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
            .send_as(
                Pacing::Paced,
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
        Err(error_from(&endpoint, response).await)
    }

    /// Revokes a session we created by password login; a no-op for tokens. After a stop
    /// request it waits at most [`LOGOUT_AFTER_STOP`]: a stalling server must not hold up a
    /// stop (the session then expires on the server's schedule).
    pub async fn logout(&self) {
        if self.owns_session {
            let endpoint = "POST /api/v4/users/logout".to_string();
            let logout = self.send_as(
                Pacing::Unpaced,
                Method::POST,
                self.url(&["users", "logout"], &[]),
                None,
                true,
                &endpoint,
            );
            if self.stop.requested() {
                let _ = tokio::time::timeout(LOGOUT_AFTER_STOP, logout).await;
            } else {
                let _ = logout.await;
            }
        }
    }

    /// Requests sent so far, every attempt counted.
    pub fn request_count(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// `X-Version-Id` of the server, once a response carried it.
    pub fn server_version(&self) -> Option<String> {
        self.server_version.lock().ok()?.clone()
    }

    /// The API's base, `https://host[/path]/api/v4/`; the WebSocket endpoint is
    /// `websocket` under it (with the `wss`/`ws` scheme).
    pub fn api_url(&self) -> &Url {
        &self.api
    }

    /// The session or access token, for a connection that authenticates on its own (the
    /// WebSocket's authentication challenge). A [`Secret`]: it never prints itself; send it
    /// only to the server.
    pub fn token(&self) -> &Secret {
        &self.token
    }

    /// The TLS trust this client was built with, for connections beside it.
    pub fn tls(&self) -> &TlsOptions {
        &self.tls
    }

    /// The stop request every wait of this client races.
    pub fn stop_signal(&self) -> &StopSignal {
        &self.stop
    }

    /// When and how often a failed request is tried again (see `retry::decide`).
    pub fn retry_policy(&self) -> &RetryPolicy {
        &self.retry
    }
}
