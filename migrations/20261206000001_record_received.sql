-- The recorder's writes of a batch's audit rows and received requests, each once, in SQL:
--   wingman_append          the audit rows after a head, if it is still the chain's head
--   wingman_insert_received the received requests (each at its first move when it has one)
--   wingman_record_received both, under the chain's lock, as one statement
-- The recorder's common batch (requests received with intake's decision, nothing else moving)
-- is `SELECT wingman_record_received(…)` outside any transaction, so the statement's commit is
-- the batch's: one round trip where it was four (BEGIN with the chain's lock, the append, the
-- insert, COMMIT), which at a light load is paid per request. Any other batch calls the first
-- two inside its transaction.
--
-- The lock comes first, and each statement after it takes its own snapshot (VOLATILE functions
-- under READ COMMITTED), so the append sees every row committed before the lock was granted
-- and checks the head the recorder gave, exactly as in a transaction. The functions keep one
-- plan per connection (`plan_cache_mode` for their own execution): they read UNNEST and reach
-- the tables only through their keys.

-- Appends the rows (11 arrays, a column each) after `p_head_seq`/`p_head_hash`, or writes
-- nothing and returns false when the chain's head is another (an empty chain's is seq 0).
CREATE FUNCTION wingman_append(
    p_seqs bigint[], p_event_ids uuid[], p_request_ids uuid[], p_kinds text[], p_stages text[],
    p_statuses text[], p_actors text[], p_ats timestamptz[], p_datas jsonb[],
    p_prev_hashes text[], p_hashes text[],
    p_head_seq bigint, p_head_hash text
) RETURNS boolean
LANGUAGE plpgsql
VOLATILE
SET plan_cache_mode = force_generic_plan
AS $$
BEGIN
    INSERT INTO audit_events (seq, event_id, request_id, kind, stage, status, actor, at, data,
                              prev_hash, hash)
    SELECT * FROM UNNEST(p_seqs, p_event_ids, p_request_ids, p_kinds, p_stages, p_statuses,
                         p_actors, p_ats, p_datas, p_prev_hashes, p_hashes)
    WHERE COALESCE((SELECT seq = p_head_seq AND hash = p_head_hash
                    FROM audit_events ORDER BY seq DESC LIMIT 1),
                   p_head_seq = 0);
    RETURN FOUND;
END
$$;

-- Inserts newly received requests (21 arrays, a column each); a request already there is
-- left as it is.
CREATE FUNCTION wingman_insert_received(
    r_request_id uuid[], r_requester text[], r_environment text[], r_command text[],
    r_operation jsonb[], r_title text[], r_description text[], r_risk_level text[],
    r_at timestamptz[], r_submitted_by text[], r_status text[], r_updated_at timestamptz[],
    r_validator_scores jsonb[], r_profile text[], r_composite_score int[],
    r_validation_applied bool[], r_rollout_bucket smallint[], r_expires_at timestamptz[],
    r_validation_decision text[], r_validation_error bool[], r_shadow_decision text[]
) RETURNS void
LANGUAGE plpgsql
VOLATILE
SET plan_cache_mode = force_generic_plan
AS $$
BEGIN
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
END
$$;

-- Both, under the chain's lock: false (nothing written) when the head is another.
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
    IF NOT wingman_append(p_seqs, p_event_ids, p_request_ids, p_kinds, p_stages, p_statuses,
                          p_actors, p_ats, p_datas, p_prev_hashes, p_hashes,
                          p_head_seq, p_head_hash) THEN
        RETURN false;
    END IF;
    PERFORM wingman_insert_received(
        r_request_id, r_requester, r_environment, r_command, r_operation, r_title,
        r_description, r_risk_level, r_at, r_submitted_by, r_status, r_updated_at,
        r_validator_scores, r_profile, r_composite_score, r_validation_applied,
        r_rollout_bucket, r_expires_at, r_validation_decision, r_validation_error,
        r_shadow_decision);
    RETURN true;
END
$$;

-- Only the recorder's role calls them (they run with the caller's rights: the reader could
-- not insert through them anyway).
REVOKE ALL ON FUNCTION wingman_append, wingman_insert_received, wingman_record_received
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wingman_append, wingman_insert_received, wingman_record_received
    TO wingman_writer;
