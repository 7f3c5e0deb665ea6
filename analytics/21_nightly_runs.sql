-- nightly_runs -- grain: one night, all record types together.
-- Columns: night, batches, record_types, records, succeeded, failed, success_rate,
-- p50/p95/p99/max execution time in seconds, cost_usd.
CREATE OR REPLACE VIEW nightly_runs AS
WITH records AS (
    SELECT
        night,
        count(DISTINCT batch_id) AS batches,
        count(DISTINCT record_type) AS record_types,
        count(*) AS records,
        count(*) FILTER (WHERE success) AS succeeded,
        count(*) FILTER (WHERE NOT success) AS failed,
        count(*) FILTER (WHERE success) / count(*) AS success_rate,
        quantile_cont(execution_time_s, 0.50) AS p50_s,
        quantile_cont(execution_time_s, 0.95) AS p95_s,
        quantile_cont(execution_time_s, 0.99) AS p99_s,
        max(execution_time_s) AS max_s
    FROM record_facts
    GROUP BY night
),
spend AS (
    SELECT night, sum(cost_usd) AS cost_usd FROM batch_runs GROUP BY night
)
SELECT r.*, coalesce(s.cost_usd, 0) AS cost_usd
FROM records r
LEFT JOIN spend s USING (night);
