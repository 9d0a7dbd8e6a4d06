-- matterbak catalog, schema version 2: reading the archive.
--
-- Adds views for people writing SQL (times as ISO 8601 text in UTC, names instead of ids),
-- the full-text index behind `matterbak search`, and the triggers that keep that index in
-- step with `posts` and `files`. Nothing here needs a custom function: the archive reads the
-- same in the sqlite3 shell (3.37 or newer, built with FTS5, as most are) as in matterbak.
-- Tables and columns of schema version 1 that 0001_initial.sql leaves uncommented are
-- described by the `-- column table.name:` and `-- index name:` notes at the end, which
-- docs/schema.md is generated from together with every other comment here.

-- Full-text index over post messages and attachment file names: one row per post, its rowid
-- equal to the post's rowid in `posts` (join with `posts.rowid = post_search.rowid`).
-- Deleted posts stay indexed (their last content is archived); `matterbak search` leaves them
-- out unless asked. Diacritics are folded, so `Koln` finds `Köln`.
CREATE VIRTUAL TABLE post_search USING fts5(
    message,        -- posts.message: the newest text archived
    file_names,     -- names of the post's attachments, separated by spaces ('' when none)
    tokenize = 'unicode61 remove_diacritics 2'
);

-- Index every existing post, so an archive upgraded from version 1 is searchable at once.
INSERT INTO post_search (rowid, message, file_names)
SELECT p.rowid, p.message,
       coalesce((SELECT group_concat(f.name, ' ') FROM files f WHERE f.post_id = p.id), '')
FROM posts p;

-- Indexes a new post. Its files arrive after it (same transaction), see files_search_insert.
CREATE TRIGGER posts_search_insert AFTER INSERT ON posts BEGIN
    INSERT INTO post_search (rowid, message, file_names)
    VALUES (new.rowid, new.message,
            coalesce((SELECT group_concat(f.name, ' ') FROM files f WHERE f.post_id = new.id), ''));
END;

-- Re-indexes an edited post. Sync rewrites `message` on every newer version of a post, most
-- of them without a text change (reactions, deletions), hence the WHEN.
CREATE TRIGGER posts_search_update AFTER UPDATE OF message ON posts
WHEN old.message IS NOT new.message BEGIN
    UPDATE post_search SET message = new.message WHERE rowid = new.rowid;
END;

-- Sync never deletes posts; this keeps the index right when someone does by hand.
CREATE TRIGGER posts_search_delete AFTER DELETE ON posts BEGIN
    DELETE FROM post_search WHERE rowid = old.rowid;
END;

-- Adds a new attachment's name to its post's row.
CREATE TRIGGER files_search_insert AFTER INSERT ON files BEGIN
    UPDATE post_search
    SET file_names = coalesce((SELECT group_concat(f.name, ' ') FROM files f WHERE f.post_id = new.post_id), '')
    WHERE rowid = (SELECT p.rowid FROM posts p WHERE p.id = new.post_id);
END;

-- Follows a renamed attachment (or one moved to another post).
CREATE TRIGGER files_search_update AFTER UPDATE OF name, post_id ON files
WHEN old.name IS NOT new.name OR old.post_id IS NOT new.post_id BEGIN
    UPDATE post_search
    SET file_names = coalesce((SELECT group_concat(f.name, ' ') FROM files f WHERE f.post_id = old.post_id), '')
    WHERE rowid = (SELECT p.rowid FROM posts p WHERE p.id = old.post_id);
    UPDATE post_search
    SET file_names = coalesce((SELECT group_concat(f.name, ' ') FROM files f WHERE f.post_id = new.post_id), '')
    WHERE rowid = (SELECT p.rowid FROM posts p WHERE p.id = new.post_id);
END;

-- Attachments of a channel (channel_stats, `matterbak stats`).
CREATE INDEX files_channel ON files(channel_id);

-- Every archived post, one row each, with names instead of ids. Deleted posts are included
-- (deleted = 1) with the last content archived. reply_count repeats `root_id <> ''` so that
-- SQLite may use the partial index posts_root (without it each row scans every post).
CREATE VIEW messages AS
SELECT
    p.id AS id,                                                             -- post id
    strftime('%Y-%m-%dT%H:%M:%SZ', p.create_at / 1000, 'unixepoch') AS time, -- when posted, ISO 8601 UTC
    p.create_at AS create_at,                                               -- when posted (ms since epoch), for exact ordering
    t.name AS team,                                                         -- team name; NULL for direct and group channels
    coalesce(c.export_name, c.name) AS channel,                             -- channel name; direct: the other username; group: the other usernames joined by __
    c.type AS channel_type,                                                 -- 'O' public, 'P' private, 'D' direct, 'G' group
    u.username AS author,                                                   -- author's username; NULL if the user is not archived
    p.message AS message,                                                   -- newest text archived
    p.type AS type,                                                         -- '' for normal posts, 'system_*' for system messages
    nullif(p.root_id, '') AS root_id,                                       -- thread root's post id; NULL for a root post
    (SELECT count(*) FROM posts r WHERE r.root_id = p.id AND r.root_id <> '') AS reply_count, -- replies archived to this post
    p.edit_at > 0 AS edited,                                                -- 1 if the text was edited
    p.delete_at > 0 AS deleted,                                             -- 1 if deleted on the server
    (SELECT count(*) FROM files f WHERE f.post_id = p.id) AS attachment_count, -- files attached
    p.channel_id AS channel_id                                              -- channel id
FROM posts p
JOIN channels c ON c.id = p.channel_id
LEFT JOIN teams t ON t.id = c.team_id
LEFT JOIN users u ON u.id = p.user_id;

-- Every attachment with where it was posted and where its bytes are.
CREATE VIEW attachments AS
SELECT
    f.id AS id,                                                             -- file id
    f.post_id AS post_id,                                                   -- post the file is attached to
    strftime('%Y-%m-%dT%H:%M:%SZ', f.create_at / 1000, 'unixepoch') AS time, -- when uploaded, ISO 8601 UTC
    t.name AS team,                                                         -- team name; NULL for direct and group channels
    coalesce(c.export_name, c.name) AS channel,                             -- channel name as in `messages`
    u.username AS author,                                                   -- uploader's username
    f.name AS file_name,                                                    -- file name as uploaded
    f.size AS size,                                                         -- bytes, as the server states
    f.mime_type AS mime_type,                                               -- MIME type as the server states
    CASE WHEN f.blob IS NULL THEN NULL
         ELSE 'blobs/' || substr(f.blob, 1, 2) || '/' || substr(f.blob, 3, 2) || '/' || f.blob
    END AS blob_path,                                                       -- bytes, relative to the archive directory; NULL until fetched
    f.fetch_error AS fetch_error,                                           -- why the bytes are missing, if they are
    coalesce(p.delete_at > 0, 0) AS post_deleted                            -- 1 if its post was deleted on the server
FROM files f
LEFT JOIN posts p ON p.id = f.post_id
LEFT JOIN channels c ON c.id = f.channel_id
LEFT JOIN teams t ON t.id = c.team_id
LEFT JOIN users u ON u.id = f.user_id;

-- Every thread (a root post with at least one reply archived), one row each.
CREATE VIEW threads AS
SELECT
    r.root_id AS root_id,                                                   -- the root post's id
    t.name AS team,                                                         -- team name; NULL for direct and group channels
    coalesce(c.export_name, c.name) AS channel,                             -- channel name as in `messages`
    strftime('%Y-%m-%dT%H:%M:%SZ', root.create_at / 1000, 'unixepoch') AS started, -- root post's time, ISO 8601 UTC; NULL if the root is not archived
    ru.username AS root_author,                                             -- root post's author
    root.message AS root_message,                                           -- root post's text
    count(*) AS replies,                                                    -- replies archived
    count(DISTINCT r.user_id) AS repliers,                                  -- distinct authors of replies
    strftime('%Y-%m-%dT%H:%M:%SZ', max(r.create_at) / 1000, 'unixepoch') AS last_reply -- newest reply's time, ISO 8601 UTC
FROM posts r
LEFT JOIN posts root ON root.id = r.root_id
JOIN channels c ON c.id = r.channel_id
LEFT JOIN teams t ON t.id = c.team_id
LEFT JOIN users ru ON ru.id = root.user_id
WHERE r.root_id <> ''
GROUP BY r.root_id;

-- Per archived channel: what it holds and how its last sync went (`matterbak stats`).
CREATE VIEW channel_stats AS
SELECT
    t.name AS team,                                                         -- team name; NULL for direct and group channels
    coalesce(c.export_name, c.name) AS channel,                             -- channel name as in `messages`
    c.type AS channel_type,                                                 -- 'O', 'P', 'D' or 'G'
    (SELECT count(*) FROM posts p WHERE p.channel_id = c.id AND p.delete_at = 0) AS posts, -- posts not deleted
    (SELECT count(*) FROM posts p WHERE p.channel_id = c.id AND p.delete_at > 0) AS deleted_posts, -- posts deleted on the server (content kept)
    (SELECT count(*) FROM files f WHERE f.channel_id = c.id) AS files,      -- attachments
    (SELECT coalesce(sum(f.size), 0) FROM files f WHERE f.channel_id = c.id) AS file_bytes, -- their stated sizes, summed (before dedup)
    strftime('%Y-%m-%dT%H:%M:%SZ', s.last_sync_at / 1000, 'unixepoch') AS last_sync, -- when a sync last finished this channel, ISO 8601 UTC (local clock)
    s.last_outcome AS last_outcome,                                         -- 'ok' or the error of that attempt
    c.id AS channel_id                                                      -- channel id
FROM channels c
LEFT JOIN teams t ON t.id = c.team_id
LEFT JOIN sync_cursors s ON s.channel_id = c.id
WHERE c.selected = 1;

-- Notes on schema version 1 columns and indexes that 0001_initial.sql leaves uncommented
-- (that file is never edited once applied). Every *_at is ms since the epoch.
-- column users.id: Mattermost user id
-- column users.username: login name, without @
-- column teams.id: Mattermost team id
-- column teams.display_name: name shown in the UI
-- column teams.update_at: server's update_at of the stored json
-- column teams.delete_at: > 0: team deleted on the server
-- column teams.json: team object as sent by the server
-- column teams.icon_blob: the team icon's blob, NULL if none fetched
-- column teams.icon_content_type: Content-Type the icon was served with
-- column team_members.team_id: the team
-- column team_members.user_id: the member (users.id)
-- column channels.id: Mattermost channel id
-- column channels.name: URL name (direct: both user ids joined by __; group: a hash)
-- column channels.display_name: name shown in the UI ('' for direct channels)
-- column channels.update_at: server's update_at of the stored json
-- column channels.json: channel object as sent by the server
-- column channels.type: 'O' public, 'P' private, 'D' direct, 'G' group
-- column channel_members.channel_id: the channel
-- column channel_members.user_id: the member (users.id)
-- column channel_members.position: index in the server's list at the last refresh
-- column posts.id: Mattermost post id
-- column posts.channel_id: channel the post is in
-- column posts.json: post object as sent by the server (newest version seen alive)
-- column posts.user_id: author (users.id); '' for some system posts
-- column posts.create_at: when posted
-- column post_versions.post_id: the edited post
-- column reactions.post_id: the post reacted to
-- column reactions.user_id: who reacted (users.id)
-- column reactions.emoji_name: emoji name, system or custom
-- column reactions.create_at: when the reaction was added
-- column reactions.json: reaction object as sent by the server
-- column files.id: Mattermost file id
-- column files.post_id: post the file is attached to
-- column files.channel_id: channel of that post
-- column files.user_id: uploader (users.id)
-- column files.extension: file name extension, lowercase, without dot
-- column files.create_at: when uploaded
-- column files.mime_type: MIME type the server states
-- column emojis.id: Mattermost emoji id
-- column emojis.name: name used as :name:
-- column emojis.creator_id: user who added it (users.id)
-- column emojis.create_at: when added
-- column emojis.update_at: server's update_at of the stored json
-- column emojis.json: emoji object as sent by the server
-- column emojis.image_blob: the image's blob, NULL until fetched
-- column emojis.image_content_type: Content-Type the image was served with
-- column sync_cursors.channel_id: the channel this state belongs to
-- column sync_runs.id: run number, increasing
-- column sync_runs.tool_version: matterbak version that ran
-- column sync_runs.username: username of that account
-- column sync_runs.requests: HTTP requests made, retries included
-- column sync_runs.posts_written: posts inserted or changed
-- column sync_runs.files_fetched: attachments downloaded
-- column sync_runs.bytes_fetched: bytes downloaded for attachments
-- column sync_runs.failures: items that failed (retried by the next sync)
-- index users_username: users by username (search --from, views)
-- index channels_team: channels of a team
-- index posts_channel_create: a channel's posts in time order (sync, export)
-- index posts_root: replies of a thread
-- index posts_user: posts by author
-- index files_post: attachments of a post
-- index files_blob: files sharing a blob (dedup)
-- index files_pending: files whose bytes are still to fetch
