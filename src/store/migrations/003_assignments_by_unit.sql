-- A unit's assignments (its history, GET /v1/units/:id/assignments, and the refusals a
-- restarted engine reloads) are read by unit: without this index each such read scanned
-- every assignment ever made.
CREATE INDEX assignments_unit_idx ON assignments (unit_id, offered_at);

-- Recent refusals (declined, timed out) by end time: the engine reloads them at start.
CREATE INDEX assignments_refused_idx ON assignments (ended_at)
  WHERE status IN ('declined', 'timed_out');
