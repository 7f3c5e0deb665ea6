-- The steps and models a verdict names as having moved (JSON: a list of findings with the
-- unit, its name, step type, model, measure, counts, baseline rate and p value).
ALTER TABLE quality_verdicts ADD COLUMN attribution VARCHAR;
