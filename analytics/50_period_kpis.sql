-- period_kpis(first_night, last_night, record_types) -- a table macro; grain: one row for the
-- nights first_night..last_night (inclusive) of the record types in the list record_types
-- (NULL bounds: every night, every type; see in_selection). What the report's KPI cards compare.
-- Columns: nights (with records), records_per_night, success_rate, p50_s and p95_s (execution
-- time in seconds, pooled over the period's records: each record's state on each night, see
-- record_state), estimated_cost_per_night_usd,
-- billed_cost_per_night_usd (NULL when the API reported no cost), estimated_cost_per_success_usd,
-- retry_rate (share of steps retried at least once).
CREATE OR REPLACE MACRO period_kpis(first_night, last_night, record_types) AS TABLE
WITH records AS (
    SELECT
        count(DISTINCT night) AS nights,
        record_measures(success, execution_time_s) AS m
    FROM record_state
    WHERE in_selection(night, record_type, NULL, first_night, last_night, record_types, NULL)
),
attempts AS (  -- what ran, and so what was paid for
    SELECT count(*) FILTER (WHERE success) AS succeeded
    FROM record_facts
    WHERE in_selection(night, record_type, NULL, first_night, last_night, record_types, NULL)
),
spend AS (
    SELECT
        sum(estimated_cost_usd) AS estimated_cost_usd,
        sum(billed_cost_usd) AS billed_cost_usd
    FROM batch_runs
    WHERE is_current AND in_selection(night, record_type, NULL, first_night, last_night, record_types, NULL)
),
retries AS (
    SELECT count_if(retry_count > 0) / nullif(count(*), 0) AS retry_rate
    FROM step_facts
    WHERE in_selection(night, record_type, NULL, first_night, last_night, record_types, NULL)
)
SELECT
    nights,
    m.records / nullif(nights, 0) AS records_per_night,
    m.success_rate,
    m.p50_s,
    m.p95_s,
    CAST(coalesce(estimated_cost_usd, 0) AS DOUBLE) / nullif(nights, 0)
        AS estimated_cost_per_night_usd,
    CAST(billed_cost_usd AS DOUBLE) / nullif(nights, 0) AS billed_cost_per_night_usd,
    CAST(estimated_cost_usd AS DOUBLE) / nullif(attempts.succeeded, 0)
        AS estimated_cost_per_success_usd,
    retry_rate
FROM records, attempts, spend, retries;
