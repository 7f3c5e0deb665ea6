-- chronic_failures -- grain: one record (and flow) that failed on at least 3 of the last 5
-- nights it ran: the records that fail night after night, not the night's noise.
-- Columns: record_id, record_name, record_type, flow_id, job_name, nights_run (of the last 5),
-- nights_failed, last_night (it ran), last_failed_night, last_error_class (of that failure),
-- metadata (JSON, from the records dimension).
CREATE OR REPLACE VIEW chronic_failures AS
WITH recent AS (
    SELECT
        *,
        row_number() OVER (PARTITION BY record_id, flow_id ORDER BY night DESC, batch_id DESC)
            AS nth
    FROM record_history
    WHERE night IS NOT NULL
)
SELECT
    record_id,
    any_value(record_name) AS record_name,
    any_value(record_type) AS record_type,
    flow_id,
    any_value(job_name) AS job_name,
    count(*) AS nights_run,
    count(*) FILTER (WHERE NOT success) AS nights_failed,
    max(night) AS last_night,
    max(night) FILTER (WHERE NOT success) AS last_failed_night,
    arg_max(error_class, night) FILTER (WHERE NOT success) AS last_error_class,
    any_value(metadata) AS metadata
FROM recent
WHERE nth <= 5
GROUP BY record_id, flow_id
HAVING count(*) FILTER (WHERE NOT success) >= 3;
