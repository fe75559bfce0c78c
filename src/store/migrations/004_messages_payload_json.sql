-- The push log's payloads are only ever written once and read back whole (a reconnecting
-- client's replay): nothing queries inside them. As jsonb, every batch's messages were parsed
-- into jsonb's binary form on insert, about half of the engine's commit statement on
-- PostgreSQL (~10 ms of ~25 ms for a batch of 250 messages). json keeps the text as sent,
-- checked for validity only, and reads back the same object (in the same key order).
ALTER TABLE messages
  ALTER COLUMN payload DROP DEFAULT,
  ALTER COLUMN payload TYPE json USING payload::json,
  ALTER COLUMN payload SET DEFAULT '{}'::json;
