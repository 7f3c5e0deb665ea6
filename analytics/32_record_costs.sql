-- record_costs -- grain: one record (over every batch that ran it).
-- Columns: record_id, record_name, record_type, executions (steps run), runs (record results:
-- the batches that ran it), failed_steps, tokens, estimated_cost_usd, first_night, last_night.
CREATE OR REPLACE VIEW record_costs AS
-- The steps' numbers per record straight from step_results (numbers only: no join or text per
-- step row), the record's name, type, runs and nights from its record results; then joined.
WITH steps AS (
    SELECT
        record_id,
        count(*) AS executions,
        count(*) FILTER (WHERE status <> 'completed') AS failed_steps,
        sum(total_tokens) AS tokens,
        sum(estimated_cost) AS estimated_cost
    FROM step_results
    GROUP BY record_id
),
runs AS (
    SELECT
        r.record_id,
        any_value(r.record_name) AS record_name,
        any_value(coalesce(r.record_type, n.record_type)) AS record_type,
        count(*) AS runs,
        min(n.night) AS first_night,
        max(n.night) AS last_night
    FROM record_results r
    LEFT JOIN batch_nights n USING (batch_id)
    GROUP BY r.record_id
)
SELECT
    s.record_id,
    r.record_name,
    r.record_type,
    s.executions,
    coalesce(r.runs, 0) AS runs,
    s.failed_steps,
    CAST(coalesce(s.tokens, 0) AS BIGINT) AS tokens,
    CAST(coalesce(s.estimated_cost, 0) AS DOUBLE) AS estimated_cost_usd,
    r.first_night,
    r.last_night
FROM steps s
LEFT JOIN runs r USING (record_id);
