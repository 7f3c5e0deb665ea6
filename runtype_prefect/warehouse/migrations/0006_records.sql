-- Records as a dimension: the records the jobs ran over, from the records listing
-- (GET /v1/records?type=…), landed once per record type and run key and upserted, so a record
-- keeps its latest name and metadata and analysts can segment by a metadata field.
CREATE TABLE records (
    record_id        VARCHAR PRIMARY KEY,
    record_type      VARCHAR NOT NULL,
    name             VARCHAR,
    metadata         JSON,
    created_at       TIMESTAMPTZ,
    updated_at       TIMESTAMPTZ,
    first_landed_at  TIMESTAMPTZ NOT NULL,
    last_landed_at   TIMESTAMPTZ NOT NULL,
    last_run_key     VARCHAR NOT NULL          -- the last night whose listing showed it
);
-- Which record types' listings were landed for which run key: one listing a type and night.
CREATE TABLE record_listings (
    record_type  VARCHAR NOT NULL,
    run_key      VARCHAR NOT NULL,
    records      INTEGER NOT NULL,
    landed_at    TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (record_type, run_key)
);
