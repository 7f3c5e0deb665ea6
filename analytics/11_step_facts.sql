-- step_facts -- grain: one executed step of one record's execution.
-- Columns: every step_results column, plus night (from batch_nights), job_name, succeeded
-- (status = 'completed'), duration_s and error_class. Only the current batch of each job-night
-- (see batch_nights).
CREATE OR REPLACE VIEW step_facts AS
SELECT
    s.* EXCLUDE (record_type),
    coalesce(s.record_type, n.record_type) AS record_type,
    n.night,
    n.job_name,
    s.status = 'completed' AS succeeded,
    s.duration_ms / 1000.0 AS duration_s,
    error_class(s.error_message) AS error_class
FROM step_results s
LEFT JOIN batch_nights n ON n.batch_id = s.batch_execution_id
WHERE n.is_current IS DISTINCT FROM false;
