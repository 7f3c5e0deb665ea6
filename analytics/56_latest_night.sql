-- latest_night(first_night, last_night) -- a table macro; one row: night, the most recent night
-- with landed records within first_night..last_night (NULL bounds: any), NULL when none.
CREATE OR REPLACE MACRO latest_night(first_night, last_night) AS TABLE
SELECT max(night) AS night
FROM record_facts
WHERE in_selection(night, NULL, NULL, first_night, last_night, NULL, NULL);
