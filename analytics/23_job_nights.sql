-- job_nights -- grain: one job (flow × record type) on one night: what the quality gate judges.
-- Columns: flow_id, record_type, night, job_name, records, failed, success_rate,
-- failure_rate, p50_s, p95_s (execution time in seconds).
CREATE OR REPLACE VIEW job_nights AS
SELECT
    flow_id,
    record_type,
    night,
    any_value(job_name) AS job_name,
    count(*) AS records,
    count(*) FILTER (WHERE NOT success) AS failed,
    success_rate(success) AS success_rate,
    1 - success_rate(success) AS failure_rate,
    quantile_cont(execution_time_s, 0.50) AS p50_s,
    quantile_cont(execution_time_s, 0.95) AS p95_s
FROM record_facts
GROUP BY flow_id, record_type, night;
