-- One row per Supabase user, created the first time the user is seen (UserRepo.getOrCreateFromSupabase).
create table users (
  id uuid primary key default gen_random_uuid(),
  supabase_user_id uuid not null unique,
  email text,
  role text not null default 'user',
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  last_seen_at timestamptz not null default now()
);
