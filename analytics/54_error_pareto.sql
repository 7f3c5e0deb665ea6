-- error_pareto(first_night, last_night, record_types, flow) -- a table macro; grain: one error
-- class over the selection (see in_selection), largest first.
-- Columns: error_class, failures, share (of the selection's failures), cumulative_share.
CREATE OR REPLACE MACRO error_pareto(first_night, last_night, record_types, flow) AS TABLE
WITH classes AS (
    SELECT error_class, CAST(sum(failures) AS BIGINT) AS failures
    FROM failures
    WHERE in_selection(night, record_type, flow_id, first_night, last_night, record_types, flow)
    GROUP BY ALL
)
SELECT
    error_class,
    failures,
    failures / sum(failures) OVER () AS share,
    sum(failures) OVER (ORDER BY failures DESC, error_class) / sum(failures) OVER ()
        AS cumulative_share
FROM classes;
