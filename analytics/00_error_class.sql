-- error_class(message): an error message with its variable parts normalised, so that messages
-- of one kind group together. Record/flow/execution ids become <id>, URLs keep only their host,
-- numbers become <n> -- except HTTP status codes ("HTTP 502" stays), which tell classes apart.
CREATE OR REPLACE MACRO error_class(message) AS CASE WHEN message IS NULL OR message = '' THEN NULL ELSE
    array_to_string(
        list_transform(
            range(1, len(string_split(message, ' ')) + 1),
            lambda i: CASE
                WHEN i > 1 AND string_split(message, ' ')[i - 1] = 'HTTP'
                    THEN string_split(message, ' ')[i]
                WHEN regexp_matches(string_split(message, ' ')[i], '^https?://')
                    THEN regexp_extract(string_split(message, ' ')[i], '^https?://([^/]+)', 1)
                ELSE regexp_replace(
                    regexp_replace(string_split(message, ' ')[i], '[a-z]+_[0-9a-z]{10,}', '<id>', 'g'),
                    '[0-9]+', '<n>', 'g')
            END
        ),
        ' '
    )
END;
