-- Removes exactly what 0006 added: our health functions, broadcast_to_room,
-- our policies on realtime.messages (when present), the tables this revision
-- added to supabase_realtime (and the publication itself only if this
-- revision created it and nothing else is in it), settings and rate rules.
-- Replica identities go back to DEFAULT (the primary key), what 0002 made.

drop function public.realtime_health();
drop function watchium_rpc.realtime_health();
drop function watchium_private.realtime_health();
drop function public.broadcast_to_room(text, text, jsonb);
drop function watchium_rpc.broadcast_to_room(text, text, jsonb);
drop function watchium_private.validate_broadcast_payload(text, jsonb);

do $authorization$
begin
  if pg_catalog.to_regclass('realtime.messages') is not null then
    drop policy if exists watchium_messages_select_authenticated on realtime.messages;
    drop policy if exists watchium_messages_insert_authenticated on realtime.messages;
  end if;
end
$authorization$;
drop function watchium_private.install_realtime_authorization();

do $publication$
declare
  v_state jsonb := (select s.value from watchium_private.settings as s
                    where s.key = 'realtime_publication_state');
  v_table text;
begin
  for v_table in
    select t from pg_catalog.jsonb_array_elements_text(coalesce(v_state -> 'added_tables', '[]')) as t
  loop
    if exists (
      select from pg_catalog.pg_publication_rel as pr
      join pg_catalog.pg_publication as p on p.oid = pr.prpubid
      where p.pubname = 'supabase_realtime' and pr.prrelid = pg_catalog.to_regclass(v_table)
    ) then
      execute pg_catalog.format('alter publication supabase_realtime drop table %s',
                                v_table::regclass);
    end if;
  end loop;
  -- Dropped only if 0006 created it and nothing else is in it: no table, no
  -- schema (FOR TABLES IN SCHEMA), not FOR ALL TABLES.
  if (v_state ->> 'created_publication')::boolean
     and exists (
       select from pg_catalog.pg_publication as p
       where p.pubname = 'supabase_realtime' and not p.puballtables
     )
     and not exists (
       select from pg_catalog.pg_publication_rel as pr
       join pg_catalog.pg_publication as p on p.oid = pr.prpubid
       where p.pubname = 'supabase_realtime'
     )
     and not exists (
       select from pg_catalog.pg_publication_namespace as pn
       join pg_catalog.pg_publication as p on p.oid = pn.pnpubid
       where p.pubname = 'supabase_realtime'
     ) then
    drop publication if exists supabase_realtime;
  end if;
end
$publication$;

delete from watchium_private.rate_limit_rules where action = 'broadcast';
delete from watchium_private.rate_limit_counters where action = 'broadcast';
delete from watchium_private.settings
where key in ('realtime_publication_state', 'replication_slot_max_lag_bytes',
              'broadcast_max_payload_bytes');

alter table public.rooms replica identity default;
alter table public.room_members replica identity default;
alter table public.comments replica identity default;
alter table public.sync_states_default replica identity default;
