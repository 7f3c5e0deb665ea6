-- record_type_nights -- grain: one record type on one night (the trend view).
-- Columns: record_type, night, records, succeeded, failed, success_rate, success_rate_low and
-- success_rate_high (its 95 % Wilson interval), p50/p95/p99/max
-- execution time in seconds -- all over the record type's state that night (each record's
-- latest result, see record_state: the same as the night's results when it ran every record) --
-- then attempts, attempts_failed and attempt_success_rate (the records that ran that night),
-- tokens, estimated_cost_usd (sum of the steps' estimates), billed_cost_usd (sum of the API's
-- batch costs; NULL when it reported none), estimated_cost_per_success_usd (over the night's
-- successful attempts; NULL when none succeeded).
CREATE OR REPLACE VIEW record_type_nights AS
WITH records AS (
    SELECT
        record_type,
        night,
        record_measures(success, execution_time_s) AS m
    FROM record_state
    GROUP BY ALL
),
attempts AS (
    SELECT
        record_type,
        night,
        count(*) AS attempts,
        count(*) FILTER (WHERE NOT success) AS attempts_failed,
        success_rate(success) AS attempt_success_rate
    FROM record_facts
    GROUP BY ALL
),
spend AS (
    SELECT
        record_type,
        night,
        sum(tokens) AS tokens,
        sum(estimated_cost_usd) AS estimated_cost_usd,
        sum(billed_cost_usd) AS billed_cost_usd
    FROM batch_runs
    WHERE is_current
    GROUP BY ALL
)
SELECT
    r.record_type,
    r.night,
    unnest(r.m),
    wilson_low(r.m.succeeded, r.m.records) AS success_rate_low,
    wilson_high(r.m.succeeded, r.m.records) AS success_rate_high,
    a.attempts,
    a.attempts_failed,
    a.attempt_success_rate,
    CAST(coalesce(s.tokens, 0) AS BIGINT) AS tokens,
    coalesce(s.estimated_cost_usd, 0) AS estimated_cost_usd,
    s.billed_cost_usd,
    s.estimated_cost_usd / nullif(a.attempts - a.attempts_failed, 0)
        AS estimated_cost_per_success_usd
FROM records r
LEFT JOIN attempts a USING (record_type, night)
LEFT JOIN spend s USING (record_type, night);
