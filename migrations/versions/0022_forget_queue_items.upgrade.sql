-- =============================================================================
-- 0022 forget_user and the episode queue
--
-- forget_user (0007) predates the queue (0013): a forgotten account's queued
-- episodes kept its user id and name in public.room_queue. They stay in the
-- queue (other members may be waiting for them) with added_by null and
-- added_by_username 'deleted', as its authorless comment tombstones; the
-- result counts them (queue_items_anonymized). Otherwise 0007's definition.
-- =============================================================================
create or replace function watchium_rpc.forget_user(p_user_id text)
returns jsonb
language plpgsql
volatile
security definer  -- deletes from tables that no client may write
set search_path = pg_catalog, pg_temp
as $$
declare
  v_room_id     text;
  v_room        public.rooms;
  v_rooms       integer := 0;
  v_deleted     integer := 0;
  v_tombstoned  integer := 0;
  v_counters    integer := 0;
  v_metrics     integer := 0;
  v_queued      integer := 0;
  v_ids         bigint[];
  v_removed     jsonb;
  v_count       integer;
begin
  -- Sizes first (22001), before any other work.
  perform watchium_private.check_size('p_user_id', pg_catalog.octet_length(p_user_id), 400);
  if p_user_id is null or pg_catalog.octet_length(p_user_id) > 400
     or pg_catalog.char_length(p_user_id) not between 1 and 100 then
    raise exception 'p_user_id must be a user id of 1 to 100 characters'
      using errcode = '22023';
  end if;
  if not watchium_private.caller_is_trusted() then
    raise exception 'forget_user removes another user''s data: service_role only'
      using errcode = '42501',
            hint = 'Call it from the account deletion path of your server (docs/security.md).';
  end if;

  -- Memberships: the leave path of leave_room, room by room in the lock order.
  for v_room_id in
    select m.room_id from public.room_members as m where m.user_id = p_user_id order by m.room_id
  loop
    select * into v_room from public.rooms as r where r.room_id = v_room_id for update;
    if found and watchium_private.remove_member(v_room, p_user_id, 'member_left',
                   pg_catalog.jsonb_build_object('user_id', p_user_id, 'reason', 'account_deleted')) then
      v_rooms := v_rooms + 1;
    end if;
  end loop;

  -- Comments: locked first (a concurrent reply holds its parent for key
  -- share, so it either committed before this lock and is seen below, or
  -- waits and then finds its parent gone). Deleted from the leaves up: a
  -- comment whose replies are all the user's goes in a later round, and so
  -- does a tombstone left without replies (as delete_comment does).
  select pg_catalog.array_agg(l.id order by l.id) into v_ids
  from (
    select c.id from public.comments as c where c.user_id = p_user_id order by c.id for update
  ) as l;
  while v_ids is not null loop
    with d as (
      delete from public.comments as c
      where c.id = any (v_ids)
        and not exists (select from public.comments as r where r.parent_id = c.id)
        and (c.user_id = p_user_id or c.deleted_at is not null)
      returning c.id, c.parent_id, c.room_id
    )
    select pg_catalog.count(*)::integer,
           coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
             'id', d.id, 'room_id', d.room_id, 'parent_id', d.parent_id)), '[]'::jsonb)
      into v_count, v_removed
    from d;
    exit when v_count = 0;
    v_deleted := v_deleted + v_count;
    perform watchium_private.emit_room_event(x.room_id, 'comment_deleted',
      pg_catalog.jsonb_build_object('id', x.id, 'tombstone', false))
    from pg_catalog.jsonb_to_recordset(v_removed) as x(id bigint, room_id text)
    where x.room_id is not null;
    -- Next round: the parents of what went, when they are the user's or tombstones.
    select pg_catalog.array_agg(l.id order by l.id) into v_ids
    from (
      select c.id from public.comments as c
      where c.id in (select x.parent_id from pg_catalog.jsonb_to_recordset(v_removed) as x(parent_id bigint))
        and (c.user_id = p_user_id or c.deleted_at is not null)
      order by c.id
      for update
    ) as l;
  end loop;

  -- What is left has other people's replies: authorless tombstones.
  with t as (
    update public.comments as c
    set message = '', avatar_url = null, video_timestamp = null,
        deleted_at = coalesce(c.deleted_at, pg_catalog.now()),
        user_id = null, username = 'deleted'
    where c.user_id = p_user_id
    returning c.id, c.room_id
  )
  select pg_catalog.count(*)::integer,
         coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object('id', t.id, 'room_id', t.room_id))
                  filter (where t.room_id is not null), '[]'::jsonb)
    into v_tombstoned, v_removed
  from t;
  perform watchium_private.emit_room_event(x.room_id, 'comment_deleted',
    pg_catalog.jsonb_build_object('id', x.id, 'tombstone', true))
  from pg_catalog.jsonb_to_recordset(v_removed) as x(id bigint, room_id text);

  delete from watchium_private.rate_limit_counters as c where c.subject = p_user_id;
  get diagnostics v_counters = row_count;
  delete from watchium_private.realtime_metrics as m where m.user_id = p_user_id;
  get diagnostics v_metrics = row_count;

  -- Queued episodes stay in their rooms' queues (other members chose to watch
  -- them too), without their author. Row locks only: a queue edit holding the
  -- room lock is waited for, and it waits for nothing of ours.
  update public.room_queue as q
  set added_by = null, added_by_username = 'deleted'
  where q.added_by = p_user_id;
  get diagnostics v_queued = row_count;

  return pg_catalog.jsonb_build_object(
    'user_id', p_user_id,
    'rooms_left', v_rooms,
    'comments_deleted', v_deleted,
    'comments_tombstoned', v_tombstoned,
    'rate_limit_counters_deleted', v_counters,
    'realtime_metrics_deleted', v_metrics,
    'queue_items_anonymized', v_queued
  );
end;
$$;
comment on function watchium_rpc.forget_user(text) is
  'Body of public.forget_user (same arguments, result and errors; documented there). Security definer: deletes from tables that no client may write. Callers reach it through public.forget_user, a security invoker entry point; schema watchium_rpc is not exposed by the Data API.';
comment on function public.forget_user(text) is
  'service_role only: forgets a deleted account. Leaves every room (host handed on), deletes the user''s comments (those with replies become authorless tombstones), removes presence, rate limit counters and realtime metrics, and leaves the user''s queued episodes in their queues without author. Ids in sync history and room events stay until they expire. Returns a summary.';
