//! Reads for people: ad-hoc SQL (`matterbak sql`), full-text search over posts
//! (`matterbak search`) and archive statistics (`matterbak stats`).
//!
//! All of it runs on a catalog opened `ReadOnly`. Ad-hoc SQL is refused before it runs when
//! SQLite says the statement could write (`sqlite3_stmt_readonly`), and the connection is
//! opened read-only with `query_only` set besides, so nothing gets through. Results go to a
//! [`RowSink`] one row at a time: a million-row query never sits in memory.

use std::path::Path;

use rusqlite::ErrorCode;
use rusqlite::types::ValueRef;

use super::{Catalog, CatalogError, Context, Result};
use crate::model::PostId;

/// A value of a result row, borrowed from SQLite for the duration of one [`RowSink::row`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Cell<'a> {
    Null,
    Integer(i64),
    Real(f64),
    Text(&'a str),
    Blob(&'a [u8]),
}

/// Receives a query's result: the column names once, then each row as it is read.
pub trait RowSink {
    fn columns(&mut self, names: &[&str]) -> std::io::Result<()>;
    fn row(&mut self, cells: &[Cell<'_>]) -> std::io::Result<()>;
}

#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error(
        "refused: this {kind} statement would change the archive; `matterbak sql` only reads (SELECT, WITH … SELECT, EXPLAIN, read-only PRAGMAs). The archive is untouched."
    )]
    WouldWrite { kind: String },
    #[error("give one SQL statement at a time")]
    SeveralStatements,
    #[error("empty statement: give one SQL statement, such as \"SELECT * FROM messages LIMIT 5\"")]
    EmptyStatement,
    #[error("no such table `{name}`; the tables and views to query are: {known}")]
    NoSuchTable { name: String, known: String },
    /// SQLite's own message only: its result code (`Error code 1: SQL error or missing
    /// database`) says nothing the message does not.
    #[error("SQLite cannot run the statement: {message}")]
    Sql { message: String },
    #[error("no {what} named `{name}` in the archive")]
    UnknownName { what: &'static str, name: String },
    #[error("nothing to search for: give at least one word")]
    NoWords,
    #[error("cannot write the results")]
    Output(#[source] std::io::Error),
    #[error(transparent)]
    Catalog(#[from] CatalogError),
}

/// The first keyword of a statement, upper-cased (`DELETE`, `PRAGMA`, …), skipping
/// whitespace and comments; names the statement kind in errors.
pub fn statement_kind(sql: &str) -> String {
    let mut rest = sql;
    loop {
        rest = rest.trim_start();
        if let Some(after) = rest.strip_prefix("--") {
            rest = after.split_once('\n').map_or("", |(_, tail)| tail);
        } else if let Some(after) = rest.strip_prefix("/*") {
            rest = after.split_once("*/").map_or("", |(_, tail)| tail);
        } else {
            break;
        }
    }
    let word: String = rest
        .chars()
        .take_while(|c| c.is_ascii_alphabetic())
        .collect();
    if word.is_empty() {
        "SQL".to_owned()
    } else {
        word.to_ascii_uppercase()
    }
}

/// The statement without leading whitespace, comments and semicolons: empty when there is
/// nothing to run.
fn skip_blank(sql: &str) -> &str {
    let mut rest = sql;
    loop {
        rest = rest.trim_start_matches(|c: char| c.is_whitespace() || c == ';');
        if let Some(after) = rest.strip_prefix("--") {
            rest = after.split_once('\n').map_or("", |(_, tail)| tail);
        } else if let Some(after) = rest.strip_prefix("/*") {
            rest = after.split_once("*/").map_or("", |(_, tail)| tail);
        } else {
            return rest;
        }
    }
}

/// SQLite's message for a failure, without the result code rusqlite adds as its cause.
fn sqlite_message(e: &rusqlite::Error) -> String {
    match e {
        rusqlite::Error::SqliteFailure(_, Some(message)) => message.clone(),
        rusqlite::Error::SqlInputError { msg, .. } => msg.clone(),
        other => other.to_string(),
    }
}

fn sql_failure(e: rusqlite::Error) -> QueryError {
    QueryError::Sql {
        message: sqlite_message(&e),
    }
}

/// Whether a failure is SQLite refusing to write (the read-only connection's last line).
fn is_write_refusal(e: &rusqlite::Error) -> bool {
    matches!(e.sqlite_error_code(), Some(ErrorCode::ReadOnly))
        || e.to_string().contains("query_only")
}

fn sql_error(sql: &str, source: rusqlite::Error) -> QueryError {
    if is_write_refusal(&source) {
        QueryError::WouldWrite {
            kind: statement_kind(sql),
        }
    } else if matches!(source, rusqlite::Error::MultipleStatement) {
        QueryError::SeveralStatements
    } else {
        sql_failure(source)
    }
}

/// Builds an FTS5 query from the user's words: each word (or quoted phrase, one argument
/// with spaces) becomes an FTS5 phrase, all must match; a trailing `*` searches by prefix.
/// Quoting every word means punctuation (`12:30`, `v2.0`, `C++`) never is a syntax error.
pub fn fts_query(words: &[String]) -> Option<String> {
    let phrases: Vec<String> = words
        .iter()
        .map(|w| w.trim())
        .filter(|w| !w.is_empty() && *w != "*")
        .map(|w| {
            let (text, prefix) = match w.strip_suffix('*') {
                Some(stem) => (stem, "*"),
                None => (w, ""),
            };
            format!("\"{}\"{prefix}", text.replace('"', "\"\""))
        })
        .collect();
    (!phrases.is_empty()).then(|| phrases.join(" "))
}

/// Whether a search shows posts deleted on the server (the archive keeps their last text).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DeletedPosts {
    #[default]
    Exclude,
    Include,
}

/// What `matterbak search` asks for. Names compare case-insensitively.
#[derive(Clone, Debug)]
pub struct SearchQuery {
    /// Words or phrases, all of which must occur in the message or attachment names.
    pub words: Vec<String>,
    /// Channel `name`, display name or (direct/group) export name.
    pub channel: Option<String>,
    /// Team name or display name.
    pub team: Option<String>,
    /// Author's username, without `@`.
    pub from: Option<String>,
    /// Only posts created at or after this time (ms since epoch).
    pub created_from: Option<i64>,
    /// Only posts created before this time (ms since epoch).
    pub created_before: Option<i64>,
    pub deleted: DeletedPosts,
    /// At most this many hits, best first.
    pub limit: u32,
    /// Put around each matched word in the snippet (e.g. `[` `]`, or terminal bold).
    pub highlight: (String, String),
}

/// One search result.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct SearchHit {
    pub post_id: PostId,
    /// None for direct and group channels.
    pub team: Option<String>,
    /// As in the `messages` view: direct: the other username; group: usernames joined `__`.
    pub channel: String,
    /// 'O', 'P', 'D' or 'G'.
    pub channel_type: String,
    /// None when the author is not archived.
    pub author: Option<String>,
    /// ms since epoch.
    pub create_at: i64,
    pub root_id: Option<PostId>,
    pub deleted: bool,
    /// The best-matching part of the message (or file names) with matches highlighted.
    pub snippet: String,
    /// FTS5 bm25 rank: lower is better.
    pub rank: f64,
}

/// Counts for one archived channel (the `channel_stats` view).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ChannelStats {
    pub team: Option<String>,
    pub channel: String,
    pub channel_type: String,
    pub posts: i64,
    pub deleted_posts: i64,
    pub files: i64,
    /// Stated sizes of the channel's attachments, summed (before dedup).
    pub file_bytes: i64,
    /// ISO 8601 UTC, local clock; None if never synced.
    pub last_sync: Option<String>,
    pub last_outcome: Option<String>,
}

/// Counts for one team; direct and group channels are together under `team: None`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct TeamStats {
    pub team: Option<String>,
    pub channels: i64,
    pub posts: i64,
    pub deleted_posts: i64,
    pub files: i64,
    pub file_bytes: i64,
}

/// The last sync run.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct RunStats {
    /// ISO 8601 UTC, local clock.
    pub started: String,
    pub finished: Option<String>,
    /// 'ok', 'partial', 'failed', 'interrupted'; None while running or if the process died.
    pub outcome: Option<String>,
    pub username: Option<String>,
    pub posts_written: i64,
    pub failures: i64,
    /// The backup an import read; None for a sync.
    pub source: Option<String>,
}

/// What `matterbak stats` shows.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ArchiveStats {
    pub teams: Vec<TeamStats>,
    pub channels: Vec<ChannelStats>,
    /// Every blob: attachments, profile pictures, team icons, emoji images.
    pub blobs: i64,
    pub blob_bytes: i64,
    /// Attachments whose bytes are archived, and their stated sizes summed.
    pub attachments_stored: i64,
    pub attachment_bytes: i64,
    /// Bytes the blob store uses for those attachments (each distinct content once).
    pub attachment_blob_bytes: i64,
    /// Attachments whose bytes are not archived (yet, or failed).
    pub attachments_missing: i64,
    /// Posts that exist in the archive only thanks to `matterbak import`: an import created
    /// their row (a sync never stored them first).
    pub imported_posts: i64,
    pub last_run: Option<RunStats>,
    /// The last `sync --follow` session and its connections.
    pub last_follow: Option<super::FollowStats>,
}

impl ArchiveStats {
    /// Bytes saved by storing identical attachments once.
    pub fn dedup_saved(&self) -> i64 {
        self.attachment_bytes - self.attachment_blob_bytes
    }
}

fn cell(value: ValueRef<'_>) -> Cell<'_> {
    match value {
        ValueRef::Null => Cell::Null,
        ValueRef::Integer(v) => Cell::Integer(v),
        ValueRef::Real(v) => Cell::Real(v),
        // SQLite text is UTF-8 unless someone stored otherwise; show such bytes as a blob.
        ValueRef::Text(t) => std::str::from_utf8(t).map_or(Cell::Blob(t), Cell::Text),
        ValueRef::Blob(b) => Cell::Blob(b),
    }
}

/// What a search matches, shared by the search and its count: named parameters `:fts`,
/// `:channel`, `:team`, `:from`, `:after`, `:before`, `:deleted` (see [`SearchFilters`]).
macro_rules! search_matches {
    () => {
        "FROM post_search
         JOIN posts p ON p.rowid = post_search.rowid
         JOIN channels c ON c.id = p.channel_id
         LEFT JOIN teams t ON t.id = c.team_id
         LEFT JOIN users u ON u.id = p.user_id
         WHERE post_search MATCH :fts
           AND (:channel IS NULL OR lower(:channel) IN (lower(c.name), lower(c.display_name), lower(c.export_name)))
           AND (:team IS NULL OR lower(:team) IN (lower(t.name), lower(t.display_name)))
           AND (:from IS NULL OR lower(u.username) = lower(:from))
           AND (:after IS NULL OR p.create_at >= :after)
           AND (:before IS NULL OR p.create_at < :before)
           AND (:deleted OR p.delete_at = 0)"
    };
}

/// The values of the parameters of `search_matches!`.
struct SearchFilters<'a> {
    fts: &'a String,
    query: &'a SearchQuery,
    from: Option<&'a str>,
}

impl SearchFilters<'_> {
    fn params(&self) -> Vec<(&'static str, &dyn rusqlite::ToSql)> {
        let q = self.query;
        vec![
            (":fts", self.fts),
            (":channel", &q.channel),
            (":team", &q.team),
            (":from", &self.from),
            (":after", &q.created_from),
            (":before", &q.created_before),
            (
                ":deleted",
                if q.deleted == DeletedPosts::Include {
                    &true
                } else {
                    &false
                },
            ),
        ]
    }
}

impl Catalog {
    /// Runs one read-only statement, handing the column names and then every row to `sink`
    /// as it is read. A statement that could write is refused before it runs.
    pub fn run_sql(&self, sql: &str, sink: &mut dyn RowSink) -> Result<(), QueryError> {
        if skip_blank(sql).is_empty() {
            return Err(QueryError::EmptyStatement);
        }
        let mut stmt = self
            .conn
            .prepare(sql)
            .map_err(|e| self.explain(sql_error(sql, e)))?;
        if !stmt.readonly() {
            return Err(QueryError::WouldWrite {
                kind: statement_kind(sql),
            });
        }
        let names: Vec<String> = stmt.column_names().into_iter().map(String::from).collect();
        let name_refs: Vec<&str> = names.iter().map(String::as_str).collect();
        sink.columns(&name_refs).map_err(QueryError::Output)?;
        let width = names.len();
        let mut rows = stmt.query([]).map_err(|e| sql_error(sql, e))?;
        while let Some(row) = rows.next().map_err(|e| sql_error(sql, e))? {
            let mut cells = Vec::with_capacity(width);
            for i in 0..width {
                cells.push(cell(row.get_ref(i).map_err(|e| sql_error(sql, e))?));
            }
            sink.row(&cells).map_err(QueryError::Output)?;
        }
        Ok(())
    }

    /// Full-text search over post messages and attachment names, best match first (bm25).
    pub fn search_posts(&self, query: &SearchQuery) -> Result<Vec<SearchHit>, QueryError> {
        let fts = fts_query(&query.words).ok_or(QueryError::NoWords)?;
        let from = query.from.as_deref().map(|u| u.trim_start_matches('@'));
        let filters = SearchFilters {
            fts: &fts,
            query,
            from,
        };
        let mut stmt = self
            .conn
            .prepare_cached(concat!(
                "SELECT p.id, t.name, coalesce(c.export_name, c.name), c.type, u.username, p.create_at,
                        nullif(p.root_id, ''), p.delete_at > 0,
                        snippet(post_search, -1, :open, :close, '…', 16), rank ",
                search_matches!(),
                // Equal ranks newest first, then by id: the same order on every run.
                " ORDER BY rank, p.create_at DESC, p.id LIMIT :limit"
            ))
            .ctx(&self.path, "prepare search")?;
        let mut bound = filters.params();
        bound.extend([
            (":open", &query.highlight.0 as &dyn rusqlite::ToSql),
            (":close", &query.highlight.1),
            (":limit", &query.limit),
        ]);
        let rows = stmt
            .query_map(bound.as_slice(), |r| {
                Ok(SearchHit {
                    post_id: r.get(0)?,
                    team: r.get(1)?,
                    channel: r.get(2)?,
                    channel_type: r.get(3)?,
                    author: r.get(4)?,
                    create_at: r.get(5)?,
                    root_id: r.get(6)?,
                    deleted: r.get(7)?,
                    snippet: r.get(8)?,
                    rank: r.get(9)?,
                })
            })
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(sql_failure)?;
        if rows.is_empty() {
            self.check_search_names(query, from)?;
        }
        Ok(rows)
    }

    /// How many posts match `query` in all; with [`Catalog::search_posts`] cut at
    /// `query.limit`, says how many more there are.
    pub fn count_search_matches(&self, query: &SearchQuery) -> Result<u64, QueryError> {
        let fts = fts_query(&query.words).ok_or(QueryError::NoWords)?;
        let filters = SearchFilters {
            fts: &fts,
            query,
            from: query.from.as_deref().map(|u| u.trim_start_matches('@')),
        };
        self.conn
            .prepare_cached(concat!("SELECT count(*) ", search_matches!()))
            .and_then(|mut stmt| stmt.query_row(filters.params().as_slice(), |r| r.get(0)))
            .map_err(sql_failure)
    }

    /// A search without hits whose `--channel`, team or `--from` names nothing in the archive
    /// is an error naming it, not "no posts found".
    fn check_search_names(
        &self,
        query: &SearchQuery,
        from: Option<&str>,
    ) -> Result<(), QueryError> {
        let names = [
            (
                "team",
                query.team.as_deref(),
                "SELECT 1 FROM teams WHERE lower(?1) IN (lower(name), lower(display_name))",
            ),
            (
                "channel",
                query.channel.as_deref(),
                "SELECT 1 FROM channels WHERE lower(?1) IN (lower(name), lower(display_name), lower(export_name))",
            ),
            (
                "user",
                from,
                "SELECT 1 FROM users WHERE lower(username) = lower(?1)",
            ),
        ];
        for (what, name, sql) in names {
            let Some(name) = name else { continue };
            let known = self
                .conn
                .prepare_cached(sql)
                .and_then(|mut stmt| stmt.exists([name]))
                .map_err(sql_failure)?;
            if !known {
                return Err(QueryError::UnknownName {
                    what,
                    name: name.to_owned(),
                });
            }
        }
        Ok(())
    }

    /// Turns SQLite's `no such table: x` into a message that lists what can be queried.
    fn explain(&self, error: QueryError) -> QueryError {
        let QueryError::Sql { message } = &error else {
            return error;
        };
        let Some(name) = message.strip_prefix("no such table: ") else {
            return error;
        };
        const NAMES: &str = "SELECT name FROM sqlite_schema WHERE type IN ('table', 'view') \
             AND name NOT LIKE 'sqlite_%' AND name NOT LIKE 'post_search_%' ORDER BY type DESC, name";
        let known: rusqlite::Result<Vec<String>> = self
            .conn
            .prepare(NAMES)
            .and_then(|mut stmt| stmt.query_map([], |r| r.get(0))?.collect());
        match known {
            Ok(known) => QueryError::NoSuchTable {
                name: name.to_owned(),
                known: known.join(", "),
            },
            Err(_) => error,
        }
    }

    /// Per-team and per-channel counts, blob store use and the last sync run, all from one
    /// snapshot (consistent even while a sync writes).
    pub fn archive_stats(&self) -> Result<ArchiveStats> {
        self.begin_snapshot()?;
        let stats = self.read_stats();
        let ended = self.end_snapshot();
        let stats = stats?;
        ended.map(|()| stats)
    }

    fn read_stats(&self) -> Result<ArchiveStats> {
        let path: &Path = &self.path;
        let channels = self
            .conn
            .prepare_cached(
                "SELECT team, channel, channel_type, posts, deleted_posts, files, file_bytes, last_sync, last_outcome
                 FROM channel_stats ORDER BY team IS NULL, team, channel_type, channel",
            )
            .and_then(|mut s| {
                s.query_map([], |r| {
                    Ok(ChannelStats {
                        team: r.get(0)?,
                        channel: r.get(1)?,
                        channel_type: r.get(2)?,
                        posts: r.get(3)?,
                        deleted_posts: r.get(4)?,
                        files: r.get(5)?,
                        file_bytes: r.get(6)?,
                        last_sync: r.get(7)?,
                        last_outcome: r.get(8)?,
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()
            })
            .ctx(path, "read channel stats")?;
        let teams = self
            .conn
            .prepare_cached(
                "SELECT team, count(*), sum(posts), sum(deleted_posts), sum(files), sum(file_bytes)
                 FROM channel_stats GROUP BY team ORDER BY team IS NULL, team",
            )
            .and_then(|mut s| {
                s.query_map([], |r| {
                    Ok(TeamStats {
                        team: r.get(0)?,
                        channels: r.get(1)?,
                        posts: r.get(2)?,
                        deleted_posts: r.get(3)?,
                        files: r.get(4)?,
                        file_bytes: r.get(5)?,
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()
            })
            .ctx(path, "read team stats")?;
        let (blobs, blob_bytes): (i64, i64) = self
            .conn
            .query_row(
                "SELECT count(*), coalesce(sum(size), 0) FROM blobs",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .ctx(path, "read blob stats")?;
        let (attachments_stored, attachment_bytes, attachments_missing): (i64, i64, i64) = self
            .conn
            .query_row(
                "SELECT count(blob), coalesce(sum(size) FILTER (WHERE blob IS NOT NULL), 0), count(*) - count(blob) FROM files",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .ctx(path, "read attachment stats")?;
        let attachment_blob_bytes: i64 = self
            .conn
            .query_row(
                "SELECT coalesce(sum(size), 0) FROM blobs WHERE hash IN (SELECT blob FROM files)",
                [],
                |r| r.get(0),
            )
            .ctx(path, "read attachment stats")?;
        let last_run = self
            .conn
            .prepare_cached(
                "SELECT strftime('%Y-%m-%dT%H:%M:%SZ', started_at / 1000, 'unixepoch'),
                        strftime('%Y-%m-%dT%H:%M:%SZ', finished_at / 1000, 'unixepoch'),
                        outcome, username, posts_written, failures, source
                 FROM sync_runs ORDER BY id DESC LIMIT 1",
            )
            .and_then(|mut s| {
                s.query_map([], |r| {
                    Ok(RunStats {
                        started: r.get(0)?,
                        finished: r.get(1)?,
                        outcome: r.get(2)?,
                        username: r.get(3)?,
                        posts_written: r.get(4)?,
                        failures: r.get(5)?,
                        source: r.get(6)?,
                    })
                })?
                .next()
                .transpose()
            })
            .ctx(path, "read last sync run")?;
        let imported_posts = self.imported_post_count()?;
        let last_follow = self.last_follow()?;
        Ok(ArchiveStats {
            teams,
            channels,
            blobs,
            blob_bytes,
            attachments_stored,
            attachment_bytes,
            attachment_blob_bytes,
            attachments_missing,
            imported_posts,
            last_run,
            last_follow,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(w: &[&str]) -> Vec<String> {
        w.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn fts_query_quotes_every_word_and_keeps_prefixes() {
        assert_eq!(
            fts_query(&words(&["deploy", "12:30"])).unwrap(),
            r#""deploy" "12:30""#
        );
        assert_eq!(
            fts_query(&words(&["ship v2", "rel*"])).unwrap(),
            r#""ship v2" "rel"*"#
        );
        assert_eq!(
            fts_query(&words(&[r#"say "hi""#])).unwrap(),
            r#""say ""hi""""#
        );
        assert_eq!(fts_query(&words(&["  ", "*"])), None);
        assert_eq!(fts_query(&[]), None);
    }

    #[test]
    fn statement_kind_skips_comments_and_whitespace() {
        assert_eq!(statement_kind("  delete from posts"), "DELETE");
        assert_eq!(statement_kind("-- note\n/* x */ INSERT INTO t"), "INSERT");
        assert_eq!(statement_kind("PRAGMA user_version = 3"), "PRAGMA");
        assert_eq!(statement_kind("  "), "SQL");
    }
}
