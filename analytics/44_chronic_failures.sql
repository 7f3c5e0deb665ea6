-- chronic_failures -- grain: one record (and flow) that failed on at least 3 of the last 5
-- nights it ran: the records that fail night after night, not the night's noise.
-- Columns: record_id, record_name, record_type, flow_id, job_name, nights_run (of the last 5),
-- nights_failed, last_night (it ran), last_failed_night, last_error_class (of that failure),
-- metadata (JSON, from the records dimension).
CREATE OR REPLACE VIEW chronic_failures AS
-- Only records that failed at least 3 times at all can have failed on 3 of their last 5 nights,
-- so the window runs over those records' rows alone (exact, and a small share of the rows);
-- the error class and the records dimension are looked up for the qualifying records only.
WITH candidates AS (
    SELECT record_id, flow_id
    FROM record_results
    WHERE NOT success
    GROUP BY record_id, flow_id
    HAVING count(*) >= 3
),
recent AS (
    SELECT
        r.record_id,
        r.flow_id,
        r.record_name,
        r.record_type,
        r.success,
        r.error,
        n.night,
        n.job_name
    FROM record_results r
    SEMI JOIN candidates c ON c.record_id = r.record_id AND c.flow_id = r.flow_id
    JOIN batch_nights n USING (batch_id)
    WHERE n.is_current
    QUALIFY row_number() OVER (
        PARTITION BY r.record_id, r.flow_id ORDER BY n.night DESC, r.batch_id DESC
    ) <= 5
),
chronic AS (
    SELECT
        record_id,
        flow_id,
        any_value(record_name) AS record_name,
        any_value(record_type) AS record_type,
        any_value(job_name) AS job_name,
        count(*) AS nights_run,
        count(*) FILTER (WHERE NOT success) AS nights_failed,
        max(night) AS last_night,
        max(night) FILTER (WHERE NOT success) AS last_failed_night,
        arg_max(error, night) FILTER (WHERE NOT success) AS last_error
    FROM recent
    GROUP BY record_id, flow_id
    HAVING count(*) FILTER (WHERE NOT success) >= 3
)
SELECT
    c.record_id,
    coalesce(d.name, c.record_name) AS record_name,
    c.record_type,
    c.flow_id,
    c.job_name,
    c.nights_run,
    c.nights_failed,
    c.last_night,
    c.last_failed_night,
    error_class(c.last_error) AS last_error_class,
    d.metadata
FROM chronic c
LEFT JOIN records d USING (record_id);
