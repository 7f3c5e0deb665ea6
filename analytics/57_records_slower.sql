-- records_slower(first_night, last_night, bases) -- a table macro for the quality gate; grain:
-- one job on one night within first_night..last_night. ``bases`` is a list of
-- {flow_id, record_type, base} structs: each job's baseline p95 in seconds.
-- Columns: flow_id, record_type, night, slower (records whose execution time exceeded the
-- job's base).
CREATE OR REPLACE MACRO records_slower(first_night, last_night, bases) AS TABLE
WITH b AS (SELECT unnest(bases, recursive := true))
SELECT
    r.flow_id,
    r.record_type,
    r.night,
    count(*) FILTER (WHERE r.execution_time_s > b.base) AS slower
FROM record_facts r
JOIN b USING (flow_id, record_type)
WHERE r.night BETWEEN first_night AND last_night
GROUP BY ALL;
