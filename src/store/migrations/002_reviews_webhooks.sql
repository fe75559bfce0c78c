-- Review flags a supervisor works through, the cursors of event-log scanners, and the reporter
-- webhook deliveries (with their dead-letter state). Runs on PostgreSQL >= 13 and on PGlite.

CREATE TABLE reviews (
  id           text PRIMARY KEY,
  -- insertion order: the tie-break of flags raised for the same instant
  seq          bigserial NOT NULL UNIQUE,
  key          text NOT NULL UNIQUE,
  kind         text NOT NULL,
  status       text NOT NULL CHECK (status IN ('open', 'resolved')),
  at           timestamptz NOT NULL,
  raised_at    timestamptz NOT NULL,
  incident_id  text,
  unit_id      text,
  summary      text NOT NULL,
  evidence     jsonb NOT NULL DEFAULT '{}'::jsonb,
  resolved_at  timestamptz,
  resolved_by  text,
  note         text
);

CREATE INDEX reviews_at_idx ON reviews (at DESC, seq DESC);
CREATE INDEX reviews_open_idx ON reviews (at DESC, seq DESC) WHERE status = 'open';
CREATE INDEX reviews_unit_kind_idx ON reviews (unit_id, kind, at DESC) WHERE unit_id IS NOT NULL;

CREATE TABLE scan_cursors (
  name     text PRIMARY KEY,
  last_id  bigint NOT NULL
);

CREATE TABLE webhook_deliveries (
  id                bigserial PRIMARY KEY,
  incident_id       text NOT NULL,
  seq               integer NOT NULL CHECK (seq >= 1),
  status            text NOT NULL,
  url               text NOT NULL,
  -- scheme://host:port of the url: receivers are backed off as a whole while they fail
  origin            text NOT NULL,
  body              text NOT NULL,
  idempotency_key   text NOT NULL,
  state             text NOT NULL CHECK (state IN ('pending', 'delivered', 'dead')),
  attempts          integer NOT NULL DEFAULT 0,
  next_at           timestamptz NOT NULL,
  -- set while a sender holds the delivery (a crashed sender's claim lapses then)
  claimed_until     timestamptz,
  created_at        timestamptz NOT NULL,
  last_attempt_at   timestamptz,
  last_error        text,
  last_http_status  integer,
  delivered_at      timestamptz,
  dead_at           timestamptz,
  UNIQUE (incident_id, seq)
);

CREATE INDEX webhook_pending_idx ON webhook_deliveries (next_at, id) WHERE state = 'pending';
CREATE INDEX webhook_pending_origin_idx ON webhook_deliveries (origin) WHERE state = 'pending';
CREATE INDEX webhook_dead_idx ON webhook_deliveries (dead_at DESC, id DESC) WHERE state = 'dead';
