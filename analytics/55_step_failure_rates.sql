-- step_failure_rates(first_night, last_night, record_types, flow) -- a table macro; grain: one
-- step of one record type over the selection (see in_selection): the failure heatmap's cells.
-- Counts straight from step_facts (step_performance would compute percentiles it does not need).
-- Columns: record_type, step_order, step_name, executions, failures, failure_rate.
CREATE OR REPLACE MACRO step_failure_rates(first_night, last_night, record_types, flow) AS TABLE
SELECT
    record_type,
    step_order,
    step_name,
    count(*) AS executions,
    count(*) FILTER (WHERE NOT succeeded) AS failures,
    1 - success_rate(succeeded) AS failure_rate
FROM step_facts
WHERE in_selection(night, record_type, flow_id, first_night, last_night, record_types, flow)
GROUP BY ALL;
