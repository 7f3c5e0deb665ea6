-- record_step_totals(batch) -- a table macro; grain: one record in batch ``batch``, from the
-- batch's landed step results. The one definition of a record's execution time, for immediate
-- and deferred batches alike: from its first step's start to its last step's end. Landing
-- stores these in record_results (execution_time_s, context_steps, prompts_executed) when it
-- lands a batch's steps, so the record-grain models read a column instead of aggregating every
-- step; the API's own figures of an immediate run stay beside them as reported_*.
-- Columns: record_id, execution_time_s, context_steps (steps executed), prompts_executed
-- (steps of type 'prompt').
CREATE OR REPLACE MACRO record_step_totals(batch) AS TABLE
SELECT
    record_id,
    epoch(max(completed_at) - min(started_at)) AS execution_time_s,
    count(*) AS context_steps,
    count(*) FILTER (WHERE step_type = 'prompt') AS prompts_executed
FROM step_results
WHERE batch_execution_id = batch
GROUP BY record_id;
