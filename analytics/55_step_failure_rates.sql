-- step_failure_rates(first_night, last_night, record_types, flow) -- a table macro; grain: one
-- step of one record type over the selection (see in_selection): the failure heatmap's cells.
-- Columns: record_type, step_order, step_name, executions, failures, failure_rate.
CREATE OR REPLACE MACRO step_failure_rates(first_night, last_night, record_types, flow) AS TABLE
SELECT
    record_type,
    step_order,
    step_name,
    CAST(sum(executions) AS BIGINT) AS executions,
    CAST(sum(failures) AS BIGINT) AS failures,
    sum(failures) / sum(executions) AS failure_rate
FROM step_performance
WHERE in_selection(night, record_type, flow_id, first_night, last_night, record_types, flow)
GROUP BY ALL;
