-- job_nights -- grain: one job (flow × record type) on one night: what the quality gate judges.
-- The night's first attempts: the records it ran (all of them, or an incremental night's
-- choice), without its repairs, so a repair never hides a bad night from the gate.
-- Columns: flow_id, record_type, night, job_name, records, failed, success_rate,
-- failure_rate, p50_s, p95_s (execution time in seconds).
CREATE OR REPLACE VIEW job_nights AS
WITH jobs AS (
    SELECT
        flow_id,
        record_type,
        night,
        any_value(job_name) AS job_name,
        record_measures(success, execution_time_s) AS m
    FROM record_facts
    WHERE NOT is_repair_part(part)
    GROUP BY flow_id, record_type, night
)
SELECT
    flow_id,
    record_type,
    night,
    job_name,
    m.records,
    m.failed,
    m.success_rate,
    1 - m.success_rate AS failure_rate,
    m.p50_s,
    m.p95_s
FROM jobs;
