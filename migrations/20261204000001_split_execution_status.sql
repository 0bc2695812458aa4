-- The decision stays in `status`; the execution's state gets its own column.
-- The seed's monitoring queries count `status = 'AUTO_APPROVED'` (etc.) over approval_requests:
-- when `status` moved on to EXECUTING/SUCCEEDED/FAILED/INDETERMINATE, an auto-approved request
-- that ran stopped counting as AUTO_APPROVED. Now `status` holds only the decision words and
-- `execution_status` holds NULL → EXECUTING → SUCCEEDED | FAILED | INDETERMINATE, set only on
-- an APPROVED or AUTO_APPROVED row.
ALTER TABLE approval_requests
    ADD COLUMN execution_status TEXT
        CHECK (execution_status IN ('EXECUTING', 'SUCCEEDED', 'FAILED', 'INDETERMINATE'));

-- Existing rows: the execution word moves to the new column, and `status` goes back to the
-- decision. A human decided when `decided_by` is set (APPROVED, possibly overriding an
-- auto-rejection); otherwise the validator auto-approved it.
UPDATE approval_requests
   SET execution_status = status,
       status = CASE WHEN decided_by IS NOT NULL THEN 'APPROVED' ELSE 'AUTO_APPROVED' END
 WHERE status IN ('EXECUTING', 'SUCCEEDED', 'FAILED', 'INDETERMINATE');

ALTER TABLE approval_requests DROP CONSTRAINT approval_requests_status_check;
ALTER TABLE approval_requests ADD CONSTRAINT approval_requests_status_check CHECK (status IN (
    'RECEIVED', 'AUTO_APPROVED', 'AUTO_REJECTED', 'PENDING', 'APPROVED', 'REJECTED', 'EXPIRED'));
-- Nothing executes without an approval, in the table too.
ALTER TABLE approval_requests ADD CONSTRAINT approval_requests_execution_needs_approval
    CHECK (execution_status IS NULL OR status IN ('APPROVED', 'AUTO_APPROVED'));

-- `wingman list --status SUCCEEDED` and `GET /requests?status=FAILED` filter this column.
CREATE INDEX approval_requests_execution_status_created_at
    ON approval_requests (execution_status, created_at) WHERE execution_status IS NOT NULL;
