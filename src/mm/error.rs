//! What can go wrong talking to the server, in the user's words: [`MmError`], the reading of
//! transport failures and of Mattermost's JSON error bodies, and the predicates callers decide
//! by (`is_fatal`, `status`) instead of matching deep.
//!
//! May import: nothing of the crate (reqwest and serde only). Knows nothing of disks: a sink's
//! failure during a download is the caller's error type (`download::DownloadError`).

use reqwest::StatusCode;
use reqwest::header::CONTENT_TYPE;
use serde::Deserialize;

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
        )
    }

    /// Names the server in the endpoint (`POST https://chat.example.com/api/v4/users/login`),
    /// for errors of the first requests, where a wrong URL is the likely cause.
    pub(super) fn at_server(mut self, server: &str) -> MmError {
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
            MmError::Tls(_) => return self,
        };
        if let Some((method, path)) = endpoint.split_once(' ')
            && path.starts_with("/api/")
        {
            *endpoint = format!("{method} {server}{path}");
        }
        self
    }

    /// A first request answered 404/405/501: the URL does not lead to a Mattermost API.
    pub(super) fn missing_api(self) -> MmError {
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

/// Mattermost's JSON error body (§0); only the fields we show.
#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    id: String,
    #[serde(default)]
    message: String,
}

/// Turns a non-success response into a typed error.
pub(super) async fn error_from(endpoint: &str, response: reqwest::Response) -> MmError {
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

/// What went wrong on the wire, for messages: the innermost cause says most (refused,
/// reset, certificate).
pub(super) fn transport_reason(e: &reqwest::Error) -> String {
    let mut reason = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(inner) = source {
        reason = inner.to_string();
        source = inner.source();
    }
    reason
}

pub(super) fn looks_like_html(body: &[u8]) -> bool {
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
    fn html_is_recognised() {
        assert!(looks_like_html(b"  <!DOCTYPE html><html>"));
        assert!(!looks_like_html(b"[{\"id\":1}]"));
    }
}
