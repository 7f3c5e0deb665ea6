-- failure_summary(first_night, last_night, record_types, flow) -- a table macro; grain: one
-- error class at one step of one record type over the selection (see in_selection).
-- Columns: error_class, record_type, step_name, step_type, failures, records (summed over
-- nights), nights (with failures of the class), first_seen, last_seen, example.
CREATE OR REPLACE MACRO failure_summary(first_night, last_night, record_types, flow) AS TABLE
SELECT
    error_class,
    record_type,
    step_name,
    step_type,
    CAST(sum(failures) AS BIGINT) AS failures,
    CAST(sum(records) AS BIGINT) AS records,
    count(DISTINCT night) AS nights,
    min(first_seen) AS first_seen,
    max(last_seen) AS last_seen,
    arg_max(example, (last_seen, example)) AS example
FROM failures
WHERE in_selection(night, record_type, flow_id, first_night, last_night, record_types, flow)
GROUP BY ALL;
