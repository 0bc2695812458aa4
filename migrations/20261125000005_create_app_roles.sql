-- Database roles for least privilege (DESIGN.md: only the recorder writes; others read).
--   wingman_writer: the recorder. Inserts and updates the request tables; only inserts audit
--                   events (with the append-only trigger, an edit is refused twice over).
--   wingman_reader: every other service (api, approvals, watcher, the CLI's list/report).
-- The roles are created without LOGIN and without a password: `wingman migrate` gives them
-- LOGIN and the passwords from WINGMAN_DB_WRITER_PASSWORD(_FILE) and
-- WINGMAN_DB_READER_PASSWORD(_FILE) (Docker secrets), so no password is ever in a migration.
-- Roles are cluster-wide: two databases migrating at once may race to create them, hence
-- the exception handlers.
DO $$
BEGIN
    CREATE ROLE wingman_writer NOLOGIN;
EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
END
$$;

DO $$
BEGIN
    CREATE ROLE wingman_reader NOLOGIN;
EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
END
$$;

GRANT USAGE ON SCHEMA public TO wingman_writer, wingman_reader;

GRANT SELECT ON approval_requests, executions, audit_events TO wingman_reader;

GRANT SELECT, INSERT, UPDATE ON approval_requests, executions TO wingman_writer;
GRANT SELECT, INSERT ON audit_events TO wingman_writer;

-- Tables later migrations create: readable by the reader, writable by the writer.
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO wingman_reader;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE ON TABLES TO wingman_writer;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO wingman_writer;
