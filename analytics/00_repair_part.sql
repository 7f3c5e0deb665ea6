-- is_repair_part(part): true for a batch that repaired its night (the engine names such parts
-- "repair 1/1" or "repair transient 1/1"), false for the night's own runs ('' for a whole
-- type, "incremental 1/2" for a part of an incremental night).
CREATE OR REPLACE MACRO is_repair_part(part) AS part LIKE 'repair%';
