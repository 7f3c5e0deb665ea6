-- batch_nights -- grain: one batch. The one definition of the night a result belongs to; every
-- model takes its night from here, with the batch's context, so a result row needs one join.
-- Columns: batch_id, night (the batch's run key when it is a date -- the scheduled night the
-- nightly ran for -- else the UTC day the batch started, else the day it was requested),
-- flow_id, job_name, record_type, run_key, part, outcome, is_current.
-- part: which start of the job-night the batch is ('' the run over the whole record type;
-- 'incremental 1/2', 'repair 1/1' runs over chosen records), from the start ledger.
-- is_current: the batch that counts for its job (flow x record type) and part on its night. A
-- part run again (`force`) has several batches; the latest one that landed completely counts
-- (the latest requested while none has), and the others stay here as history. Every model
-- that counts or judges per job-night reads only current batches, so a re-run never doubles a
-- night, while the parts of a night over chosen records all count.
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
        coalesce(i.part, '') AS part,
        outcome,
        landed_at,
        b.requested_at
    FROM batches b
    LEFT JOIN (SELECT batch_id, any_value(part) AS part FROM run_intents
               WHERE batch_id IS NOT NULL GROUP BY batch_id) i USING (batch_id)
)
SELECT
    batch_id,
    night,
    flow_id,
    job_name,
    record_type,
    run_key,
    part,
    outcome,
    row_number() OVER (
        PARTITION BY flow_id, record_type, night, part
        ORDER BY landed_at IS NOT NULL DESC, requested_at DESC NULLS LAST, batch_id DESC
    ) = 1 AS is_current
FROM nights;
