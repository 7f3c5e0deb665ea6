-- success_rate(ok): an aggregate; the share of rows where ``ok`` is true (0-1), NULL over no
-- rows. The one definition of a success rate: records, steps and calls all use it.
CREATE OR REPLACE MACRO success_rate(ok) AS count_if(ok) / nullif(count(ok), 0);
