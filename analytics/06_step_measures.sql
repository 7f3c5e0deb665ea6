-- step_measures(ok, seconds): an aggregate; the measures of a group of step executions, as a
-- struct: executions, failures, failure_rate (1 - success_rate), and p50_s, p95_s, p99_s, max_s
-- of the duration in seconds (one pass over the sorted values for all four: max is the 1.0
-- quantile). step_performance (per night) and step_summary (over a selection) both apply it.
CREATE OR REPLACE MACRO step_measures(ok, seconds) AS {
    'executions': count(*),
    'failures': count(*) FILTER (WHERE NOT ok),
    'failure_rate': 1 - success_rate(ok),
    'p50_s': quantile_cont(seconds, [0.50, 0.95, 0.99, 1.0])[1],
    'p95_s': quantile_cont(seconds, [0.50, 0.95, 0.99, 1.0])[2],
    'p99_s': quantile_cont(seconds, [0.50, 0.95, 0.99, 1.0])[3],
    'max_s': quantile_cont(seconds, [0.50, 0.95, 0.99, 1.0])[4]
};
