-- quality_history -- grain: one job (flow × record type) on one night, for one metric of the
-- quality gate (success_rate, p95_s). Columns: night, flow_id, record_type, job, metric,
-- verdict (ok / degraded / no_verdict), records, current_value, baseline_value, change
-- (success_rate: points, p95_s: relative), p_value, alpha, min_effect, degraded_since,
-- degraded_nights, reason.
CREATE OR REPLACE VIEW quality_history AS
SELECT
    night,
    flow_id,
    record_type,
    coalesce(job_name, flow_id) || ' · ' || record_type AS job,
    metric,
    verdict,
    records,
    current_value,
    baseline_value,
    CASE metric
        WHEN 'success_rate' THEN current_value - baseline_value
        ELSE current_value / nullif(baseline_value, 0) - 1
    END AS change,
    p_value,
    alpha,
    min_effect,
    degraded_since,
    degraded_nights,
    reason
FROM quality_verdicts;
