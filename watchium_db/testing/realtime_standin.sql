-- A stand-in for Supabase Realtime's database objects, for tests on plain PostgreSQL. Written
-- from Supabase's documented interface only (not from its code):
--
--   realtime.messages   one row per broadcast/presence message: id, topic, extension
--                       ('broadcast' | 'presence'), payload, event, private, inserted_at,
--                       updated_at; RLS enabled. Realtime Authorization is RLS on this table:
--                       SELECT decides who receives on a topic, INSERT who sends.
--   realtime.topic()    the topic being checked: Realtime sets the transaction-local setting
--                       realtime.topic (with the caller's role and request.jwt.claims) before
--                       it runs the policies.
--   realtime.send(payload jsonb, event text, topic text, private boolean default true)
--                       database broadcast: stores a 'broadcast' message for the topic.
--
-- Installed by watchium_db.testing.realtime.install_realtime_standin(). Real Realtime also
-- partitions messages by day and delivers them over WebSockets; neither matters to the tests.

create schema realtime;
grant usage on schema realtime to anon, authenticated, service_role;

create table realtime.messages (
  id          bigint generated always as identity primary key,
  topic       text        not null,
  extension   text        not null check (extension in ('broadcast', 'presence')),
  payload     jsonb,
  event       text,
  private     boolean     not null default false,
  inserted_at timestamp   not null default now(),
  updated_at  timestamp   not null default now()
);
alter table realtime.messages enable row level security;
grant select, insert on table realtime.messages to authenticated;
grant all on table realtime.messages to service_role;

create function realtime.topic() returns text
language sql stable
set search_path = pg_catalog, pg_temp
as $$
  select nullif(pg_catalog.current_setting('realtime.topic', true), '')
$$;
grant execute on function realtime.topic() to anon, authenticated, service_role;

create function realtime.send(payload jsonb, event text, topic text, private boolean default true)
returns void
language plpgsql volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  insert into realtime.messages (topic, extension, payload, event, private)
  values (topic, 'broadcast', payload, event, private);
end;
$$;
grant execute on function realtime.send(jsonb, text, text, boolean) to authenticated, service_role;
