-- matterbak catalog, schema version 3: settings of the archive itself.
--
-- Choices made once for an archive that later commands must follow rather than repeat on
-- every command line; today where the blobs live (`--blobs`).

-- One row per setting. Values never hold secrets (credentials come from the environment).
CREATE TABLE archive_settings (
    key   TEXT PRIMARY KEY, -- 'blobs': `local` or s3://bucket/prefix
    value TEXT NOT NULL     -- the setting's text form
) STRICT;
