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
--   ownership          realtime.messages belongs to supabase_realtime_admin, not to the role
--                      that runs our migrations (as on Supabase).
--   refusals           what a Supabase image may refuse the migrating role (supautils before 3.3
--                      lets postgres CREATE POLICY on realtime.messages but not COMMENT ON
--                      POLICY; without supautils a non-owner may do neither): the event trigger
--                      realtime_standin_refusals refuses the commands listed in the setting
--                      watchium_standin.refuse ('create policy', 'comment on policy', comma
--                      separated) with 42501, for every role. Empty by default.
--
-- Installed by watchium_db.testing.realtime.install_realtime_standin(). Real Realtime also
-- partitions messages by day and delivers them over WebSockets; neither matters to the tests.

do $roles$
begin
  if not exists (select from pg_catalog.pg_roles where rolname = 'supabase_realtime_admin') then
    create role supabase_realtime_admin nologin noinherit;
  end if;
end
$roles$;

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
alter table realtime.messages owner to supabase_realtime_admin;
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

create function realtime.standin_refusals() returns event_trigger
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
  v_refuse text := pg_catalog.lower(coalesce(pg_catalog.current_setting('watchium_standin.refuse', true), ''));
  v_cmd    record;
begin
  for v_cmd in select * from pg_catalog.pg_event_trigger_ddl_commands() loop
    continue when v_cmd.object_type is distinct from 'policy'
               or v_cmd.object_identity not like '% on realtime.messages';
    if v_cmd.command_tag = 'COMMENT' and v_refuse like '%comment on policy%' then
      raise exception 'permission denied to comment on policy %', v_cmd.object_identity
        using errcode = '42501';
    elsif v_cmd.command_tag = 'CREATE POLICY' and v_refuse like '%create policy%' then
      raise exception 'must be owner of table messages'
        using errcode = '42501';
    end if;
  end loop;
end;
$$;
create event trigger realtime_standin_refusals on ddl_command_end
  when tag in ('COMMENT', 'CREATE POLICY')
  execute function realtime.standin_refusals();
