-- incremental_savings -- grain: one incremental job-night. What running only the records new,
-- changed or failed saved against running every record of the type.
-- Columns: flow_id, record_type, night, run_key, type_records (the type's records that night),
-- records_run (what the night chose: every record when it ran the whole type), records_saved,
-- cost_per_record (the preflight's forecast rate, else the night's own rate), usd_saved
-- (records_saved × cost_per_record), reasons (JSON: records chosen per reason).
CREATE OR REPLACE VIEW incremental_savings AS
WITH ran AS (
    SELECT
        n.flow_id,
        n.record_type,
        n.run_key,
        sum(r.records) AS records,
        sum(r.estimated_cost_usd) AS cost
    FROM batch_runs r
    JOIN batch_nights n USING (batch_id)
    WHERE n.is_current
    GROUP BY n.flow_id, n.record_type, n.run_key
),
chosen AS (
    SELECT
        s.flow_id,
        s.record_type,
        coalesce(try_cast(s.run_key AS DATE), CAST(s.chosen_at AS DATE)) AS night,
        s.run_key,
        s.type_records,
        CASE WHEN s.whole_type THEN s.type_records ELSE len(s.record_ids) END AS records_run,
        coalesce(f.cost_per_record, ran.cost / nullif(ran.records, 0)) AS cost_per_record,
        s.reasons
    FROM run_selections s
    LEFT JOIN night_forecasts f USING (flow_id, record_type, run_key)
    LEFT JOIN ran USING (flow_id, record_type, run_key)
    WHERE s.scope = 'incremental'
)
SELECT
    flow_id,
    record_type,
    night,
    run_key,
    type_records,
    records_run,
    type_records - records_run AS records_saved,
    cost_per_record,
    (type_records - records_run) * cost_per_record AS usd_saved,
    reasons
FROM chosen;
