-- One row per request, projected by the recorder from audit events.
-- Column names and status words are the seed's, so its monitoring SQL runs unchanged.
CREATE TABLE approval_requests (
    request_id          UUID PRIMARY KEY,
    requester           TEXT NOT NULL,
    environment         TEXT NOT NULL CHECK (environment IN ('dev', 'test', 'prd')),
    command             TEXT,
    operation           JSONB,
    title               TEXT NOT NULL,
    description         TEXT NOT NULL,
    risk_level          TEXT CHECK (risk_level IN ('low', 'medium', 'high')),
    status              TEXT NOT NULL CHECK (status IN (
                            'RECEIVED', 'AUTO_APPROVED', 'AUTO_REJECTED', 'PENDING', 'APPROVED',
                            'REJECTED', 'EXPIRED', 'EXECUTING', 'SUCCEEDED', 'FAILED', 'INDETERMINATE')),
    created_at          TIMESTAMPTZ NOT NULL,
    updated_at          TIMESTAMPTZ NOT NULL,
    -- Validation (the validator stage): per-validator scores and findings, and the cohort.
    validator_scores    JSONB,
    profile             TEXT,
    composite_score     INTEGER,
    validation_applied  BOOLEAN,
    rollout_bucket      SMALLINT,
    -- Decision (approvals, or the validator for automatic ones).
    decided_by          TEXT,
    decided_at          TIMESTAMPTZ,
    decision_note       TEXT,
    false_positive      BOOLEAN NOT NULL DEFAULT FALSE,
    expires_at          TIMESTAMPTZ
);

CREATE INDEX approval_requests_created_at ON approval_requests (created_at);
CREATE INDEX approval_requests_status_created_at ON approval_requests (status, created_at);
