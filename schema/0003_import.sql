-- matterbak catalog, schema version 3: what `matterbak import` brings in. Backups of the
-- Python matterbak (and of our own `export`) hold posts the server no longer has; they enter
-- through the same tables as a sync, and these columns say which rows came from where.

-- column posts.imported_from: backup file whose copy of the post created this row (`<backup>:<path inside it>`); NULL when a sync stored the post first. Posts with it set exist in the archive only thanks to an import.
ALTER TABLE posts ADD COLUMN imported_from TEXT;

-- column sync_runs.source: what the run read: NULL for `matterbak sync` (the server), else the backup directory or zip `matterbak import` read (one run per backup).
ALTER TABLE sync_runs ADD COLUMN source TEXT;

-- index posts_imported: the posts that came from imports, for `stats`.
CREATE INDEX posts_imported ON posts(imported_from) WHERE imported_from IS NOT NULL;
