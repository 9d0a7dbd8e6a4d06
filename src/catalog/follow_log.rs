//! The record of live capture's sessions and their WebSocket connections (`follow_runs`,
//! `follow_connections`, schema 0005): written by the follower through the one writer, read
//! by `stats`.
//!
//! Invariants: a connection row belongs to a session row; `ended` and `closed_at` are set
//! together, once; counts are absolute (each update says how many so far), so an update
//! lost to a crash only leaves an older count.

use rusqlite::{OptionalExtension, params};

use super::{Catalog, Context, Result};

/// How a connection began (`follow_connections.kind`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnectionKind {
    /// A connection id the server just issued (its `hello`): at start, or after a drop it
    /// could not resume.
    Fresh,
    /// The server resumed the previous connection after a drop.
    Resumed,
}

impl ConnectionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectionKind::Fresh => "fresh",
            ConnectionKind::Resumed => "resumed",
        }
    }
}

/// How a connection ended (`follow_connections.ended`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnectionEnd {
    /// The link was lost; the listener reconnects.
    Dropped,
    /// The session was stopped.
    Stopped,
    /// The session ended on an error.
    Error,
}

impl ConnectionEnd {
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectionEnd::Dropped => "dropped",
            ConnectionEnd::Stopped => "stopped",
            ConnectionEnd::Error => "error",
        }
    }
}

/// What a connection received so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConnectionTally {
    pub events: u64,
    /// Server time (ms) of the last event that carried one.
    pub last_event_at: Option<i64>,
}

/// One connection as `stats` shows it (times ISO 8601 UTC).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ConnectionStats {
    pub connection_id: String,
    /// `fresh` or `resumed`.
    pub kind: String,
    pub opened: String,
    /// None while open, or when the process died.
    pub closed: Option<String>,
    /// `dropped`, `stopped`, `error`; None while open, or when the process died.
    pub ended: Option<String>,
    pub events: i64,
}

/// The last `sync --follow` session.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct FollowStats {
    pub started: String,
    /// None while following, or when the process died.
    pub finished: Option<String>,
    /// Server time of the last event that carried one, over all its connections.
    pub last_event: Option<String>,
    pub events: i64,
    pub connections: Vec<ConnectionStats>,
}

impl Catalog {
    /// Records the start of a follow session; its id.
    pub fn begin_follow(&mut self, started_at: i64) -> Result<i64> {
        self.conn
            .execute(
                "INSERT INTO follow_runs (started_at) VALUES (?1)",
                params![started_at],
            )
            .ctx(&self.path, "record follow session")?;
        Ok(self.conn.last_insert_rowid())
    }

    pub fn finish_follow(&mut self, run: i64, finished_at: i64) -> Result<()> {
        self.conn
            .execute(
                "UPDATE follow_runs SET finished_at = ?2 WHERE id = ?1",
                params![run, finished_at],
            )
            .ctx(&self.path, "finish follow session")
            .map(drop)
    }

    /// Records a connection of session `run`; its row id.
    pub fn open_connection(
        &mut self,
        run: i64,
        connection_id: &str,
        kind: ConnectionKind,
        opened_at: i64,
    ) -> Result<i64> {
        self.conn
            .execute(
                "INSERT INTO follow_connections (run_id, connection_id, kind, opened_at) VALUES (?1, ?2, ?3, ?4)",
                params![run, connection_id, kind.as_str(), opened_at],
            )
            .ctx(&self.path, "record connection")?;
        Ok(self.conn.last_insert_rowid())
    }

    /// What connection `row` received so far; with `end`, also how and when it ended.
    pub fn update_connection(
        &mut self,
        row: i64,
        tally: ConnectionTally,
        end: Option<(ConnectionEnd, i64)>,
    ) -> Result<()> {
        self.conn
            .prepare_cached(
                "UPDATE follow_connections SET events = ?2, last_event_at = ?3,
                    ended = coalesce(ended, ?4), closed_at = coalesce(closed_at, ?5)
                 WHERE id = ?1",
            )
            .and_then(|mut st| {
                st.execute(params![
                    row,
                    tally.events as i64,
                    tally.last_event_at,
                    end.map(|(e, _)| e.as_str()),
                    end.map(|(_, at)| at)
                ])
            })
            .ctx(&self.path, "record connection")
            .map(drop)
    }

    /// The last follow session with its connections in order; None when there was none (or
    /// the catalog predates schema 5).
    pub fn last_follow(&self) -> Result<Option<FollowStats>> {
        if self.schema_version()? < 5 {
            return Ok(None);
        }
        let run = self
            .conn
            .query_row(
                "SELECT id, strftime('%Y-%m-%dT%H:%M:%SZ', started_at / 1000, 'unixepoch'),
                        strftime('%Y-%m-%dT%H:%M:%SZ', finished_at / 1000, 'unixepoch')
                 FROM follow_runs ORDER BY id DESC LIMIT 1",
                [],
                |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, Option<String>>(2)?,
                    ))
                },
            )
            .optional()
            .ctx(&self.path, "read last follow session")?;
        let Some((run, started, finished)) = run else {
            return Ok(None);
        };
        let (events, last_event): (i64, Option<String>) = self
            .conn
            .query_row(
                "SELECT coalesce(sum(events), 0),
                        strftime('%Y-%m-%dT%H:%M:%SZ', max(last_event_at) / 1000, 'unixepoch')
                 FROM follow_connections WHERE run_id = ?1",
                [run],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .ctx(&self.path, "read last follow session")?;
        let connections = self
            .conn
            .prepare_cached(
                "SELECT connection_id, kind,
                        strftime('%Y-%m-%dT%H:%M:%SZ', opened_at / 1000, 'unixepoch'),
                        strftime('%Y-%m-%dT%H:%M:%SZ', closed_at / 1000, 'unixepoch'),
                        ended, events
                 FROM follow_connections WHERE run_id = ?1 ORDER BY id",
            )
            .and_then(|mut st| {
                st.query_map([run], |r| {
                    Ok(ConnectionStats {
                        connection_id: r.get(0)?,
                        kind: r.get(1)?,
                        opened: r.get(2)?,
                        closed: r.get(3)?,
                        ended: r.get(4)?,
                        events: r.get(5)?,
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()
            })
            .ctx(&self.path, "read follow connections")?;
        Ok(Some(FollowStats {
            started,
            finished,
            last_event,
            events,
            connections,
        }))
    }
}
