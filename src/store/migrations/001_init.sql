-- Dispatch engine schema, version 1.
-- Runs unchanged on PostgreSQL >= 13 and on PGlite (no extensions). Times are timestamptz,
-- coordinates are [lon, lat] in double precision columns, free-form extras are jsonb.

CREATE TABLE units (
  id            text PRIMARY KEY,
  department    text NOT NULL,
  capabilities  jsonb NOT NULL DEFAULT '[]'::jsonb,
  home_lon      double precision NOT NULL,
  home_lat      double precision NOT NULL,
  home_area     text,
  speed_kmh     double precision NOT NULL CHECK (speed_kmh > 0),
  turnout_s     double precision NOT NULL CHECK (turnout_s >= 0),
  status        text NOT NULL CHECK (status IN ('available', 'offered', 'en_route', 'on_scene', 'off_duty', 'out_of_service')),
  pos_lon       double precision,
  pos_lat       double precision,
  incident_id   text,
  role          text,
  since_at      timestamptz,
  payload       jsonb NOT NULL DEFAULT '{}'::jsonb,
  version       integer NOT NULL DEFAULT 1,
  created_at    timestamptz NOT NULL,
  updated_at    timestamptz NOT NULL
);

CREATE TABLE incidents (
  id                      text PRIMARY KEY,
  idempotency_key         text UNIQUE,
  idempotency_fingerprint text,
  type                    text NOT NULL,
  priority                smallint NOT NULL CHECK (priority BETWEEN 1 AND 4),
  lon                     double precision NOT NULL,
  lat                     double precision NOT NULL,
  cell                    text,
  area                    text,
  status                  text NOT NULL CHECK (status IN ('queued', 'assigned', 'en_route', 'on_scene', 'resolved', 'closed', 'cancelled')),
  reported_at             timestamptz NOT NULL,
  target_at               timestamptz,
  closed_at               timestamptz,
  payload                 jsonb NOT NULL DEFAULT '{}'::jsonb,
  version                 integer NOT NULL DEFAULT 1,
  created_at              timestamptz NOT NULL,
  updated_at              timestamptz NOT NULL
);

CREATE INDEX incidents_open_idx ON incidents (reported_at, id) WHERE status NOT IN ('closed', 'cancelled');
CREATE INDEX incidents_reported_idx ON incidents (reported_at, id);

CREATE TABLE assignments (
  id                    text PRIMARY KEY,
  incident_id           text NOT NULL REFERENCES incidents (id),
  unit_id               text NOT NULL REFERENCES units (id),
  capability            text NOT NULL,
  status                text NOT NULL CHECK (status IN ('offered', 'accepted', 'en_route', 'on_scene', 'cleared', 'declined', 'timed_out', 'preempted', 'cancelled')),
  offered_at            timestamptz NOT NULL,
  ack_deadline          timestamptz,
  accepted_at           timestamptz,
  en_route_at           timestamptz,
  on_scene_at           timestamptz,
  ended_at              timestamptz,
  eta_s                 double precision NOT NULL,
  crosses_jurisdiction  boolean NOT NULL DEFAULT false,
  preempted_from        text,
  reason                text,
  explanation           jsonb,
  payload               jsonb NOT NULL DEFAULT '{}'::jsonb,
  version               integer NOT NULL DEFAULT 1,
  updated_at            timestamptz NOT NULL
);

-- At most one active assignment per unit, enforced by the database.
CREATE UNIQUE INDEX assignments_one_active_per_unit ON assignments (unit_id)
  WHERE status IN ('offered', 'accepted', 'en_route', 'on_scene');
CREATE INDEX assignments_incident_idx ON assignments (incident_id);
CREATE INDEX assignments_active_idx ON assignments (offered_at, id)
  WHERE status IN ('offered', 'accepted', 'en_route', 'on_scene');

CREATE TABLE events (
  id             bigserial PRIMARY KEY,
  incident_id    text,
  unit_id        text,
  assignment_id  text,
  kind           text NOT NULL,
  at             timestamptz NOT NULL,
  actor          text NOT NULL,
  data           jsonb NOT NULL DEFAULT '{}'::jsonb
);

CREATE INDEX events_incident_idx ON events (incident_id, id) WHERE incident_id IS NOT NULL;
CREATE INDEX events_unit_idx ON events (unit_id, id) WHERE unit_id IS NOT NULL;

-- Transactional outbox: written in the same transaction as the state change it announces;
-- only the relay enqueues, with jobId = id.
CREATE TABLE outbox (
  id            bigserial PRIMARY KEY,
  topic         text NOT NULL,
  payload       jsonb NOT NULL DEFAULT '{}'::jsonb,
  created_at    timestamptz NOT NULL,
  available_at  timestamptz NOT NULL,
  claimed_at    timestamptz,
  attempts      integer NOT NULL DEFAULT 0,
  last_error    text,
  done_at       timestamptz
);

CREATE INDEX outbox_pending_idx ON outbox (id) WHERE done_at IS NULL;

-- Push log: every websocket message per recipient with a gap-free sequence.
CREATE TABLE recipient_seq (
  recipient  text PRIMARY KEY,
  last_seq   bigint NOT NULL
);

CREATE TABLE messages (
  recipient  text NOT NULL,
  seq        bigint NOT NULL,
  event      text NOT NULL,
  payload    jsonb NOT NULL DEFAULT '{}'::jsonb,
  at         timestamptz NOT NULL,
  PRIMARY KEY (recipient, seq)
);

CREATE INDEX messages_at_idx ON messages (at);

-- Append-only hash-chained audit log. seq is allocated from audit_head under a row lock
-- (not a sequence, which leaves gaps on rollback) so that a gap always means a deleted row.
CREATE TABLE audit (
  seq        bigint PRIMARY KEY,
  at         timestamptz NOT NULL,
  actor      text NOT NULL,
  action     text NOT NULL,
  subject    text NOT NULL,
  data       jsonb NOT NULL DEFAULT 'null'::jsonb,
  prev_hash  text NOT NULL,
  hash       text NOT NULL
);

CREATE TABLE audit_head (
  id         boolean PRIMARY KEY DEFAULT true CHECK (id),
  last_seq   bigint NOT NULL,
  last_hash  text NOT NULL
);

INSERT INTO audit_head (id, last_seq, last_hash)
VALUES (true, 0, '0000000000000000000000000000000000000000000000000000000000000000');
