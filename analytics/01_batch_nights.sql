-- batch_nights -- grain: one batch. The one definition of the night a result belongs to; every
-- model takes its night from here, with the batch's context, so a result row needs one join.
-- Columns: batch_id, night (the batch's run key when it is a date -- the scheduled night the
-- nightly ran for -- else the UTC day the batch started, else the day it was requested),
-- flow_id, job_name, record_type, run_key, outcome, is_current.
-- is_current: the batch that counts for its job (flow x record type) on its night. A night run
-- again (`force`) has several batches; the latest one that landed completely counts (the latest
-- requested while none has), and the others stay here as history. Every model that counts or
-- judges per job-night reads only current batches, so a re-run never doubles a night.
CREATE OR REPLACE VIEW batch_nights AS
WITH nights AS (
    SELECT
        batch_id,
        coalesce(try_cast(run_key AS DATE), CAST(started_at AS DATE),
                 CAST(requested_at AS DATE)) AS night,
        flow_id,
        job_name,
        record_type,
        run_key,
        outcome,
        landed_at,
        requested_at
    FROM batches
)
SELECT
    batch_id,
    night,
    flow_id,
    job_name,
    record_type,
    run_key,
    outcome,
    row_number() OVER (
        PARTITION BY flow_id, record_type, night
        ORDER BY landed_at IS NOT NULL DESC, requested_at DESC NULLS LAST, batch_id DESC
    ) = 1 AS is_current
FROM nights;
