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
WITH per_night AS (  -- a record's latest attempt of each night it ran
    SELECT
        r.flow_id,
        r.record_type,
        r.record_id,
        n.night,
        bool_or(n.part = '') AS ran_whole_type,
        arg_max(
            {'success': r.success, 'execution_time_s': r.execution_time_s, 'error': r.error},
            coalesce(r.executed_at, r.landed_at)
        ) AS latest
    FROM record_results r
    JOIN batch_nights n USING (batch_id)
    WHERE n.is_current
    GROUP BY r.flow_id, r.record_type, r.record_id, n.night
),
nights AS (  -- each job-night, and the latest night up to it that ran the whole type
    SELECT
        flow_id,
        record_type,
        night,
        whole,
        coalesce(
            max(CASE WHEN whole THEN night END) OVER (
                PARTITION BY flow_id, record_type ORDER BY night ROWS UNBOUNDED PRECEDING
            ),
            DATE '0001-01-01'
        ) AS base_night
    FROM (
        SELECT flow_id, record_type, night, bool_or(ran_whole_type) AS whole
        FROM per_night
        GROUP BY flow_id, record_type, night
    )
),
whole_nights AS (  -- a night over the whole type: its own results are the state
    SELECT p.flow_id, p.record_type, p.night, p.record_id, p.night AS ran_night, p.latest
    FROM per_night p
    JOIN nights n USING (flow_id, record_type, night)
    WHERE n.whole
),
partial_latest AS (  -- any other night: each record's latest night since the last whole one
    SELECT n.flow_id, n.record_type, n.night, p.record_id, max(p.night) AS ran_night
    FROM nights n
    JOIN per_night p
        ON p.flow_id = n.flow_id AND p.record_type = n.record_type
        AND p.night BETWEEN n.base_night AND n.night
    WHERE NOT n.whole
    GROUP BY n.flow_id, n.record_type, n.night, p.record_id
),
partial_nights AS (
    SELECT s.flow_id, s.record_type, s.night, s.record_id, s.ran_night, p.latest
    FROM partial_latest s
    JOIN per_night p
        ON p.flow_id = s.flow_id AND p.record_type = s.record_type
        AND p.record_id = s.record_id AND p.night = s.ran_night
    LEFT JOIN records d ON d.record_id = s.record_id
    WHERE s.ran_night = s.night
        OR try_cast(d.last_run_key AS DATE) IS NULL
        OR try_cast(d.last_run_key AS DATE) >= s.night
)
SELECT
    flow_id,
    record_type,
    night,
    record_id,
    ran_night,
    ran_night = night AS ran_tonight,
    latest.success AS success,
    latest.execution_time_s AS execution_time_s,
    error_class(latest.error) AS error_class
FROM (
    SELECT * FROM whole_nights
    UNION ALL
    SELECT * FROM partial_nights
);
