-- 0014 member reads, downgrade: 0003's definition of my_room_ids().
set local lock_timeout = '5s';
set local statement_timeout = '60s';

create or replace function watchium_private.my_room_ids()
returns setof text
language sql
stable
security definer  -- reads room_members bypassing its RLS (its policy calls this function)
set search_path = pg_catalog, pg_temp
as $$
  select m.room_id
  from public.room_members as m
  where m.user_id = watchium_private.current_user_id()
$$;
