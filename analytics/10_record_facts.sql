-- record_facts -- grain: one record's execution in one batch.
-- Columns: every record_results column, plus night (from batch_nights), job_name, run_key,
-- part (of the night: '' a run over the whole record type), batch_outcome and error_class. Only the current batch of each job-night (see batch_nights):
-- a night run again counts once; record_history keeps every attempt.
CREATE OR REPLACE VIEW record_facts AS
SELECT
    r.*,
    n.night,
    n.job_name,
    n.run_key,
    n.part,
    n.outcome AS batch_outcome,
    error_class(r.error) AS error_class
FROM record_results r
LEFT JOIN batch_nights n USING (batch_id)
WHERE n.is_current IS DISTINCT FROM false;
