-- Runs over chosen records (incremental nights, repairs). A job-night may now hold several
-- starts: the run over the whole record type (part '') and the parts of a run over chosen
-- records ('incremental 1/2', 'repair 1/1'), each started exactly once. The ledger
-- is rebuilt with the part in its key; every earlier row is the whole-type run it was.
CREATE TABLE run_intents_parts (
    flow_id              VARCHAR NOT NULL,
    record_type          VARCHAR NOT NULL,
    run_key              VARCHAR NOT NULL,
    part                 VARCHAR NOT NULL DEFAULT '',
    requested_at         TIMESTAMPTZ NOT NULL,
    batch_id             VARCHAR,
    prefect_flow_run_id  VARCHAR,
    job_name             VARCHAR,
    api_requested_at     TIMESTAMPTZ,
    expected_records     INTEGER,
    PRIMARY KEY (flow_id, record_type, run_key, part)
);
INSERT INTO run_intents_parts
SELECT flow_id, record_type, run_key, '', requested_at, batch_id, prefect_flow_run_id, job_name,
       api_requested_at, expected_records
FROM run_intents;
DROP TABLE run_intents;
ALTER TABLE run_intents_parts RENAME TO run_intents;

-- What a run over chosen records runs, fixed once per job-night and scope before its first
-- start, so a re-run of the night runs the same records (or reconnects) instead of choosing
-- again from results the night itself landed. scope: 'incremental', 'repair' or 'repair transient'.
-- whole_type: the choice was every record (the flow's version changed, or nothing ran before): the
-- night runs over the whole record type instead.
CREATE TABLE run_selections (
    flow_id         VARCHAR NOT NULL,
    record_type     VARCHAR NOT NULL,
    run_key         VARCHAR NOT NULL,
    scope           VARCHAR NOT NULL,
    whole_type      BOOLEAN NOT NULL,
    record_ids      VARCHAR[] NOT NULL,
    reasons         JSON NOT NULL,     -- {"changed": n, "new": n, "failed": n, ...}
    type_records    INTEGER NOT NULL,  -- the record type's records when it was chosen
    selection_hash  VARCHAR NOT NULL,
    chosen_at       TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (flow_id, record_type, run_key, scope)
);
