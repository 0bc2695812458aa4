-- One row per capability token the gateway claimed: what ran, and how it ended.
CREATE TABLE executions (
    token_id        UUID PRIMARY KEY,
    request_id      UUID NOT NULL REFERENCES approval_requests (request_id),
    environment     TEXT NOT NULL,
    operation       TEXT NOT NULL,
    argv            JSONB NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('EXECUTING', 'SUCCEEDED', 'FAILED', 'INDETERMINATE')),
    started_at      TIMESTAMPTZ NOT NULL,
    finished_at     TIMESTAMPTZ,
    duration_ms     BIGINT,
    exit_code       INTEGER,
    output_excerpt  TEXT,
    error           TEXT
);

CREATE INDEX executions_request_id ON executions (request_id);
