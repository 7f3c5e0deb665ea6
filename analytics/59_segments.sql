-- segments(field, first_night, last_night, record_types, flow) -- a table macro; grain: one
-- value of the records' metadata field ``field`` (a top-level key, e.g. 'plan') over the
-- selection (see in_selection). Records whose type's listing has not landed, or that lack the
-- key, form the NULL segment.
-- Columns: segment, records (executions), distinct_records, succeeded, success_rate,
-- success_rate_low and success_rate_high (95 % Wilson interval), p50_s, p95_s.
CREATE OR REPLACE MACRO segments(field, first_night, last_night, record_types, flow) AS TABLE
WITH s AS (
    SELECT
        json_extract_string(metadata, '$."' || field || '"') AS segment,
        count(*) AS records,
        count(DISTINCT record_id) AS distinct_records,
        count(*) FILTER (WHERE success) AS succeeded,
        success_rate(success) AS success_rate,
        quantile_cont(execution_time_s, 0.50) AS p50_s,
        quantile_cont(execution_time_s, 0.95) AS p95_s
    FROM record_history
    WHERE in_selection(night, record_type, flow_id, first_night, last_night, record_types, flow)
    GROUP BY ALL
)
SELECT
    segment,
    records,
    distinct_records,
    succeeded,
    success_rate,
    wilson_low(succeeded, records) AS success_rate_low,
    wilson_high(succeeded, records) AS success_rate_high,
    p50_s,
    p95_s
FROM s;
