-- Shadow mode: every request is scored, only the cohort's decision is enforced. For a request
-- outside the cohort, `shadow_decision` is what validation would have decided (NULL inside the
-- cohort, where `validation_decision` holds the enforced one, and for rows from before).
-- `wingman rollout report` compares it with what humans decided (the divergence).
ALTER TABLE approval_requests
    ADD COLUMN shadow_decision TEXT
        CHECK (shadow_decision IN ('AUTO_APPROVED', 'AUTO_REJECTED', 'PENDING'));

CREATE INDEX approval_requests_shadow ON approval_requests (created_at) WHERE shadow_decision IS NOT NULL;
