-- unit_facts -- grain: one execution of one unit of a job, where a unit is a step of the job's
-- flow (unit = 'step', name = the step's name) or a model its prompt steps call (unit =
-- 'model', name = the model): a prompt step's execution counts once for each. The night's
-- first attempts only, as job_nights: repairs are left out. What the quality gate names when
-- a job's night moved.
-- Columns: flow_id, record_type, night, unit, name, step_type ('prompt' for a model), model
-- (the step's model, or the model itself), succeeded, duration_s.
CREATE OR REPLACE VIEW unit_facts AS
WITH steps AS (
    SELECT s.flow_id, s.record_type, s.night, s.step_name, s.step_type, s.model_used,
        s.succeeded, s.duration_s
    FROM step_facts s
    JOIN batch_nights n ON n.batch_id = s.batch_execution_id
    WHERE NOT is_repair_part(n.part)
)
SELECT flow_id, record_type, night, 'step' AS unit, step_name AS name, step_type,
    model_used AS model, succeeded, duration_s
FROM steps
UNION ALL
SELECT flow_id, record_type, night, 'model', model_used, 'prompt', model_used, succeeded,
    duration_s
FROM steps
WHERE model_used IS NOT NULL;
