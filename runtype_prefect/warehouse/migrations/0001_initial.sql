-- The landing tables. Every table has a primary key so that re-landing is an upsert.

-- One row per job attempt of one night: the idempotency ledger. Written *before* a run is
-- started, so a retry after a crash finds it and reconnects instead of starting a second batch.
CREATE TABLE run_intents (
    flow_id              VARCHAR NOT NULL,
    record_type          VARCHAR NOT NULL,
    run_key              VARCHAR NOT NULL,   -- the night (or any caller-chosen key) of the run
    requested_at         TIMESTAMPTZ NOT NULL,
    batch_id             VARCHAR,            -- NULL until the API named the batch
    prefect_flow_run_id  VARCHAR,
    job_name             VARCHAR,
    PRIMARY KEY (flow_id, record_type, run_key)
);

-- One row per Runtype batch (immediate or deferred).
CREATE TABLE batches (
    batch_id             VARCHAR PRIMARY KEY,
    flow_id              VARCHAR NOT NULL,
    flow_name            VARCHAR,
    record_type          VARCHAR NOT NULL,
    job_name             VARCHAR,
    run_key              VARCHAR,
    prefect_flow_run_id  VARCHAR,            -- the job's flow run
    root_flow_run_id     VARCHAR,            -- the nightly run it belongs to (or itself)
    executed_immediately BOOLEAN,
    status               VARCHAR NOT NULL,   -- remote status: queued/running/completed/failed/cancelled
    outcome              VARCHAR,            -- ours: completed/completed_with_failures/failed/cancelled/timed_out
    total_records        INTEGER,
    processed_records    INTEGER,
    failed_records       INTEGER,
    success_count        INTEGER,
    total_cost_usd       DOUBLE,
    requested_at         TIMESTAMPTZ,
    started_at           TIMESTAMPTZ,
    completed_at         TIMESTAMPTZ,
    error                VARCHAR,
    landed_at            TIMESTAMPTZ          -- when its results were first landed
);

-- One row per record per batch.
CREATE TABLE record_results (
    batch_id             VARCHAR NOT NULL,
    record_id            VARCHAR NOT NULL,
    record_name          VARCHAR,
    record_type          VARCHAR NOT NULL,
    flow_id              VARCHAR NOT NULL,
    status               VARCHAR NOT NULL,   -- completed / failed
    success              BOOLEAN NOT NULL,
    error                VARCHAR,
    execution_id         VARCHAR,
    execution_time_s     DOUBLE,             -- deferred batches: derived from step results
    context_steps        INTEGER,
    prompts_executed     INTEGER,
    executed_at          TIMESTAMPTZ,
    failed_at            TIMESTAMPTZ,
    landed_at            TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (batch_id, record_id)
);

-- One row per executed step (every field of the API's StepResult, snake_case).
CREATE TABLE step_results (
    id                   VARCHAR PRIMARY KEY,
    batch_execution_id   VARCHAR,
    execution_session_id VARCHAR,
    flow_id              VARCHAR NOT NULL,
    flow_version_id      VARCHAR,
    record_id            VARCHAR,
    record_name          VARCHAR,
    record_type          VARCHAR,            -- from the job; the API row does not carry it
    step_id              VARCHAR,
    step_name            VARCHAR,
    step_type            VARCHAR,
    step_order           INTEGER,
    status               VARCHAR NOT NULL,
    started_at           TIMESTAMPTZ,
    completed_at         TIMESTAMPTZ,
    created_at           TIMESTAMPTZ,
    duration_ms          BIGINT,
    output_preview       VARCHAR,
    resolved_prompt      VARCHAR,
    model_used           VARCHAR,
    prompt_tokens        INTEGER,
    completion_tokens    INTEGER,
    total_tokens         INTEGER,
    estimated_cost       DECIMAL(18, 8),
    error_message        VARCHAR,
    retry_count          INTEGER,
    user_id              VARCHAR,
    organization_id      VARCHAR,
    landed_at            TIMESTAMPTZ NOT NULL
);
