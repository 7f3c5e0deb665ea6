-- The analytics snapshot is published incrementally: the two result tables as Parquet parts,
-- one per table and UTC day of first landing (rows never change day: landed_at is kept on a
-- re-landing), rewritten only when a landing touched that day.

-- Days whose rows changed since they were last published: one row per change. Append-only, no
-- key: concurrent landings in one process would conflict on updating a shared row.
CREATE TABLE unpublished_partitions (
    table_name  VARCHAR NOT NULL,
    day         DATE NOT NULL,
    dirtied_at  TIMESTAMPTZ NOT NULL,
    -- a publish deletes exactly the marks it read (a landing may commit while it runs)
    mark_id     UUID NOT NULL DEFAULT uuid()
);

-- The Parquet file that holds each published day now.
CREATE TABLE published_parts (
    table_name    VARCHAR NOT NULL,
    day           DATE NOT NULL,
    path          VARCHAR NOT NULL,
    row_count     BIGINT NOT NULL,
    published_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (table_name, day)
);

-- Files a newer part replaced: kept for readers of an older snapshot, deleted after a grace.
CREATE TABLE retired_parts (
    path        VARCHAR PRIMARY KEY,
    retired_at  TIMESTAMPTZ NOT NULL
);

-- Everything landed before this migration is published by the next publish.
INSERT INTO unpublished_partitions (table_name, day, dirtied_at)
SELECT DISTINCT 'step_results', CAST(timezone('UTC', landed_at) AS DATE), now() FROM step_results
UNION
SELECT DISTINCT 'record_results', CAST(timezone('UTC', landed_at) AS DATE), now() FROM record_results;
