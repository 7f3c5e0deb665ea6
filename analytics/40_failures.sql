-- failures -- grain: one error class at one step of one record type on one night.
-- Columns: night, error_class, record_type, flow_id, step_name, step_type, failures,
-- records (distinct records hit), first_seen, last_seen (timestamps), example (the class's
-- latest raw message). Sum failures and take min/max of the timestamps to look across nights.
CREATE OR REPLACE VIEW failures AS
SELECT
    night,
    error_class,
    record_type,
    flow_id,
    step_name,
    step_type,
    count(*) AS failures,
    count(DISTINCT record_id) AS records,
    min(completed_at) AS first_seen,
    max(completed_at) AS last_seen,
    -- The latest message (ties: the greatest), so a report built twice is the same page.
    arg_max(error_message, (completed_at, error_message)) AS example
FROM step_facts
WHERE NOT succeeded
GROUP BY ALL;
