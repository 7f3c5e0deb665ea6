-- batch_timing -- grain: one batch (one job on one night): how long it queued and how long it
-- ran. Wall time is a job's own clock; a longer queue means the service (or our concurrency
-- limits) held it back, not that the flow got slower.
-- Columns: batch_id, night, flow_id, record_type, job_name, executed_immediately, requested_at
-- (when the job asked for the batch, by the API's clock: the Date of the record count just
-- before the start, whole seconds; our clock when the API sent none), started_at, completed_at
-- (the API's), queue_wait_s (started - requested, never below 0), wall_s (completed - started).
CREATE OR REPLACE VIEW batch_timing AS
SELECT
    b.batch_id,
    n.night,
    b.flow_id,
    b.record_type,
    b.job_name,
    b.executed_immediately,
    coalesce(i.api_requested_at, i.requested_at, b.requested_at) AS requested_at,
    b.started_at,
    b.completed_at,
    greatest(0.0, epoch(b.started_at - coalesce(i.api_requested_at, i.requested_at,
                                                  b.requested_at))) AS queue_wait_s,
    epoch(b.completed_at - b.started_at) AS wall_s
FROM batches b
JOIN batch_nights n USING (batch_id)
LEFT JOIN run_intents i ON i.batch_id = b.batch_id;
