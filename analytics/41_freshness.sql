-- freshness -- grain: one night.
-- Columns: night, batches, records, step_rows, first_landed_at, last_landed_at (when the
-- night's data reached the warehouse), over each job's current batch of the night.
CREATE OR REPLACE VIEW freshness AS
WITH steps AS (
    SELECT night, count(*) AS step_rows FROM step_facts GROUP BY night
)
SELECT
    b.night,
    count(*) AS batches,
    sum(b.records) AS records,
    coalesce(any_value(s.step_rows), 0) AS step_rows,
    min(b.landed_at) AS first_landed_at,
    max(b.landed_at) AS last_landed_at
FROM batch_runs b
LEFT JOIN steps s USING (night)
WHERE b.is_current
GROUP BY b.night;
