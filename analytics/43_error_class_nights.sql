-- error_class_nights -- grain: one error class on one record type on one night.
-- Columns: night, record_type, error_class, failures (failed steps), records (distinct records
-- hit). For error classes over time: stack failures per night by class (across record types,
-- sum them).
CREATE OR REPLACE VIEW error_class_nights AS
SELECT
    night,
    record_type,
    error_class,
    CAST(sum(failures) AS BIGINT) AS failures,
    CAST(sum(records) AS BIGINT) AS records
FROM failures
GROUP BY ALL;
