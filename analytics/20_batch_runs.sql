-- batch_runs -- grain: one batch (one job on one night).
-- Columns: batch_id, night, record_type, flow_id, job_name, outcome, remote status, records,
-- succeeded, failed, success_rate (0-1, NULL without records), p50/p95/p99/max execution time
-- in seconds, cost_usd, started_at, completed_at, landed_at.
CREATE OR REPLACE VIEW batch_runs AS
SELECT
    b.batch_id,
    coalesce(try_cast(b.run_key AS DATE), CAST(b.started_at AS DATE),
             CAST(b.requested_at AS DATE)) AS night,
    b.record_type,
    b.flow_id,
    b.job_name,
    b.outcome,
    b.status,
    count(r.record_id) AS records,
    count(r.record_id) FILTER (WHERE r.success) AS succeeded,
    count(r.record_id) FILTER (WHERE NOT r.success) AS failed,
    count(r.record_id) FILTER (WHERE r.success) / nullif(count(r.record_id), 0) AS success_rate,
    quantile_cont(r.execution_time_s, 0.50) AS p50_s,
    quantile_cont(r.execution_time_s, 0.95) AS p95_s,
    quantile_cont(r.execution_time_s, 0.99) AS p99_s,
    max(r.execution_time_s) AS max_s,
    b.total_cost_usd AS cost_usd,
    b.started_at,
    b.completed_at,
    b.landed_at
FROM batches b
LEFT JOIN record_results r USING (batch_id)
GROUP BY ALL;
