-- matterbak catalog, schema version 1.
--
-- Conventions: every *_at column is milliseconds since the Unix epoch as Mattermost sends it,
-- 0 meaning "never". Every `json` column holds the object exactly as the server sent it (bytes
-- and key order), so export is lossless and new server fields survive. Ids are Mattermost's
-- 26-character ids. Rows are never deleted by sync: what disappears on the server is marked.

-- Binary contents (attachments, avatars, team icons, emoji images), stored once each in
-- blobs/<h[0..2]>/<h[2..4]>/<h> under the archive directory.
CREATE TABLE blobs (
    hash        TEXT PRIMARY KEY,      -- BLAKE3 of the bytes, 64 lowercase hex chars; also the file name
    size        INTEGER NOT NULL,      -- length in bytes
    stored_at   INTEGER NOT NULL       -- when this blob was first committed (ms, local clock)
) STRICT;

-- Users we have seen: yourself, members of archived teams and channels, post authors, reactors.
CREATE TABLE users (
    id                   TEXT PRIMARY KEY,
    username             TEXT NOT NULL,
    update_at            INTEGER NOT NULL,  -- server's update_at of the stored json
    delete_at            INTEGER NOT NULL,  -- > 0: deactivated
    is_bot               INTEGER NOT NULL,  -- 1 for bot accounts
    last_picture_update  INTEGER NOT NULL,  -- 0 when the user never uploaded a picture
    json                 TEXT NOT NULL,     -- user object as sent by the server
    avatar_blob          TEXT REFERENCES blobs(hash), -- uploaded profile picture, NULL if none fetched
    avatar_content_type  TEXT,              -- Content-Type the picture was served with
    avatar_picture_update INTEGER NOT NULL DEFAULT 0 -- last_picture_update the stored picture belongs to
) STRICT;
CREATE INDEX users_username ON users(username);

-- Teams the user belongs to (all of them are catalogued; `selected` says which are archived).
CREATE TABLE teams (
    id                    TEXT PRIMARY KEY,
    name                  TEXT NOT NULL,     -- URL name, used in export paths
    display_name          TEXT NOT NULL,
    update_at             INTEGER NOT NULL,
    delete_at             INTEGER NOT NULL,
    last_team_icon_update INTEGER NOT NULL,  -- 0 when the team has no icon
    json                  TEXT NOT NULL,
    selected              INTEGER NOT NULL,  -- 1 once channels.json selected it in any sync (its data stays archived)
    icon_blob             TEXT REFERENCES blobs(hash),
    icon_content_type     TEXT,
    icon_update           INTEGER NOT NULL DEFAULT 0, -- last_team_icon_update the stored icon belongs to
    members_synced_at     INTEGER               -- when the member list was last refreshed (ms, local clock)
) STRICT;

-- Members of a team, in the order the server listed them.
CREATE TABLE team_members (
    team_id     TEXT NOT NULL REFERENCES teams(id),
    user_id     TEXT NOT NULL,
    position    INTEGER NOT NULL,   -- index in the server's list at the last refresh
    json        TEXT NOT NULL,      -- TeamMember object as sent
    removed_at  INTEGER,            -- set when a refresh no longer listed the member (ms, local clock)
    PRIMARY KEY (team_id, user_id)
) STRICT, WITHOUT ROWID;

-- Channels of every type: 'O' public, 'P' private, 'D' direct, 'G' group (others kept as sent).
CREATE TABLE channels (
    id            TEXT PRIMARY KEY,
    team_id       TEXT NOT NULL,    -- '' for direct and group channels
    type          TEXT NOT NULL,
    name          TEXT NOT NULL,
    display_name  TEXT NOT NULL,
    update_at     INTEGER NOT NULL,
    delete_at     INTEGER NOT NULL, -- > 0: archived
    json          TEXT NOT NULL,
    selected      INTEGER NOT NULL, -- 1 once any sync archived its posts (its data stays archived)
    export_name   TEXT,             -- DM: other user's username; GM: other usernames sorted joined '__'; else NULL
    members_synced_at INTEGER       -- when the member list was last refreshed (ms, local clock)
) STRICT;
CREATE INDEX channels_team ON channels(team_id);

-- Members of a channel, in the order the server listed them.
CREATE TABLE channel_members (
    channel_id  TEXT NOT NULL REFERENCES channels(id),
    user_id     TEXT NOT NULL,
    position    INTEGER NOT NULL,
    json        TEXT NOT NULL,      -- ChannelMember object as sent
    removed_at  INTEGER,            -- set when a refresh no longer listed the member (ms, local clock)
    PRIMARY KEY (channel_id, user_id)
) STRICT, WITHOUT ROWID;

-- Posts, root posts and replies alike. `json` is the newest content we saw while the post was
-- alive; the server blanks deleted posts, so a deletion only sets delete_at and keeps json.
CREATE TABLE posts (
    id          TEXT PRIMARY KEY,
    channel_id  TEXT NOT NULL REFERENCES channels(id),
    root_id     TEXT NOT NULL,      -- '' for root posts; else the thread's root post id
    user_id     TEXT NOT NULL,
    create_at   INTEGER NOT NULL,
    update_at   INTEGER NOT NULL,   -- highest update_at seen (including the deletion's)
    edit_at     INTEGER NOT NULL,   -- of the stored content; 0 = never edited
    delete_at   INTEGER NOT NULL,   -- > 0: deleted on the server at that time
    type        TEXT NOT NULL,      -- '' for normal posts, 'system_*' for system messages
    message     TEXT NOT NULL,      -- of the stored content
    seen_live   INTEGER NOT NULL,   -- 0 when the post was already deleted when first seen (json is the blanked row)
    json        TEXT NOT NULL
) STRICT;
CREATE INDEX posts_channel_create ON posts(channel_id, create_at);
CREATE INDEX posts_root ON posts(root_id) WHERE root_id <> '';
CREATE INDEX posts_user ON posts(user_id);

-- Earlier versions of edited posts. A version is our own copy of the content before an edit,
-- and/or the server's edit-history row (which the server sends blanked: content unknown).
CREATE TABLE post_versions (
    post_id      TEXT NOT NULL REFERENCES posts(id),
    replaced_at  INTEGER NOT NULL,  -- when this version stopped being current (edit_at of the edit that replaced it)
    history_id   TEXT,              -- id of the server's history row (original_id = post_id), when seen
    edit_at      INTEGER,           -- edit_at of this version (0 = the original text), NULL if unknown
    message      TEXT,              -- NULL when only the blanked history row is known
    json         TEXT,              -- our copy of this version as sent; NULL when unknown
    PRIMARY KEY (post_id, replaced_at)
) STRICT, WITHOUT ROWID;

-- Reactions, taken from post metadata. A reaction removed on the server keeps its row.
CREATE TABLE reactions (
    post_id     TEXT NOT NULL REFERENCES posts(id),
    user_id     TEXT NOT NULL,
    emoji_name  TEXT NOT NULL,
    create_at   INTEGER NOT NULL,
    json        TEXT NOT NULL,
    removed_at  INTEGER,            -- update_at of the post version that no longer listed it
    PRIMARY KEY (post_id, user_id, emoji_name)
) STRICT, WITHOUT ROWID;

-- Attachments: the file info as sent in post metadata, and the bytes once fetched.
CREATE TABLE files (
    id          TEXT PRIMARY KEY,
    post_id     TEXT NOT NULL,
    channel_id  TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    name        TEXT NOT NULL,      -- file name as uploaded (may contain anything; sanitised on export)
    extension   TEXT NOT NULL,
    size        INTEGER NOT NULL,   -- size the server claims
    mime_type   TEXT NOT NULL,
    create_at   INTEGER NOT NULL,
    json        TEXT NOT NULL,      -- FileInfo object as sent
    blob        TEXT REFERENCES blobs(hash), -- NULL until the bytes are archived
    fetch_error TEXT                -- last failure fetching the bytes (e.g. 'HTTP 404'), NULL when fine
) STRICT;
CREATE INDEX files_post ON files(post_id);
CREATE INDEX files_blob ON files(blob);
CREATE INDEX files_pending ON files(id) WHERE blob IS NULL;

-- Custom emojis. Emojis deleted on the server keep their rows.
CREATE TABLE emojis (
    id                  TEXT PRIMARY KEY,
    name                TEXT NOT NULL,
    creator_id          TEXT NOT NULL,
    create_at           INTEGER NOT NULL,
    update_at           INTEGER NOT NULL,
    json                TEXT NOT NULL,
    image_blob          TEXT REFERENCES blobs(hash),
    image_content_type  TEXT,
    image_update_at     INTEGER NOT NULL DEFAULT 0, -- update_at the stored image belongs to
    removed_at          INTEGER          -- set when the server's list no longer had it (ms, local clock)
) STRICT;

-- Per-channel sync state. Committed in the same transaction as the posts it covers.
CREATE TABLE sync_cursors (
    channel_id      TEXT PRIMARY KEY REFERENCES channels(id),
    watermark       INTEGER,        -- server update_at up to which every change is archived; NULL before the first backfill finished
    walk_watermark  INTEGER,        -- watermark to adopt when the running cursor walk finishes
    walk_before     TEXT,           -- running walk: post id to page before (NULL = start from the newest page)
    walk_page       INTEGER NOT NULL DEFAULT 0, -- running walk: page offset from walk_before (equal create_at runs)
    walk_started_at INTEGER,        -- local ms when the running walk began; NULL when no walk is running
    last_sync_at    INTEGER,        -- local ms of the last sync that finished this channel
    last_outcome    TEXT,           -- 'ok' or the error of the last attempt
    etag            TEXT            -- ETag of the last newest-page response, if any
) STRICT;

-- One row per `matterbak sync` run.
CREATE TABLE sync_runs (
    id              INTEGER PRIMARY KEY,
    started_at      INTEGER NOT NULL,  -- local ms
    finished_at     INTEGER,           -- NULL while running or when the process died
    outcome         TEXT,              -- 'ok', 'partial' (some items failed), 'failed', 'interrupted'
    tool_version    TEXT NOT NULL,
    user_id         TEXT,              -- the account the run archived as (NULL until logged in)
    username        TEXT,
    server_version  TEXT,              -- X-Version-Id of the server
    requests        INTEGER NOT NULL DEFAULT 0,
    posts_written   INTEGER NOT NULL DEFAULT 0,
    files_fetched   INTEGER NOT NULL DEFAULT 0,
    bytes_fetched   INTEGER NOT NULL DEFAULT 0,
    failures        INTEGER NOT NULL DEFAULT 0,
    error           TEXT               -- fatal error message, if any (never contains secrets)
) STRICT;
