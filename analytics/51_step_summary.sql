-- step_summary(first_night, last_night, record_types, flow) -- a table macro; grain: one step
-- of one flow for one record type over the selection (see in_selection).
-- Columns: record_type, flow_id, step_order, step_name, step_type, executions, failures,
-- failure_rate, p50/p95/p99 duration in seconds (pooled over the selection's executions),
-- retries (sum of retry_count), tokens, estimated_cost_usd (sum of the steps' estimates),
-- estimated_cost_per_execution_usd.
CREATE OR REPLACE MACRO step_summary(first_night, last_night, record_types, flow) AS TABLE
WITH steps AS (
    SELECT
        record_type,
        flow_id,
        step_order,
        step_name,
        step_type,
        step_measures(succeeded, duration_s) AS m,
        sum(retry_count) AS retries,
        CAST(coalesce(sum(total_tokens), 0) AS BIGINT) AS tokens,
        CAST(coalesce(sum(estimated_cost), 0) AS DOUBLE) AS estimated_cost_usd,
        CAST(coalesce(sum(estimated_cost), 0) AS DOUBLE) / count(*)
            AS estimated_cost_per_execution_usd
    FROM step_facts
    WHERE in_selection(night, record_type, flow_id, first_night, last_night, record_types, flow)
    GROUP BY ALL
)
SELECT * EXCLUDE (m), m.*
FROM steps;
