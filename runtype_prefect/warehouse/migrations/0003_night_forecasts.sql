-- The preflight's cost forecast and budget decision per job and night, so the report can set
-- forecast against actual (the batch's total_cost_usd).
CREATE TABLE night_forecasts (
    run_key              VARCHAR NOT NULL,
    flow_id              VARCHAR NOT NULL,
    record_type          VARCHAR NOT NULL,
    records              INTEGER,            -- the record type's count before the start
    cost_per_record      DOUBLE,             -- median over the job's recent landed nights
    forecast_usd         DOUBLE,             -- cost_per_record × records (NULL: no history)
    low_usd              DOUBLE,             -- the cheapest recent night's rate × records
    high_usd             DOUBLE,             -- the dearest recent night's rate × records
    history_nights       INTEGER NOT NULL,
    budget_usd           DOUBLE,             -- the job budget in force, if any
    decision             VARCHAR NOT NULL,   -- run / over_budget
    created_at           TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (run_key, flow_id, record_type)
);
