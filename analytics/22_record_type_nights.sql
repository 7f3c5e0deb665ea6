-- record_type_nights -- grain: one record type on one night (the trend view).
-- Columns: record_type, night, records, succeeded, failed, success_rate, p50/p95/p99/max
-- execution time in seconds, tokens, cost_usd, cost_per_success_usd (NULL when none succeeded).
CREATE OR REPLACE VIEW record_type_nights AS
WITH records AS (
    SELECT
        record_type,
        night,
        count(*) AS records,
        count(*) FILTER (WHERE success) AS succeeded,
        count(*) FILTER (WHERE NOT success) AS failed,
        quantile_cont(execution_time_s, 0.50) AS p50_s,
        quantile_cont(execution_time_s, 0.95) AS p95_s,
        quantile_cont(execution_time_s, 0.99) AS p99_s,
        max(execution_time_s) AS max_s
    FROM record_facts
    GROUP BY ALL
),
spend AS (
    SELECT record_type, night, sum(total_tokens) AS tokens, sum(estimated_cost) AS cost_usd
    FROM step_facts
    GROUP BY ALL
)
SELECT
    r.*,
    r.succeeded / r.records AS success_rate,
    coalesce(s.tokens, 0) AS tokens,
    CAST(coalesce(s.cost_usd, 0) AS DOUBLE) AS cost_usd,
    CAST(s.cost_usd AS DOUBLE) / nullif(r.succeeded, 0) AS cost_per_success_usd
FROM records r
LEFT JOIN spend s USING (record_type, night);
