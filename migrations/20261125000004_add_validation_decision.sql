-- The validator's decision at validation time (the row's status moves on later: an
-- AUTO_APPROVED request becomes EXECUTING, SUCCEEDED…), and whether validation errored.
-- `wingman rollout report` computes the seed's rates from these.
ALTER TABLE approval_requests
    ADD COLUMN validation_decision TEXT CHECK (validation_decision IN ('AUTO_APPROVED', 'AUTO_REJECTED', 'PENDING')),
    ADD COLUMN validation_error BOOLEAN NOT NULL DEFAULT FALSE;

CREATE INDEX approval_requests_validated ON approval_requests (created_at) WHERE validation_applied;
