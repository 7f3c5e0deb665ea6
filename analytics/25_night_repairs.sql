-- night_repairs -- grain: one job (flow x record type) on one night: how its records did on
-- their first attempt of the night and after the night's repairs (runtype-prefect repair, or
-- the automatic pass). A night without repairs has the same rate twice.
-- Columns: flow_id, record_type, night, job_name, records (that ran that night),
-- first_attempt_succeeded, first_attempt_success_rate, repair_attempts, repaired (failed at
-- first, succeeded in a repair), after_repair_succeeded, after_repair_success_rate.
CREATE OR REPLACE VIEW night_repairs AS
WITH attempts AS (
    SELECT
        flow_id,
        record_type,
        night,
        job_name,
        record_id,
        success,
        is_repair_part(part) AS in_repair,
        coalesce(executed_at, landed_at) AS ran_at
    FROM record_facts
),
per_record AS (
    SELECT
        flow_id,
        record_type,
        night,
        any_value(job_name) AS job_name,
        record_id,
        arg_min(success, ran_at) FILTER (WHERE NOT in_repair) AS first_success,
        arg_max(success, ran_at) AS last_success,
        count(*) FILTER (WHERE in_repair) AS repair_attempts
    FROM attempts
    GROUP BY flow_id, record_type, night, record_id
),
nights AS (
    SELECT
        flow_id,
        record_type,
        night,
        any_value(job_name) AS job_name,
        count(*) FILTER (WHERE first_success IS NOT NULL) AS records,
        count(*) FILTER (WHERE first_success) AS first_attempt_succeeded,
        sum(repair_attempts) AS repair_attempts,
        count(*) FILTER (WHERE NOT first_success AND last_success) AS repaired,
        count(*) FILTER (WHERE first_success IS NOT NULL AND last_success)
            AS after_repair_succeeded
    FROM per_record
    GROUP BY flow_id, record_type, night
)
SELECT
    flow_id,
    record_type,
    night,
    job_name,
    records,
    first_attempt_succeeded,
    first_attempt_succeeded / nullif(records, 0) AS first_attempt_success_rate,
    repair_attempts,
    repaired,
    after_repair_succeeded,
    after_repair_succeeded / nullif(records, 0) AS after_repair_success_rate
FROM nights;
