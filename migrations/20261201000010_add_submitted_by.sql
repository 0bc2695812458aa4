-- Who submitted a request, as authenticated (the NATS user of the submit subject, or the API
-- key): `nats:<user>`, `api:<key>`, or `anonymous` where the bus has no authentication. The
-- `requester` column stays the publisher's display label.
ALTER TABLE approval_requests ADD COLUMN submitted_by TEXT NOT NULL DEFAULT 'anonymous';
