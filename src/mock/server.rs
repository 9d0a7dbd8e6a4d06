//! The loopback HTTP server: lifecycle, shared state and the per-request pipeline.
//!
//! Pipeline for every routed request (a layer around each route, so the route
//! template is known): fault injection (latency, rate limit, 5xx; skipped for
//! `/__mock/*`), the handler, then the headers every Mattermost response carries and
//! the JSON body of `ApiError`s (which needs the request id). Every non-control
//! request is recorded with its final status.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::api::{self, RouteTemplate};
use super::error::ApiError;
use super::faults::{Decision, FaultState, Faults, Outcome};
use super::hub::{ConnectionInfo, Hub, WsTiming};
use super::ids::id_from;
use super::workspace::Workspace;

/// Release the mock claims to be (first triple of `X-Version-Id`, ETag prefix).
pub const SERVER_VERSION: &str = "9.11.0";
/// `<version>.<build>.<config hash>.<enterprise>`: `X-Version-Id` and `hello`'s
/// `server_version`.
pub const VERSION_ID: &str = "9.11.0.mock.0.false";
const CONTROL_PREFIX: &str = "/__mock/";

/// One request as the server saw it.
#[derive(Clone, Debug)]
pub struct RequestRecord {
    pub method: String,
    /// Route template, e.g. `GET /api/v4/channels/{channel_id}/posts`; unrouted
    /// requests record their literal path.
    pub route: String,
    pub path: String,
    pub query: String,
    pub status: u16,
    /// When the request arrived and when its response (headers; bodies are small or
    /// streamed) was handed back: the timeline benches use to see idle request slots.
    pub arrived: Instant,
    pub answered: Instant,
    /// The answer's `X-Ratelimit-Remaining`, when the limiter is on: tests see from it that
    /// the limiter engaged (a bucket run down to its last token).
    pub rate_remaining: Option<u32>,
}

struct Shared {
    workspace: Mutex<Workspace>,
    hub: Mutex<Hub>,
    faults: Mutex<FaultState>,
    requests: Mutex<Vec<RequestRecord>>,
    /// Bumped after every recorded request, so tests can wait for one.
    recorded: tokio::sync::watch::Sender<u64>,
    request_seq: AtomicU64,
    /// Requests (not control calls) that arrived, answered or not.
    arrivals: AtomicU64,
    /// While true, arriving requests (and the chunks of slowed-down downloads) wait before
    /// anything else happens to them.
    held: tokio::sync::watch::Sender<bool>,
    /// Set by [`MockServer::hold_after`]: how many more requests whose path matches may arrive
    /// before every later one is held.
    hold_trigger: Mutex<Option<(u64, PathMatcher)>>,
}

/// Which request paths [`MockServer::hold_after`] counts.
type PathMatcher = Box<dyn Fn(&str) -> bool + Send>;

/// Handler state: a cheap handle on the shared server state.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

/// Locks ignoring poisoning: a panicking test helper must not wedge the server.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl AppState {
    pub fn download_chunk_delay(&self) -> std::time::Duration {
        lock(&self.0.faults).download_chunk_delay()
    }

    pub fn route_missing(&self, template: &str) -> bool {
        lock(&self.0.faults).route_missing(template)
    }

    /// The workspace, locked; the events its changes publish go to the hub when the guard
    /// is dropped (still under the workspace lock, so events leave in mutation order).
    pub fn workspace(&self) -> WorkspaceGuard<'_> {
        WorkspaceGuard {
            workspace: lock(&self.0.workspace),
            hub: &self.0.hub,
        }
    }

    /// The WebSocket hub. Never lock the workspace while holding it.
    pub fn hub(&self) -> MutexGuard<'_, Hub> {
        lock(&self.0.hub)
    }

    pub fn records(&self) -> Vec<RequestRecord> {
        lock(&self.0.requests).clone()
    }

    pub fn clear_records(&self) {
        lock(&self.0.requests).clear();
    }

    /// Waits while requests are held ([`MockServer::hold_requests`]).
    pub async fn wait_while_held(&self) {
        let mut held = self.0.held.subscribe();
        // The sender lives in `self`, so the wait ends only on a release.
        let _ = held.wait_for(|held| !held).await;
    }

    /// Counts an arriving request against [`MockServer::hold_after`]; whether it is to be held
    /// is decided here, at its arrival (a request that arrived before the hold began is not
    /// held, however late it gets to run: the `n`-th of `hold_after` is always answered).
    fn arrive(&self, path: &str) -> bool {
        self.0.arrivals.fetch_add(1, Ordering::SeqCst);
        let mut trigger = lock(&self.0.hold_trigger);
        if let Some((left, matches)) = trigger.as_mut() {
            if *left == 0 {
                self.0.held.send_replace(true);
                *trigger = None;
            } else if matches(path) {
                *left -= 1;
            }
        }
        *self.0.held.borrow()
    }

    fn next_request_id(&self) -> String {
        id_from(
            self.0.request_seq.fetch_add(1, Ordering::Relaxed),
            0x7265_7169,
        )
    }
}

/// The locked workspace; publishes the events of its changes when dropped.
pub struct WorkspaceGuard<'a> {
    workspace: MutexGuard<'a, Workspace>,
    hub: &'a Mutex<Hub>,
}

impl std::ops::Deref for WorkspaceGuard<'_> {
    type Target = Workspace;
    fn deref(&self) -> &Workspace {
        &self.workspace
    }
}

impl std::ops::DerefMut for WorkspaceGuard<'_> {
    fn deref_mut(&mut self) -> &mut Workspace {
        &mut self.workspace
    }
}

impl Drop for WorkspaceGuard<'_> {
    fn drop(&mut self) {
        let events = self.workspace.take_events();
        if !events.is_empty() {
            lock(self.hub).publish(events, &self.workspace);
        }
    }
}

pub struct MockServer {
    addr: SocketAddr,
    state: AppState,
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl MockServer {
    /// Binds 127.0.0.1:0 and serves in a spawned tokio task.
    pub async fn start(workspace: Workspace) -> std::io::Result<MockServer> {
        Self::start_on(SocketAddr::from(([127, 0, 0, 1], 0)), workspace).await
    }

    /// Same, on a given address (the CLI uses it).
    pub async fn start_on(
        addr: SocketAddr,
        mut workspace: Workspace,
    ) -> std::io::Result<MockServer> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        workspace.enable_events();
        let state = AppState(Arc::new(Shared {
            workspace: Mutex::new(workspace),
            hub: Mutex::new(Hub::new(VERSION_ID)),
            faults: Mutex::new(FaultState::new(Faults::default())),
            requests: Mutex::new(Vec::new()),
            recorded: tokio::sync::watch::Sender::new(0),
            request_seq: AtomicU64::new(1),
            arrivals: AtomicU64::new(0),
            held: tokio::sync::watch::Sender::new(false),
            hold_trigger: Mutex::new(None),
        }));
        let app = api::router(state.clone())
            .layer(middleware::from_fn_with_state(state.clone(), pipeline));
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let shutdown = async {
                let _ = stopped.await;
            };
            // Serving only ends on shutdown or a listener failure; neither needs reporting.
            let app = app.into_make_service_with_connect_info::<SocketAddr>();
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await;
        });
        Ok(MockServer {
            addr,
            state,
            stop,
            task,
        })
    }

    /// `http://127.0.0.1:PORT`, without the `/api/v4` suffix.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Run a closure on the shared workspace (mutations, lookups) under the lock.
    pub fn with_workspace<R>(&self, f: impl FnOnce(&mut Workspace) -> R) -> R {
        f(&mut self.state.workspace())
    }

    /// Replaces the fault configuration (and restarts the limiter and error RNG).
    pub fn set_faults(&self, faults: Faults) {
        *lock(&self.state.0.faults) = FaultState::new(faults);
    }

    /// Stops the rate limiter's clock where it is: from now on the limiter sees every request
    /// arrive at the same moment, until [`MockServer::advance_rate_clock`] moves the clock, so
    /// what a test expects of it does not depend on how quickly its requests arrive.
    /// [`MockServer::set_faults`] sets the clock going again.
    pub fn freeze_rate_clock(&self) {
        lock(&self.state.0.faults).freeze_clock(Instant::now());
    }

    /// Moves the stopped clock of [`MockServer::freeze_rate_clock`] forward.
    pub fn advance_rate_clock(&self, by: std::time::Duration) {
        lock(&self.state.0.faults).advance_clock(by);
    }

    /// Makes every request that arrives from now on wait, unanswered, until
    /// [`MockServer::release_requests`]: a test can then act while a client is certainly
    /// still in the middle of a run. Answers already under way are not held.
    pub fn hold_requests(&self) {
        self.state.0.held.send_replace(true);
    }

    /// Holds every request that arrives after the `n`-th one whose path `matches` (as
    /// [`MockServer::hold_requests`]): the `n`-th is answered, and the client cannot finish a
    /// run that needs another request before the test releases them.
    pub fn hold_after(&self, n: u64, matches: impl Fn(&str) -> bool + Send + 'static) {
        *lock(&self.state.0.hold_trigger) = Some((n, Box::new(matches)));
    }

    /// Lets held requests go on, and cancels a pending [`MockServer::hold_after`].
    pub fn release_requests(&self) {
        *lock(&self.state.0.hold_trigger) = None;
        self.release_held();
    }

    /// Lets held requests go on, keeping a pending [`MockServer::hold_after`] (set it first to
    /// let a client go exactly that far).
    pub fn release_held(&self) {
        self.state.0.held.send_replace(false);
    }

    /// Requests that arrived so far (control calls aside), including those not answered yet.
    pub fn arrivals(&self) -> u64 {
        self.state.0.arrivals.load(Ordering::SeqCst)
    }

    /// Every request seen so far, in arrival order.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.state.records()
    }

    pub fn request_count(&self) -> usize {
        lock(&self.state.0.requests).len()
    }

    /// Number of requests whose route template equals `route`,
    /// e.g. `"GET /api/v4/channels/{channel_id}/posts"`.
    pub fn count(&self, route: &str) -> usize {
        lock(&self.state.0.requests)
            .iter()
            .filter(|r| r.route == route)
            .count()
    }

    /// Waits until at least `n` requests of `route` were answered (checked now and after
    /// every request).
    pub async fn wait_for_count(&self, route: &str, n: usize) {
        let mut recorded = self.state.0.recorded.subscribe();
        while self.count(route) < n {
            if recorded.changed().await.is_err() {
                return;
            }
        }
    }

    pub fn reset_requests(&self) {
        self.state.clear_records();
    }

    /// Drops every open WebSocket without a close frame, like a network failure; the
    /// connections stay resumable (§15.4) and collect the events published meanwhile.
    pub fn drop_websockets(&self) {
        self.state.hub().drop_sockets();
    }

    /// Forgets every WebSocket connection and drops the sockets, like a server restart: a
    /// client that resumes gets a new connection id.
    pub fn restart_websockets(&self) {
        self.state.hub().forget_all();
    }

    /// The server's WebSocket timers (ping interval, pong wait, auth timeout, reap age).
    pub fn set_websocket_timing(&self, timing: WsTiming) {
        self.state.hub().timing = timing;
    }

    /// Every WebSocket connection the server knows, active or not.
    pub fn websocket_connections(&self) -> Vec<ConnectionInfo> {
        self.state.hub().connections()
    }

    /// Waits until `ready` holds for the WebSocket connections (checked now and after every
    /// change); tests use it to act at observed progress instead of after a delay.
    pub async fn wait_for_websockets(&self, ready: impl Fn(&[ConnectionInfo]) -> bool) {
        let mut changes = self.state.hub().subscribe();
        loop {
            if ready(&self.websocket_connections()) {
                return;
            }
            if changes.changed().await.is_err() {
                return;
            }
        }
    }

    pub async fn shutdown(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

async fn pipeline(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let query = request.uri().query().unwrap_or_default().to_owned();
    let arrived = Instant::now();
    let request_id = state.next_request_id();
    let is_control = path.starts_with(CONTROL_PREFIX);

    let mut response = if is_control {
        next.run(request).await
    } else {
        if state.arrive(&path) {
            state.wait_while_held().await;
        }
        with_faults(&state, request, next).await
    };
    finish(&mut response, &request_id, &method);

    if !is_control {
        let template = response
            .extensions()
            .get::<RouteTemplate>()
            .map_or(path.as_str(), |t| t.0);
        let route = format!("{method} {template}");
        lock(&state.0.requests).push(RequestRecord {
            method: method.to_string(),
            route,
            path,
            query,
            status: response.status().as_u16(),
            arrived,
            answered: Instant::now(),
            rate_remaining: response
                .headers()
                .get("x-ratelimit-remaining")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok()),
        });
        state.0.recorded.send_modify(|n| *n += 1);
    }
    response
}

async fn with_faults(state: &AppState, request: Request, next: Next) -> Response {
    let latency = lock(&state.0.faults).latency();
    if !latency.is_zero() {
        // A blocking sleep on the blocking pool, not tokio's timer: the timer rounds up to
        // its millisecond ticks, adding 5% to every request at 20 ms.
        let _ = tokio::task::spawn_blocking(move || std::thread::sleep(latency)).await;
    }
    // The limiter's key: the peer's IP, as the server's `VaryByRemoteAddr`.
    let client = request
        .extensions()
        .get::<axum::extract::ConnectInfo<SocketAddr>>()
        .map_or(std::net::IpAddr::from([127, 0, 0, 1]), |c| c.0.ip());
    let decision: Decision = lock(&state.0.faults).decide(Instant::now(), client);
    let mut response = match decision.outcome {
        Outcome::Serve => next.run(request).await,
        Outcome::Limited { retry_after_secs } => {
            let mut r = text_response(
                StatusCode::TOO_MANY_REQUESTS,
                "text/plain; charset=utf-8",
                "limit exceeded\n",
            );
            set(&mut r, header::RETRY_AFTER, &retry_after_secs.to_string());
            r
        }
        Outcome::Truncate if request.headers().contains_key(header::UPGRADE) => {
            next.run(request).await
        }
        Outcome::Truncate => truncate(next.run(request).await).await,
        Outcome::Fail(status) => {
            let body = if status == StatusCode::BAD_GATEWAY {
                "<html>bad gateway</html>"
            } else {
                "<html>service unavailable</html>"
            };
            text_response(status, "text/html", body)
        }
    };
    if let Some(rate) = decision.rate {
        set(
            &mut response,
            HeaderName::from_static("x-ratelimit-limit"),
            &rate.limit.to_string(),
        );
        set(
            &mut response,
            HeaderName::from_static("x-ratelimit-remaining"),
            &rate.remaining.to_string(),
        );
        set(
            &mut response,
            HeaderName::from_static("x-ratelimit-reset"),
            &rate.reset_secs.to_string(),
        );
    }
    response
}

/// Sends the first half of the body under a `Content-Length` of the whole, then fails the
/// stream so the connection is dropped mid-body.
async fn truncate(response: Response) -> Response {
    let (mut parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let half = bytes.slice(0..bytes.len() / 2);
    parts
        .headers
        .insert(header::CONTENT_LENGTH, bytes.len().into());
    let chunks: Vec<Result<axum::body::Bytes, std::io::Error>> = vec![
        Ok(half),
        Err(std::io::Error::other(
            "connection dropped by fault injection",
        )),
    ];
    Response::from_parts(
        parts,
        axum::body::Body::from_stream(futures_util::stream::iter(chunks)),
    )
}

fn text_response(status: StatusCode, content_type: &'static str, body: &'static str) -> Response {
    let mut response = (status, Body::from(body)).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

fn set(response: &mut Response, name: HeaderName, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        response.headers_mut().insert(name, v);
    }
}

/// Renders `ApiError` bodies and adds the headers of every API response.
fn finish(response: &mut Response, request_id: &str, method: &Method) {
    if let Some(error) = response.extensions_mut().remove::<ApiError>() {
        *response.body_mut() = Body::from(error.body(request_id));
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
    }
    set(
        response,
        HeaderName::from_static("x-request-id"),
        request_id,
    );
    set(
        response,
        HeaderName::from_static("x-version-id"),
        VERSION_ID,
    );
    set(response, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    if method == Method::GET {
        set(response, header::EXPIRES, "0");
    }
}
