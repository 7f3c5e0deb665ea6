-- record_costs -- grain: one record (over every batch that ran it).
-- Columns: record_id, record_name, record_type, executions (steps run), runs (batches),
-- failed_steps, tokens, estimated_cost_usd, first_night, last_night.
CREATE OR REPLACE VIEW record_costs AS
-- Per record and batch straight from the steps (no join per step row), the batch's night joined
-- to those, then per record: a night is a batch's, so the result is the same.
WITH runs AS (
    SELECT
        record_id,
        batch_execution_id AS batch_id,
        any_value(record_name) AS record_name,
        any_value(record_type) AS record_type,
        count(*) AS executions,
        count(*) FILTER (WHERE status <> 'completed') AS failed_steps,
        sum(total_tokens) AS tokens,
        sum(estimated_cost) AS estimated_cost
    FROM step_results
    GROUP BY record_id, batch_execution_id
)
SELECT
    r.record_id,
    any_value(r.record_name) AS record_name,
    any_value(coalesce(r.record_type, n.record_type)) AS record_type,
    CAST(sum(r.executions) AS BIGINT) AS executions,
    count(*) AS runs,
    CAST(sum(r.failed_steps) AS BIGINT) AS failed_steps,
    CAST(coalesce(sum(r.tokens), 0) AS BIGINT) AS tokens,
    CAST(coalesce(sum(r.estimated_cost), 0) AS DOUBLE) AS estimated_cost_usd,
    min(n.night) AS first_night,
    max(n.night) AS last_night
FROM runs r
LEFT JOIN batch_nights n USING (batch_id)
GROUP BY r.record_id;
