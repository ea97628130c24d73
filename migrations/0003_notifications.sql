-- Notifications of the reference API: each is also an event of the user's event log (type notification).
create table notifications (
  id bigserial primary key,
  user_id uuid not null references users(id) on delete cascade,
  title text not null,
  body text not null,
  created_at timestamptz not null default now()
);
create index notifications_user_id_id on notifications (user_id, id desc);
