-- The quality gate's verdicts: one row per job (flow × record type), night and metric, so
-- analysts and the report can show the gate's history and the gate can leave flagged nights
-- out of its own baseline.
CREATE TABLE quality_verdicts (
    night                DATE NOT NULL,
    flow_id              VARCHAR NOT NULL,
    record_type          VARCHAR NOT NULL,
    metric               VARCHAR NOT NULL,   -- success_rate / p95_s
    job_name             VARCHAR,
    records              INTEGER NOT NULL,   -- records of the job tonight
    current_value        DOUBLE,             -- tonight's success rate or p95 (s)
    baseline_value       DOUBLE,             -- the same over the baseline's clean nights
    baseline_nights      INTEGER NOT NULL,   -- clean nights the baseline was taken from
    p_value              DOUBLE,             -- one-sided: as bad as tonight by chance
    alpha                DOUBLE,             -- the significance threshold in force
    min_effect           DOUBLE,             -- the smallest change that can be flagged
    verdict              VARCHAR NOT NULL,   -- ok / degraded / no_verdict
    reason               VARCHAR,            -- why no verdict, or the finding in words
    degraded_since       DATE,               -- first night of the current degraded run
    degraded_nights      INTEGER,            -- nights in that run, tonight included
    evaluated_at         TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (night, flow_id, record_type, metric)
);
