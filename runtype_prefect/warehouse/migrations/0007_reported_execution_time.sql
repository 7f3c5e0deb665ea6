-- One meaning for a record's execution time, steps and prompts: every batch's are derived from
-- its landed steps (analytics/07_record_step_totals.sql), immediate runs included. The figures
-- the API reports with an immediate run move to reported_* columns, kept for comparison.
ALTER TABLE record_results ADD COLUMN reported_execution_time_s DOUBLE;
ALTER TABLE record_results ADD COLUMN reported_context_steps INTEGER;
ALTER TABLE record_results ADD COLUMN reported_prompts_executed INTEGER;

UPDATE record_results SET
    reported_execution_time_s = execution_time_s,
    reported_context_steps = context_steps,
    reported_prompts_executed = prompts_executed,
    execution_time_s = NULL, context_steps = NULL, prompts_executed = NULL
WHERE batch_id IN (SELECT batch_id FROM batches WHERE executed_immediately);

-- Then the immediate rows already landed take the figures derived from their steps (NULL when
-- none landed, as for a deferred batch). A migration is frozen with the schema it upgrades, so
-- it states the model's definition as it stands today rather than calling it.
UPDATE record_results r SET
    execution_time_s = s.seconds, context_steps = s.steps, prompts_executed = s.prompts
FROM (
    SELECT batch_execution_id, record_id,
           epoch(max(completed_at) - min(started_at)) AS seconds,
           count(*) AS steps,
           count(*) FILTER (WHERE step_type = 'prompt') AS prompts
    FROM step_results
    WHERE batch_execution_id IN (SELECT batch_id FROM batches WHERE executed_immediately)
    GROUP BY ALL
) s
WHERE r.batch_id = s.batch_execution_id AND r.record_id = s.record_id;

-- The days of the rows changed above are published again; older parts, written before these
-- columns existed, read them as NULL (the snapshot reads its parts by column name).
INSERT INTO unpublished_partitions (table_name, day, dirtied_at)
SELECT DISTINCT 'record_results', CAST(timezone('UTC', landed_at) AS DATE), now()
FROM record_results
WHERE batch_id IN (SELECT batch_id FROM batches WHERE executed_immediately);
