-- unit_nights -- grain: one unit (a step or a model, see unit_facts) of one job on one night.
-- Columns: flow_id, record_type, night, unit, name, step_type, model, executions, failed, p95_s
-- (duration in seconds).
CREATE OR REPLACE VIEW unit_nights AS
SELECT
    flow_id,
    record_type,
    night,
    unit,
    name,
    any_value(step_type) AS step_type,
    any_value(model) AS model,
    count(*) AS executions,
    count(*) FILTER (WHERE NOT succeeded) AS failed,
    quantile_cont(duration_s, 0.95) AS p95_s
FROM unit_facts
GROUP BY flow_id, record_type, night, unit, name;
