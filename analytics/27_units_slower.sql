-- units_slower(first_night, last_night, bases) -- a table macro for the quality gate; grain:
-- one unit (step or model, see unit_facts) of one job on one night within
-- first_night..last_night. ``bases`` is a list of {flow_id, record_type, unit, name, base}
-- structs: each unit's baseline p95 in seconds.
-- Columns: flow_id, record_type, night, unit, name, slower (executions whose duration
-- exceeded the unit's base).
CREATE OR REPLACE MACRO units_slower(first_night, last_night, bases) AS TABLE
WITH b AS (SELECT unnest(bases, recursive := true))
SELECT
    u.flow_id,
    u.record_type,
    u.night,
    u.unit,
    u.name,
    count(*) FILTER (WHERE u.duration_s > b.base) AS slower
FROM unit_facts u
JOIN b USING (flow_id, record_type, unit, name)
WHERE u.night BETWEEN first_night AND last_night
GROUP BY ALL;
