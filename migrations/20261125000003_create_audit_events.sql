-- The audit log: append-only and hash-chained. Each row stores the hash of the previous row
-- and the hash of its own canonical content, so any edit, deletion or truncation is found by
-- `wingman audit verify`. Only the recorder inserts (serialized by an advisory lock).
CREATE TABLE audit_events (
    seq          BIGINT PRIMARY KEY,
    event_id     UUID NOT NULL UNIQUE,
    request_id   UUID,
    kind         TEXT NOT NULL,
    stage        TEXT NOT NULL,
    status       TEXT,
    actor        TEXT NOT NULL,
    at           TIMESTAMPTZ NOT NULL,
    data         JSONB NOT NULL,
    prev_hash    TEXT NOT NULL,
    hash         TEXT NOT NULL,
    recorded_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX audit_events_request_id ON audit_events (request_id, seq);

CREATE FUNCTION audit_events_refuse_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit_events is append-only: % refused', TG_OP;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER audit_events_append_only
    BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_refuse_change();

CREATE TRIGGER audit_events_no_truncate
    BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION audit_events_refuse_change();
