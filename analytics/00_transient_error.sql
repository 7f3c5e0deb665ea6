-- is_transient_error(message): true for a failure that running the record again may cure (a
-- timeout, a rate limit, a gateway or server error: 5xx), false for one it will not (a 4xx, a
-- model's bad output, a script error), NULL without a message. What a repair run with
-- transient_only re-runs, and what the automatic repair pass after a night considers.
CREATE OR REPLACE MACRO is_transient_error(message) AS CASE
    WHEN message IS NULL OR message = '' THEN NULL
    ELSE regexp_matches(
        lower(message),
        'time(d)? ?out|rate limit|too many requests|http 5[0-9][0-9]|bad gateway'
        || '|service unavailable|gateway timeout|connection (reset|refused|closed)'
    )
END;
