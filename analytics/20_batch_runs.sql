-- batch_runs -- grain: one batch (one job on one night). What a job's summary reports.
-- Columns: batch_id, night, record_type, flow_id, job_name, outcome, remote status, records,
-- succeeded, failed, success_rate (0-1, NULL without records), p50/p95/p99/max execution time
-- in seconds, steps, tokens, estimated_cost_usd (the sum of the steps' cost estimates),
-- billed_cost_usd (the cost the API reports for the batch; NULL when it reported none),
-- started_at, completed_at, landed_at, prefect_flow_run_id (the Prefect run that started it),
-- is_current (the batch that counts for its job-night; a re-run's earlier batches are history:
-- models that sum per night read only current ones).
CREATE OR REPLACE VIEW batch_runs AS
WITH records AS (
    SELECT batch_id, record_measures(success, execution_time_s) AS m
    FROM record_results
    GROUP BY batch_id
),
steps AS (
    SELECT
        batch_execution_id AS batch_id,
        count(*) AS steps,
        sum(total_tokens) AS tokens,
        sum(estimated_cost) AS estimated_cost
    FROM step_results
    GROUP BY batch_execution_id
)
SELECT
    b.batch_id,
    n.night,
    b.record_type,
    b.flow_id,
    b.job_name,
    b.outcome,
    b.status,
    coalesce(r.m.records, 0) AS records,
    coalesce(r.m.succeeded, 0) AS succeeded,
    coalesce(r.m.failed, 0) AS failed,
    r.m.success_rate,
    r.m.p50_s,
    r.m.p95_s,
    r.m.p99_s,
    r.m.max_s,
    coalesce(s.steps, 0) AS steps,
    CAST(coalesce(s.tokens, 0) AS BIGINT) AS tokens,
    CAST(coalesce(s.estimated_cost, 0) AS DOUBLE) AS estimated_cost_usd,
    CAST(b.total_cost_usd AS DOUBLE) AS billed_cost_usd,
    b.started_at,
    b.completed_at,
    b.landed_at,
    b.prefect_flow_run_id,
    n.is_current
FROM batches b
JOIN batch_nights n USING (batch_id)
LEFT JOIN records r USING (batch_id)
LEFT JOIN steps s USING (batch_id);
