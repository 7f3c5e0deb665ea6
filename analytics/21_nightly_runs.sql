-- nightly_runs -- grain: one night, all record types together.
-- Columns: night, batches, record_types, records, succeeded, failed, success_rate,
-- p50/p95/p99/max execution time in seconds, tokens, estimated_cost_usd (sum of the steps'
-- estimates), billed_cost_usd (sum of the API's batch costs; NULL when it reported none): each
-- job's current batch of the night (see batch_nights).
CREATE OR REPLACE VIEW nightly_runs AS
WITH records AS (
    SELECT
        night,
        count(DISTINCT batch_id) AS batches,
        count(DISTINCT record_type) AS record_types,
        record_measures(success, execution_time_s) AS m
    FROM record_facts
    GROUP BY night
),
spend AS (
    SELECT
        night,
        sum(tokens) AS tokens,
        sum(estimated_cost_usd) AS estimated_cost_usd,
        sum(billed_cost_usd) AS billed_cost_usd
    FROM batch_runs
    WHERE is_current
    GROUP BY night
)
SELECT
    r.* EXCLUDE (m),
    unnest(r.m),
    CAST(coalesce(s.tokens, 0) AS BIGINT) AS tokens,
    coalesce(s.estimated_cost_usd, 0) AS estimated_cost_usd,
    s.billed_cost_usd
FROM records r
LEFT JOIN spend s USING (night);
