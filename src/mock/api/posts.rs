//! The channel post stream and single posts (§2).

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;

use super::super::error::{ApiError, ApiResult};
use super::super::postlist::{PostsMode, PostsQuery};
use super::super::render;
use super::super::server::AppState;
use super::params::{Params, path_id};
use super::{Caller, etag_for, json, with_etag};

/// Picks the one mode the server would: since > after > before > page.
fn posts_query(params: &Params) -> ApiResult<PostsQuery> {
    let since = params.int("since")?.unwrap_or(0);
    let after = params.id("after")?;
    let before = params.id("before")?;
    let mode = if since > 0 {
        PostsMode::Since(since)
    } else if let Some(after) = after {
        PostsMode::After(after.to_owned())
    } else if let Some(before) = before {
        PostsMode::Before(before.to_owned())
    } else {
        PostsMode::Page
    };
    let paging = params.paging();
    Ok(PostsQuery {
        mode,
        page: paging.page,
        per_page: paging.per_page,
        skip_fetch_threads: params.flag("skipFetchThreads"),
    })
}

/// `GET /channels/{id}/posts`.
pub async fn for_channel(
    State(state): State<AppState>,
    caller: Caller,
    params: Params,
    headers: HeaderMap,
    Path(channel_id): Path<String>,
) -> ApiResult<Response> {
    let channel_id = path_id(&channel_id)?;
    let query = posts_query(&params)?;
    let ws = state.workspace();
    let readable = ws
        .channels
        .get(channel_id)
        .is_some_and(|c| ws.can_read_channel(&caller.user_id, c));
    if !readable || params.flag("include_deleted") {
        return Err(ApiError::forbidden());
    }
    // `getRootPosts` and `GetPostsSince` compute reply counts only with skipFetchThreads;
    // `getPostsAround` (before/after) always does (§14.2).
    let reply_counts = match (&query.mode, query.skip_fetch_threads) {
        (PostsMode::Before(_) | PostsMode::After(_), _) | (_, true) => render::ReplyCounts::Live,
        (PostsMode::Page | PostsMode::Since(_), false) => render::ReplyCounts::Zero,
    };
    let render_list = || {
        json(render::post_list(
            &ws,
            &ws.channel_posts(channel_id, &query),
            reply_counts,
        ))
    };
    if query.mode == PostsMode::Page {
        let etag = etag_for(ws.channel_posts_etag_time(channel_id));
        return Ok(with_etag(&headers, &etag, render_list));
    }
    Ok(render_list())
}

/// `GET /posts/{id}`: deleted posts and history rows are 404.
pub async fn by_id(
    State(state): State<AppState>,
    caller: Caller,
    Path(post_id): Path<String>,
) -> ApiResult<Response> {
    let post_id = path_id(&post_id)?;
    let ws = state.workspace();
    let post = ws
        .posts
        .get(post_id)
        .filter(|p| p.is_live() && p.original_id.is_empty())
        .ok_or(ApiError::not_found("app.post.get.app_error"))?;
    let readable = ws
        .channels
        .get(&post.channel_id)
        .is_some_and(|c| ws.can_read_channel(&caller.user_id, c));
    if !readable {
        return Err(ApiError::forbidden());
    }
    Ok(json(render::post(&ws, post)))
}
