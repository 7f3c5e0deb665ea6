-- flow_versions(first_night, last_night, record_types, flow) -- a table macro; grain: one
-- version of one flow over one record type, within the selection (see in_selection). "Did
-- version 7 of the prompt help?" A record's version is the flow_version_id its steps ran;
-- records without landed steps have none and are left out.
-- Columns: flow_id, flow_version_id, record_type, first_seen_night, last_seen_night, nights,
-- records, succeeded, success_rate, success_rate_low and success_rate_high (95 % Wilson
-- interval), p50_s and p95_s (execution time in seconds), estimated_cost_usd,
-- estimated_cost_per_success_usd (NULL when none succeeded).
CREATE OR REPLACE MACRO flow_versions(first_night, last_night, record_types, flow) AS TABLE
WITH record_versions AS (
    SELECT
        batch_execution_id AS batch_id,
        record_id,
        any_value(flow_version_id) AS flow_version_id,
        sum(estimated_cost) AS estimated_cost
    FROM step_results
    WHERE flow_version_id IS NOT NULL
    GROUP BY ALL
),
versions AS (
    SELECT
        r.flow_id,
        v.flow_version_id,
        r.record_type,
        min(r.night) AS first_seen_night,
        max(r.night) AS last_seen_night,
        count(DISTINCT r.night) AS nights,
        record_measures(r.success, r.execution_time_s) AS m,
        CAST(coalesce(sum(v.estimated_cost), 0) AS DOUBLE) AS estimated_cost_usd
    FROM record_facts r
    JOIN record_versions v USING (batch_id, record_id)
    WHERE in_selection(r.night, r.record_type, r.flow_id, first_night, last_night, record_types, flow)
    GROUP BY ALL
)
SELECT
    flow_id,
    flow_version_id,
    record_type,
    first_seen_night,
    last_seen_night,
    nights,
    m.records,
    m.succeeded,
    m.success_rate,
    wilson_low(m.succeeded, m.records) AS success_rate_low,
    wilson_high(m.succeeded, m.records) AS success_rate_high,
    m.p50_s,
    m.p95_s,
    estimated_cost_usd,
    estimated_cost_usd / nullif(m.succeeded, 0) AS estimated_cost_per_success_usd
FROM versions;
