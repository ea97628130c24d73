-- Background jobs (src/core/jobs): a row per job, claimed by one worker at a time under a lease that the worker
-- renews as the job progresses. A running job always carries a lease token; an expired lease may be taken over.
create table jobs (
  id uuid primary key default gen_random_uuid(),
  kind text not null,
  owner_id uuid references users (id) on delete cascade,
  status text not null default 'queued' check (status in ('queued', 'running', 'completed', 'failed')),
  step integer not null default 0 check (step >= 0),
  input jsonb not null default '{}',
  error text,
  lease_token uuid,
  lease_expires_at timestamptz,
  attempts integer not null default 0,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  check ((status = 'running') = (lease_token is not null and lease_expires_at is not null))
);

-- What the workers scan: jobs waiting, and running ones whose lease may have run out.
create index jobs_claimable on jobs (created_at) where status in ('queued', 'running');
create index jobs_owner on jobs (owner_id, created_at);
