-- record_history -- grain: one record's execution in one batch, with the record's latest name
-- and metadata from the records dimension (NULL metadata until its type's listing landed):
-- a record's history across nights, and what segments by a metadata field start from.
-- Columns: record_id, record_name, record_type, flow_id, batch_id, night, job_name, success,
-- error_class, execution_time_s, metadata (JSON), created_at (the record's).
CREATE OR REPLACE VIEW record_history AS
SELECT
    r.record_id,
    coalesce(d.name, r.record_name) AS record_name,
    r.record_type,
    r.flow_id,
    r.batch_id,
    n.night,
    n.job_name,
    r.success,
    error_class(r.error) AS error_class,
    r.execution_time_s,
    d.metadata,
    d.created_at
FROM record_results r
LEFT JOIN batch_nights n USING (batch_id)
LEFT JOIN records d USING (record_id);
