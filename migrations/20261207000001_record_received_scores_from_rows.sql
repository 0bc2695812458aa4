-- The decision's validator scores reach `approval_requests.validator_scores` from the audit
-- row that already carries them (`request_validated`'s `data -> 'validator_scores'`), instead
-- of a second copy of the same JSON beside it: the scores were the largest value the batch
-- sent twice, and Postgres parses every jsonb it receives (`jsonb_recv` was 28 % of its CPU
-- at full load). `r_scores_from[i]` is the position (1-based) in the audit arrays of the row
-- whose data holds request i's scores; NULL when they come in `r_validator_scores[i]` (the
-- row is not new in this batch) or there are none. The rest is the function of migration
-- 20261206000001. That one stays (an overload: another argument list), so a recorder of the
-- version before this keeps recording until it is replaced; a later migration drops it.
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
    r_validation_decision text[], r_validation_error bool[], r_shadow_decision text[],
    r_scores_from int[]
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
           COALESCE(p_datas[r.scores_from] -> 'validator_scores', r.validator_scores),
           r.profile, r.composite_score, r.validation_applied,
           r.rollout_bucket, r.expires_at, r.validation_decision,
           COALESCE(r.validation_error, false), r.shadow_decision
    FROM UNNEST(r_request_id, r_requester, r_environment, r_command, r_operation, r_title,
                r_description, r_risk_level, r_at, r_submitted_by, r_status, r_updated_at,
                r_validator_scores, r_profile, r_composite_score, r_validation_applied,
                r_rollout_bucket, r_expires_at, r_validation_decision, r_validation_error,
                r_shadow_decision, r_scores_from)
         AS r(request_id, requester, environment, command, operation, title, description,
              risk_level, at, submitted_by, status, updated_at, validator_scores, profile,
              composite_score, validation_applied, rollout_bucket, expires_at,
              validation_decision, validation_error, shadow_decision, scores_from)
    ON CONFLICT (request_id) DO NOTHING;
    RETURN true;
END
$$;

-- Only the recorder's role calls it (it runs with the caller's rights: the reader could not
-- insert through it anyway).
REVOKE ALL ON FUNCTION wingman_record_received(
    bigint[], uuid[], uuid[], text[], text[], text[], text[], timestamptz[], jsonb[], text[],
    text[], bigint, text, uuid[], text[], text[], text[], jsonb[], text[], text[], text[],
    timestamptz[], text[], text[], timestamptz[], jsonb[], text[], int[], bool[], smallint[],
    timestamptz[], text[], bool[], text[], int[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wingman_record_received(
    bigint[], uuid[], uuid[], text[], text[], text[], text[], timestamptz[], jsonb[], text[],
    text[], bigint, text, uuid[], text[], text[], text[], jsonb[], text[], text[], text[],
    timestamptz[], text[], text[], timestamptz[], jsonb[], text[], int[], bool[], smallint[],
    timestamptz[], text[], bool[], text[], int[]) TO wingman_writer;
