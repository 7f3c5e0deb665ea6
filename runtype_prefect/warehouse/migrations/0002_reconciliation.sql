-- What reconciliation needs to recognise the batch an interrupted start became: the API's own
-- clock just before the start (so "created after the intent" compares the API's times with
-- the API's time) and the record type's count then (a batch of that flow with another count
-- belongs to another job).
ALTER TABLE run_intents ADD COLUMN api_requested_at TIMESTAMPTZ;
ALTER TABLE run_intents ADD COLUMN expected_records INTEGER;
