-- A request the principal that submitted it withdrew before a decision (`wingman cancel`,
-- `POST /requests/{id}/cancel`): PENDING → CANCELLED, a decision word like EXPIRED. Nothing
-- executes from it (the execution check below still needs APPROVED or AUTO_APPROVED).
ALTER TABLE approval_requests DROP CONSTRAINT approval_requests_status_check;
ALTER TABLE approval_requests ADD CONSTRAINT approval_requests_status_check CHECK (status IN (
    'RECEIVED', 'AUTO_APPROVED', 'AUTO_REJECTED', 'PENDING', 'APPROVED', 'REJECTED', 'EXPIRED',
    'CANCELLED'));
