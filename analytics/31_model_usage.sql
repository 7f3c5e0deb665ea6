-- model_usage -- grain: one model on one night (steps that called a model only).
-- Columns: night, model, calls, failures, prompt_tokens, completion_tokens, tokens,
-- estimated_cost_usd (sum of the steps' estimates), p50/p95 duration in seconds.
CREATE OR REPLACE VIEW model_usage AS
SELECT
    night,
    model_used AS model,
    count(*) AS calls,
    count(*) FILTER (WHERE NOT succeeded) AS failures,
    sum(prompt_tokens) AS prompt_tokens,
    sum(completion_tokens) AS completion_tokens,
    sum(total_tokens) AS tokens,
    CAST(sum(estimated_cost) AS DOUBLE) AS estimated_cost_usd,
    quantile_cont(duration_s, 0.50) AS p50_s,
    quantile_cont(duration_s, 0.95) AS p95_s
FROM step_facts
WHERE model_used IS NOT NULL
GROUP BY ALL;
