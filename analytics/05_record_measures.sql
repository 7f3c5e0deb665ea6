-- record_measures(ok, seconds): an aggregate; the measures of a group of record executions, as
-- a struct: records, succeeded, failed, success_rate (see success_rate), and p50_s, p95_s, p99_s,
-- max_s of the execution time in seconds. Every model at a record grain (batch, night, record
-- type × night, job × night, flow version, a selection of nights) applies it, so the measures
-- mean the same at every grain; percentiles cannot be added up across grains, so each grain
-- applies the definition rather than rolling another up. The percentiles and the maximum (the
-- 1.0 quantile) share one pass over the sorted values.
CREATE OR REPLACE MACRO record_measures(ok, seconds) AS {
    'records': count(*),
    'succeeded': count(*) FILTER (WHERE ok),
    'failed': count(*) FILTER (WHERE NOT ok),
    'success_rate': success_rate(ok),
    'p50_s': quantile_cont(seconds, [0.50, 0.95, 0.99, 1.0])[1],
    'p95_s': quantile_cont(seconds, [0.50, 0.95, 0.99, 1.0])[2],
    'p99_s': quantile_cont(seconds, [0.50, 0.95, 0.99, 1.0])[3],
    'max_s': quantile_cont(seconds, [0.50, 0.95, 0.99, 1.0])[4]
};
