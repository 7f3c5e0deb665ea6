-- record_facts -- grain: one record's execution in one batch.
-- Columns: every record_results column, plus night (from batch_nights), job_name, run_key,
-- batch_outcome and error_class.
CREATE OR REPLACE VIEW record_facts AS
SELECT
    r.*,
    n.night,
    n.job_name,
    n.run_key,
    n.outcome AS batch_outcome,
    error_class(r.error) AS error_class
FROM record_results r
LEFT JOIN batch_nights n USING (batch_id);
