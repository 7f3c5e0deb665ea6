-- record_costs -- grain: one record (over every batch that ran it).
-- Columns: record_id, record_name, record_type, executions (steps run), runs (batches),
-- failed_steps, tokens, estimated_cost_usd, first_night, last_night.
CREATE OR REPLACE VIEW record_costs AS
SELECT
    record_id,
    any_value(record_name) AS record_name,
    any_value(record_type) AS record_type,
    count(*) AS executions,
    count(DISTINCT batch_execution_id) AS runs,
    count(*) FILTER (WHERE NOT succeeded) AS failed_steps,
    coalesce(sum(total_tokens), 0) AS tokens,
    CAST(coalesce(sum(estimated_cost), 0) AS DOUBLE) AS estimated_cost_usd,
    min(night) AS first_night,
    max(night) AS last_night
FROM step_facts
GROUP BY record_id;
