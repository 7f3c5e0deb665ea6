-- model_summary(first_night, last_night, record_types, flow, model) -- a table macro; grain:
-- one model over the selection (see in_selection; ``model`` NULL: every model). Steps that
-- called no model are left out.
-- Columns: model, calls, p50/p95/p99 duration in seconds (pooled over the selection's calls),
-- tokens, estimated_cost_usd (sum of the steps' estimates).
CREATE OR REPLACE MACRO model_summary(first_night, last_night, record_types, flow, model) AS TABLE
SELECT
    model_used AS model,
    count(*) AS calls,
    quantile_cont(duration_s, 0.50) AS p50_s,
    quantile_cont(duration_s, 0.95) AS p95_s,
    quantile_cont(duration_s, 0.99) AS p99_s,
    coalesce(sum(total_tokens), 0) AS tokens,
    CAST(coalesce(sum(estimated_cost), 0) AS DOUBLE) AS estimated_cost_usd
FROM step_facts
WHERE model_used IS NOT NULL
  AND (model IS NULL OR model_used = model)
  AND in_selection(night, record_type, flow_id, first_night, last_night, record_types, flow)
GROUP BY ALL;
