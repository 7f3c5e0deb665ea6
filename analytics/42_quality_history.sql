-- quality_history -- grain: one job (flow × record type) on one night, for one metric of the
-- quality gate (success_rate, p95_s). Columns: night, flow_id, record_type, job, metric,
-- verdict (ok / degraded / no_verdict), records, current_value, baseline_value, change
-- (success_rate: points, p95_s: relative), p_value, alpha, min_effect, degraded_since,
-- degraded_nights, reason, moved (the first step or model the verdict names, in words: 'step
-- "Fetch CRM account" (api-call): failures 9 of 40'; NULL when it names none).
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
    reason,
    CASE WHEN json_array_length(attribution) > 0 THEN
        CASE attribution ->> '$[0].unit'
            WHEN 'step' THEN 'step "' || (attribution ->> '$[0].name') || '" ('
                || (attribution ->> '$[0].step_type') || ')'
            ELSE 'model ' || (attribution ->> '$[0].name')
        END
        || CASE attribution ->> '$[0].measure' WHEN 'failures' THEN ': failures '
            ELSE ': slower than usual ' END
        || (attribution ->> '$[0].bad') || ' of ' || (attribution ->> '$[0].executions')
    END AS moved
FROM quality_verdicts;
