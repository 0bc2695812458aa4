-- The recorder's common batch in one round trip: requests received with intake's decision
-- (the audit rows, hashed by the recorder, and the rows of `approval_requests` they project
-- to), written by one statement outside any transaction, so the statement's commit is the
-- batch's. Before: BEGIN with the chain's lock, the append, the insert, COMMIT: four round
-- trips a batch, which at a light load is paid per request.
--
-- The lock comes first, and each statement after it takes its own snapshot (a VOLATILE
-- function under READ COMMITTED), so the append sees every row committed before the lock was
-- granted and checks the head the recorder gave, exactly as the four-trip batch does: when
-- the head is not `p_head_seq`/`p_head_hash` nothing is written and the result is false.
-- The statements keep one plan per connection (`plan_cache_mode` for the function's own
-- execution): both read UNNEST and reach the tables only through their keys.
CREATE FUNCTION wingman_record_received(
    p_seqs bigint[], p_event_ids uuid[], p_request_ids uuid[], p_kinds text[], p_stages text[],
    p_statuses text[], p_actors text[], p_ats timestamptz[], p_datas jsonb[],
    p_prev_hashes text[], p_hashes text[],
    p_head_seq bigint, p_head_hash text,
    r_request_id uuid[], r_requester text[], r_environment text[], r_command text[],
    r_operation jsonb[], r_title text[], r_description text[], r_risk_level text[],
    r_at timestamptz[], r_submitted_by text[], r_status text[], r_updated_at timestamptz[],
    r_validator_scores jsonb[], r_profile text[], r_composite_score int[],
    r_validation_applied bool[], r_rollout_bucket smallint[], r_expires_at timestamptz[],
    r_validation_decision text[], r_validation_error bool[], r_shadow_decision text[]
) RETURNS boolean
LANGUAGE plpgsql
VOLATILE
SET plan_cache_mode = force_generic_plan
AS $$
BEGIN
    -- The chain's lock (`audit::CHAIN_LOCK`, "WINGAUDT"), as every append takes it.
    PERFORM pg_advisory_xact_lock(6289644422545359956);
    -- The same two inserts as `audit::insert_rows` and `requests::insert_received`: a column
    -- added to one must be added to the other (calling shared functions from here measured
    -- slower in the hot path: a plpgsql call, its settings and an SPI query each).
    INSERT INTO audit_events (seq, event_id, request_id, kind, stage, status, actor, at, data,
                              prev_hash, hash)
    SELECT * FROM UNNEST(p_seqs, p_event_ids, p_request_ids, p_kinds, p_stages, p_statuses,
                         p_actors, p_ats, p_datas, p_prev_hashes, p_hashes)
    WHERE COALESCE((SELECT seq = p_head_seq AND hash = p_head_hash
                    FROM audit_events ORDER BY seq DESC LIMIT 1),
                   p_head_seq = 0);
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    INSERT INTO approval_requests
        (request_id, requester, environment, command, operation, title, description, risk_level,
         status, created_at, updated_at, submitted_by, validator_scores, profile,
         composite_score, validation_applied, rollout_bucket, expires_at, validation_decision,
         validation_error, shadow_decision)
    SELECT r.request_id, r.requester, r.environment, r.command, r.operation, r.title,
           r.description, r.risk_level, r.status, r.at, r.updated_at, r.submitted_by,
           r.validator_scores, r.profile, r.composite_score, r.validation_applied,
           r.rollout_bucket, r.expires_at, r.validation_decision,
           COALESCE(r.validation_error, false), r.shadow_decision
    FROM UNNEST(r_request_id, r_requester, r_environment, r_command, r_operation, r_title,
                r_description, r_risk_level, r_at, r_submitted_by, r_status, r_updated_at,
                r_validator_scores, r_profile, r_composite_score, r_validation_applied,
                r_rollout_bucket, r_expires_at, r_validation_decision, r_validation_error,
                r_shadow_decision)
         AS r(request_id, requester, environment, command, operation, title, description,
              risk_level, at, submitted_by, status, updated_at, validator_scores, profile,
              composite_score, validation_applied, rollout_bucket, expires_at,
              validation_decision, validation_error, shadow_decision)
    ON CONFLICT (request_id) DO NOTHING;
    RETURN true;
END
$$;

-- Only the recorder's role calls it (it runs with the caller's rights: the reader could not
-- insert through it anyway).
REVOKE ALL ON FUNCTION wingman_record_received FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wingman_record_received TO wingman_writer;
