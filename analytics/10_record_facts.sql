-- record_facts -- grain: one record's execution in one batch.
-- Columns: every record_results column, plus night (the batch's run key when it is a date,
-- else the day the batch started), job_name, run_key, batch_outcome and error_class.
CREATE OR REPLACE VIEW record_facts AS
SELECT
    r.*,
    coalesce(try_cast(b.run_key AS DATE), CAST(b.started_at AS DATE),
             CAST(r.executed_at AS DATE)) AS night,
    b.job_name,
    b.run_key,
    b.outcome AS batch_outcome,
    error_class(r.error) AS error_class
FROM record_results r
LEFT JOIN batches b USING (batch_id);
