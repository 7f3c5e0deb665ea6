-- record_costs -- grain: one record (over every batch that ran it).
-- Columns: record_id, record_name, record_type, executions (steps run), runs (batches),
-- failed_steps, tokens, estimated_cost_usd, first_night, last_night.
CREATE OR REPLACE VIEW record_costs AS
-- Per record and batch first, then per record: cheaper than count(DISTINCT batch) over steps.
WITH runs AS (
    SELECT
        record_id,
        batch_execution_id,
        any_value(record_name) AS record_name,
        any_value(record_type) AS record_type,
        any_value(night) AS night,
        count(*) AS executions,
        count(*) FILTER (WHERE NOT succeeded) AS failed_steps,
        sum(total_tokens) AS tokens,
        sum(estimated_cost) AS estimated_cost
    FROM step_facts
    GROUP BY record_id, batch_execution_id
)
SELECT
    record_id,
    any_value(record_name) AS record_name,
    any_value(record_type) AS record_type,
    CAST(sum(executions) AS BIGINT) AS executions,
    count(*) AS runs,
    CAST(sum(failed_steps) AS BIGINT) AS failed_steps,
    CAST(coalesce(sum(tokens), 0) AS BIGINT) AS tokens,
    CAST(coalesce(sum(estimated_cost), 0) AS DOUBLE) AS estimated_cost_usd,
    min(night) AS first_night,
    max(night) AS last_night
FROM runs
GROUP BY record_id;
