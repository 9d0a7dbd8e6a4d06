//! The follower's record of its session and its WebSocket connections (`follow_runs`,
//! `follow_connections`), written through the one catalog writer: a row when a connection
//! opens (fresh or resumed), its event count and last event time after every batch, how and
//! when it ended. `stats` shows the last session.
//!
//! Times are local ms, taken when the listener received the item (not when the follower got
//! to it: a catch-up sync in progress does not make a drop look later than it was).
//!
//! May import what `sync` may.

use crate::catalog::{CatalogWriter, ConnectionEnd, ConnectionKind, ConnectionTally};

use super::SyncError;

/// The open connection's row and what it received so far.
struct Open {
    row: i64,
    tally: ConnectionTally,
    /// The tally changed since it was last written.
    dirty: bool,
}

pub(super) struct ConnectionLog {
    run: i64,
    open: Option<Open>,
}

impl ConnectionLog {
    /// Records the start of a session.
    pub(super) async fn begin(writer: &CatalogWriter, at: i64) -> Result<Self, SyncError> {
        let run = writer.call(move |c| c.begin_follow(at)).await?;
        Ok(ConnectionLog { run, open: None })
    }

    /// An event received on the open connection; `server_time`: when the server stamped the
    /// change it reports, if it carries a time.
    pub(super) fn event(&mut self, server_time: Option<i64>) {
        if let Some(open) = &mut self.open {
            open.tally.events += 1;
            if server_time.is_some() {
                open.tally.last_event_at = server_time;
            }
            open.dirty = true;
        }
    }

    /// A connection opened at `at`. One still open (the listener reports every drop, so
    /// only defensively) is recorded as dropped then.
    pub(super) async fn opened(
        &mut self,
        writer: &CatalogWriter,
        connection_id: &str,
        kind: ConnectionKind,
        at: i64,
    ) -> Result<(), SyncError> {
        self.closed(writer, ConnectionEnd::Dropped, at).await?;
        let (run, id) = (self.run, connection_id.to_owned());
        let row = writer
            .call(move |c| c.open_connection(run, &id, kind, at))
            .await?;
        self.open = Some(Open {
            row,
            tally: ConnectionTally::default(),
            dirty: false,
        });
        Ok(())
    }

    /// The open connection (if any) ended at `at`.
    pub(super) async fn closed(
        &mut self,
        writer: &CatalogWriter,
        end: ConnectionEnd,
        at: i64,
    ) -> Result<(), SyncError> {
        if let Some(open) = self.open.take() {
            writer
                .call(move |c| c.update_connection(open.row, open.tally, Some((end, at))))
                .await?;
        }
        Ok(())
    }

    /// Writes the open connection's tally if it changed (after each batch of events).
    pub(super) async fn flush(&mut self, writer: &CatalogWriter) -> Result<(), SyncError> {
        if let Some(open) = self.open.as_mut().filter(|o| o.dirty) {
            open.dirty = false;
            let (row, tally) = (open.row, open.tally);
            writer
                .call(move |c| c.update_connection(row, tally, None))
                .await?;
        }
        Ok(())
    }

    /// The session ended at `at`: the open connection with it, as `end` says.
    pub(super) async fn finish(
        mut self,
        writer: &CatalogWriter,
        end: ConnectionEnd,
        at: i64,
    ) -> Result<(), SyncError> {
        self.closed(writer, end, at).await?;
        let run = self.run;
        writer.call(move |c| c.finish_follow(run, at)).await?;
        Ok(())
    }
}
