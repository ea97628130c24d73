-- The event log (EventLog): what each user's streams replay from after a reconnect, kept for EVENTS_RETENTION_SECONDS.
-- Keyed by the local user id; no foreign key, so the core's log serves any user table.
create table events (
  id bigserial primary key,
  user_id uuid not null,
  type text not null,
  data jsonb not null,
  created_at timestamptz not null default now()
);
create index events_user_id_id on events (user_id, id);
create index events_created_at on events (created_at);

-- The highest id the retention job has deleted: a cursor below it may have missed events, and is told so (reset).
create table events_horizon (
  singleton boolean primary key default true check (singleton),
  last_deleted_id bigint not null default 0
);
insert into events_horizon (last_deleted_id) values (0);
