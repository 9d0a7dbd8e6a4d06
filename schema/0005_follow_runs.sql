-- matterbak catalog, schema version 5: live capture's sessions (`matterbak sync --follow`)
-- and the WebSocket connections each one held, so that `stats` can tell when the last event
-- arrived and how the connection fared (dropped and resumed, dropped and caught up, stopped).
-- The catch-up syncs a session runs are ordinary rows of `sync_runs`.

-- One row per `sync --follow` session, written when it starts.
CREATE TABLE follow_runs (
    id           INTEGER PRIMARY KEY, -- the session's number, in the order sessions started
    started_at   INTEGER NOT NULL,  -- local ms
    finished_at  INTEGER            -- local ms; NULL while following or when the process died
) STRICT;

-- One row per WebSocket connection of a session: a new one at every `hello` with a new
-- connection id (fresh) and at every resume of the previous one after a drop (resumed).
CREATE TABLE follow_connections (
    id             INTEGER PRIMARY KEY, -- in the order connections opened
    run_id         INTEGER NOT NULL REFERENCES follow_runs(id), -- the session that held it
    connection_id  TEXT NOT NULL,     -- the server's connection id (its `hello`'s)
    kind           TEXT NOT NULL CHECK (kind IN ('fresh', 'resumed')), -- 'fresh': a new connection id (events may have been lost; a catch-up sync ran); 'resumed': the server resumed the previous one, replaying what was missed
    opened_at      INTEGER NOT NULL,  -- local ms, when the listener received the `hello` or the resume
    closed_at      INTEGER,           -- local ms; NULL while open or when the process died
    ended          TEXT CHECK (ended IN ('dropped', 'stopped', 'error')), -- 'dropped': the link was lost (a reconnect follows); 'stopped': the session was stopped (SIGINT/SIGTERM); 'error': the session ended on an error; NULL while open or when the process died
    events         INTEGER NOT NULL DEFAULT 0, -- events received on it (replayed ones included), written after each batch
    last_event_at  INTEGER            -- server time (ms) the last event on it that carries one was stamped with (a post's update_at, a reaction's create_at, ...); NULL when none did
) STRICT;

-- index follow_connections_run: a session's connections in order, for `stats`.
CREATE INDEX follow_connections_run ON follow_connections(run_id, id);
