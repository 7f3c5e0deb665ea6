-- A repair is a run over chosen records too: the failed records of one night's batches of a
-- job, kept like an incremental night's choice, with the batches it repairs.
ALTER TABLE run_selections ADD COLUMN repairs VARCHAR[];
