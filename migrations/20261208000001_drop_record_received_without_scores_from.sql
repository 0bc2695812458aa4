-- The recorder has called the overload of migration 20261207000001 (with `r_scores_from`)
-- since that migration; the one of 20261206000001 was kept only so a recorder of the
-- version before could keep recording until it was replaced. Deploy this migration after
-- every recorder runs the newer version: an older one would fail its batches (retried, not
-- lost) until it is.
DROP FUNCTION IF EXISTS wingman_record_received(
    bigint[], uuid[], uuid[], text[], text[],
    text[], text[], timestamptz[], jsonb[],
    text[], text[],
    bigint, text,
    uuid[], text[], text[], text[],
    jsonb[], text[], text[], text[],
    timestamptz[], text[], text[], timestamptz[],
    jsonb[], text[], int[],
    bool[], smallint[], timestamptz[],
    text[], bool[], text[]
);
