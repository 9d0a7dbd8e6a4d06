//! File contents and infos (§5), served like Go's `http.ServeContent`.
//!
//! Files of deleted posts are 404 (their infos are soft-deleted with the post); single
//! byte ranges give 206, unsatisfiable ones 416.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::super::error::{ApiError, ApiResult};
use super::super::model::FileInfo;
use super::super::server::AppState;
use super::super::workspace::Workspace;
use super::params::{Params, path_id};
use super::{Caller, bytes, json};

/// Types the server shows inline; everything else is an attachment.
const INLINE_TYPES: &[&str] = &[
    "image/jpeg",
    "image/png",
    "image/bmp",
    "image/gif",
    "image/tiff",
    "image/webp",
    "video/avi",
    "video/mpeg",
    "video/mp4",
    "video/webm",
    "audio/mpeg",
    "audio/mp3",
    "audio/wav",
    "audio/ogg",
    "audio/webm",
];

/// The live file, if the caller may read it (uploader or channel reader).
fn readable_file<'a>(ws: &'a Workspace, caller: &Caller, file_id: &str) -> ApiResult<&'a FileInfo> {
    let file = ws
        .files
        .get(path_id(file_id)?)
        .filter(|f| f.delete_at == 0)
        .ok_or(ApiError::not_found("app.file_info.get.app_error"))?;
    let channel_ok = ws
        .channels
        .get(&file.channel_id)
        .is_some_and(|c| ws.can_read_channel(&caller.user_id, c));
    if file.user_id == caller.user_id || channel_ok {
        Ok(file)
    } else {
        Err(ApiError::forbidden())
    }
}

/// Go `url.PathEscape`: unreserved bytes and `$&+:=@` stay, the rest is %XX.
fn path_escape(name: &str) -> String {
    name.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            b'$' | b'&' | b'+' | b':' | b'=' | b'@' => char::from(b).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

fn content_disposition(file: &FileInfo, force_download: bool) -> String {
    let kind = if !force_download && INLINE_TYPES.contains(&file.mime_type.as_str()) {
        "inline"
    } else {
        "attachment"
    };
    let escaped = path_escape(&file.name);
    format!("{kind};filename=\"{escaped}\"; filename*=UTF-8''{escaped}")
}

/// A single `bytes=` range resolved against `len`: `Ok(None)` means the whole body,
/// `Err(())` an unsatisfiable range.
fn parse_range(value: &str, len: usize) -> Result<Option<(usize, usize)>, ()> {
    let Some(spec) = value.trim().strip_prefix("bytes=") else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None); // multipart ranges: serve the whole file
    }
    let (start, end) = spec.split_once('-').ok_or(())?;
    let (start, end) = (start.trim(), end.trim());
    let range = if start.is_empty() {
        let suffix: usize = end.parse().map_err(|_| ())?;
        if suffix == 0 {
            return Err(());
        }
        (len.saturating_sub(suffix), len.checked_sub(1).ok_or(())?)
    } else {
        let first: usize = start.parse().map_err(|_| ())?;
        let last = if end.is_empty() {
            len.saturating_sub(1)
        } else {
            end.parse::<usize>()
                .map_err(|_| ())?
                .min(len.saturating_sub(1))
        };
        if first >= len || last < first {
            return Err(());
        }
        (first, last)
    };
    Ok(Some(range))
}

/// `GET /files/{id}`.
pub async fn content(
    State(state): State<AppState>,
    caller: Caller,
    params: Params,
    headers: HeaderMap,
    Path(file_id): Path<String>,
) -> ApiResult<Response> {
    let (data, mime, disposition, raw_disposition) = {
        let ws = state.workspace();
        let file = readable_file(&ws, &caller, &file_id)?;
        if file.bytes_lost {
            return Err(ApiError::not_found(
                "api.file.read_file.reading_local.app_error",
            ));
        }
        let mime = if file.mime_type.is_empty() {
            "application/octet-stream".to_owned()
        } else {
            file.mime_type.clone()
        };
        let disposition = content_disposition(file, params.flag("download"));
        (
            file.bytes.clone(),
            mime,
            disposition,
            file.raw_disposition.clone(),
        )
    };
    let len = data.len();
    let range = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .map(|v| parse_range(v, len))
        .unwrap_or(Ok(None));
    let mut response = match range {
        Ok(None) => {
            let delay = state.download_chunk_delay();
            if delay.is_zero() {
                bytes(&mime, data)
            } else {
                slow_bytes(&mime, data, delay, state.clone())
            }
        }
        Ok(Some((first, last))) => {
            let mut partial = bytes(&mime, data[first..=last].to_vec());
            *partial.status_mut() = StatusCode::PARTIAL_CONTENT;
            let value = format!("bytes {first}-{last}/{len}");
            if let Ok(v) = HeaderValue::from_str(&value) {
                partial.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            partial
        }
        Err(()) => {
            let mut refused = StatusCode::RANGE_NOT_SATISFIABLE.into_response();
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{len}")) {
                refused.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            refused
        }
    };
    let h = response.headers_mut();
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if let Some(v) = raw_disposition.and_then(|raw| HeaderValue::from_bytes(&raw).ok()) {
        h.insert(header::CONTENT_DISPOSITION, v);
    } else if let Ok(v) = HeaderValue::from_str(&disposition) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert("X-Frame-Options", HeaderValue::from_static("DENY"));
    h.insert(
        "Content-Security-Policy",
        HeaderValue::from_static("Frame-ancestors 'none'"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-cache"),
    );
    Ok(response)
}

/// The whole body in 64 KiB chunks with a pause before each chunk after the first.
/// The body in 64 KiB chunks, `delay` apart; a chunk also waits while the server holds
/// requests (`MockServer::hold_requests`), so a test can stop a download half-way.
fn slow_bytes(mime: &str, data: Vec<u8>, delay: std::time::Duration, state: AppState) -> Response {
    const CHUNK: usize = 64 * 1024;
    let chunks: Vec<bytes::Bytes> = data
        .chunks(CHUNK)
        .map(bytes::Bytes::copy_from_slice)
        .collect();
    let stream =
        futures_util::stream::unfold((chunks.into_iter(), true), move |(mut rest, first)| {
            let state = state.clone();
            async move {
                let chunk = rest.next()?;
                if !first {
                    tokio::time::sleep(delay).await;
                    state.wait_while_held().await;
                }
                Some((Ok::<_, std::io::Error>(chunk), (rest, false)))
            }
        });
    let mut response = axum::body::Body::from_stream(stream).into_response();
    let value =
        HeaderValue::from_str(mime).unwrap_or(HeaderValue::from_static("application/octet-stream"));
    response.headers_mut().insert(header::CONTENT_TYPE, value);
    response
}

/// `GET /files/{id}/info`.
pub async fn info(
    State(state): State<AppState>,
    caller: Caller,
    Path(file_id): Path<String>,
) -> ApiResult<Response> {
    let ws = state.workspace();
    let file = readable_file(&ws, &caller, &file_id)?;
    let mut response = json(serde_json::to_value(file).unwrap_or(Value::Null));
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("max-age=2592000, private"),
    );
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_resolve_like_serve_content() {
        assert_eq!(parse_range("bytes=0-9", 100), Ok(Some((0, 9))));
        assert_eq!(parse_range("bytes=90-", 100), Ok(Some((90, 99))));
        assert_eq!(parse_range("bytes=-10", 100), Ok(Some((90, 99))));
        assert_eq!(parse_range("bytes=50-500", 100), Ok(Some((50, 99))));
        assert_eq!(parse_range("bytes=100-", 100), Err(()));
        assert_eq!(parse_range("bytes=x-1", 100), Err(()));
        assert_eq!(parse_range("items=1-2", 100), Ok(None));
    }

    #[test]
    fn escapes_names_like_go() {
        assert_eq!(
            path_escape("report final (v2).pdf"),
            "report%20final%20%28v2%29.pdf"
        );
        assert_eq!(path_escape("Über & ÿ.txt"), "%C3%9Cber%20&%20%C3%BF.txt");
    }
}
