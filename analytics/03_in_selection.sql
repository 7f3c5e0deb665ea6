-- in_selection(night, record_type, flow_id, first_night, last_night, record_types, flow):
-- true when a row falls in an analyst's selection: nights first_night..last_night (inclusive),
-- the record types in the list record_types, the flow ``flow``. A NULL bound selects all.
-- The table macros below (5x_) take the selection as these four parameters.
CREATE OR REPLACE MACRO in_selection(
    night, record_type, flow_id, first_night, last_night, record_types, flow
) AS
    (first_night IS NULL OR night >= first_night)
    AND (last_night IS NULL OR night <= last_night)
    AND (record_types IS NULL OR list_contains(record_types, record_type))
    AND (flow IS NULL OR flow_id = flow);
