-- An audit event is identified by the stage that recorded it (proven by its subject) and its
-- id. Ids are derived from things other principals can see (a request id, a deadline), so a
-- planted event may carry the id of a real event to come: keyed by id alone, the recorder
-- would take the real one for a duplicate and drop it. Keyed by (event_id, stage), the
-- planted row and the real row are two rows, and a redelivery of either is still one.
ALTER TABLE audit_events DROP CONSTRAINT audit_events_event_id_key;
ALTER TABLE audit_events ADD CONSTRAINT audit_events_event_id_stage_key UNIQUE (event_id, stage);
