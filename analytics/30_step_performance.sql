-- step_performance -- grain: one step of one flow, for one record type on one night.
-- Columns: night, record_type, flow_id, step_order, step_id, step_name, step_type, executions,
-- failures, failure_rate, p50/p95/p99/max duration in seconds, retries (sum of retry_count),
-- retried_share (share of executions retried at least once), tokens, estimated_cost_usd (sum
-- of the steps' estimates; 0 for steps that call no model).
CREATE OR REPLACE VIEW step_performance AS
WITH steps AS (
    SELECT
        night,
        record_type,
        flow_id,
        step_order,
        step_id,
        step_name,
        step_type,
        step_measures(succeeded, duration_s) AS m,
        sum(retry_count) AS retries,
        count_if(retry_count > 0) / count(*) AS retried_share,
        CAST(coalesce(sum(total_tokens), 0) AS BIGINT) AS tokens,
        CAST(coalesce(sum(estimated_cost), 0) AS DOUBLE) AS estimated_cost_usd
    FROM step_facts
    GROUP BY ALL
)
SELECT * EXCLUDE (m), m.*
FROM steps;
