-- record_state -- grain: one record of a job (flow x record type) on each night the job ran:
-- the record's latest result as of that night, whether it ran that night or earlier. On a
-- night that ran every record it is that night's result; on an incremental night most
-- records keep an earlier one. So success rates and latencies over time read the state of the
-- whole record type, not the few records a partial night ran (record_facts keeps the
-- per-night attempts). A repair of a night counts on that night. A night that ran the whole
-- record type starts afresh: a record it did not run was gone by then. A record the records
-- dimension last listed before the night (deleted since) has no state that night either.
-- Columns: flow_id, record_type, night, record_id, ran_night (the night its latest result
-- ran), ran_tonight, success, execution_time_s, error_class.
CREATE OR REPLACE VIEW record_state AS
WITH per_night AS (
    SELECT
        flow_id,
        record_type,
        record_id,
        night,
        arg_max(success, coalesce(executed_at, landed_at)) AS success,
        arg_max(execution_time_s, coalesce(executed_at, landed_at)) AS execution_time_s,
        arg_max(error_class, coalesce(executed_at, landed_at)) AS error_class
    FROM record_facts
    WHERE night IS NOT NULL
    GROUP BY flow_id, record_type, record_id, night
),
nights AS (  -- each job-night, and the latest night up to it that ran the whole type
    SELECT
        flow_id,
        record_type,
        night,
        coalesce(
            max(CASE WHEN whole THEN night END) OVER (
                PARTITION BY flow_id, record_type ORDER BY night ROWS UNBOUNDED PRECEDING
            ),
            DATE '0001-01-01'
        ) AS base_night
    FROM (
        SELECT flow_id, record_type, night, bool_or(part = '') AS whole
        FROM record_facts
        WHERE night IS NOT NULL
        GROUP BY flow_id, record_type, night
    )
),
seen AS (
    SELECT flow_id, record_type, record_id, min(night) AS first_night
    FROM per_night
    GROUP BY flow_id, record_type, record_id
),
known AS (
    SELECT n.flow_id, n.record_type, n.night, n.base_night, r.record_id
    FROM nights n
    JOIN seen r
        ON r.flow_id = n.flow_id AND r.record_type = n.record_type AND r.first_night <= n.night
)
SELECT
    k.flow_id,
    k.record_type,
    k.night,
    k.record_id,
    p.night AS ran_night,
    p.night = k.night AS ran_tonight,
    p.success,
    p.execution_time_s,
    p.error_class
FROM known k
ASOF JOIN per_night p
    ON p.flow_id = k.flow_id AND p.record_type = k.record_type AND p.record_id = k.record_id
    AND p.night <= k.night
LEFT JOIN records d ON d.record_id = k.record_id
WHERE p.night >= k.base_night
    AND (try_cast(d.last_run_key AS DATE) IS NULL OR try_cast(d.last_run_key AS DATE) >= k.night);
