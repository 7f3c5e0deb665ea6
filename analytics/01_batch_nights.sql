-- batch_nights -- grain: one batch. The one definition of the night a result belongs to; every
-- model takes its night from here, with the batch's context, so a result row needs one join.
-- Columns: batch_id, night (the batch's run key when it is a date -- the scheduled night the
-- nightly ran for -- else the UTC day the batch started, else the day it was requested),
-- job_name, record_type, run_key, outcome.
CREATE OR REPLACE VIEW batch_nights AS
SELECT
    batch_id,
    coalesce(try_cast(run_key AS DATE), CAST(started_at AS DATE),
             CAST(requested_at AS DATE)) AS night,
    job_name,
    record_type,
    run_key,
    outcome
FROM batches;
