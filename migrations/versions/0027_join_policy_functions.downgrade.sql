-- =============================================================================
-- 0027 join policy functions (downgrade): the join-request RPCs go;
-- join_room, ban_user and forget_user as before (0026's downgrade then drops
-- the helpers, the requests table and rooms.join_policy).
-- =============================================================================

-- forget_user as 0022 defined it.
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

-- ban_user as 0019 defined it.
create or replace function watchium_private.ban_user(
  p_room public.rooms,
  p_actor text,
  p_user_id text,
  p_ends_at timestamptz,
  p_reason text
)
returns boolean
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
begin
  perform watchium_private.require_room_permission(p_room.room_id, p_actor, 'ban');
  if p_user_id = p_actor then
    raise exception 'p_user_id must be another user: you cannot ban yourself'
      using errcode = '22023', hint = 'Use leave_room.';
  end if;
  if exists (select from public.room_members as m
             where m.room_id = p_room.room_id and m.user_id = p_user_id) then
    perform watchium_private.require_outranks(p_room.room_id, p_actor, p_user_id, 'ban');
  end if;
  insert into watchium_private.room_bans as b (room_id, user_id, banned_by, reason, ends_at)
  values (p_room.room_id, p_user_id, p_actor, p_reason, p_ends_at)
  on conflict (room_id, user_id) do update
    set banned_by = excluded.banned_by, reason = excluded.reason,
        created_at = pg_catalog.now(), ends_at = excluded.ends_at;
  perform watchium_private.emit_room_event(p_room.room_id, 'member_banned',
    pg_catalog.jsonb_build_object('user_id', p_user_id, 'banned_by', p_actor, 'ends_at', p_ends_at));
  return watchium_private.remove_member(p_room, p_user_id, 'member_kicked',
    pg_catalog.jsonb_build_object('user_id', p_user_id, 'kicked_by', p_actor));
end;
$$;
comment on function watchium_private.ban_user(public.rooms, text, text, timestamptz, text) is
  'Bans p_user_id from the room until p_ends_at (null: for good): checks the ban permission and, for a member, its lower role; emits member_banned and removes a member (member_kicked). Caller holds the room lock. Internal.';

-- join_room (0005): a ban in force refuses the join, whatever the key.
create or replace function watchium_rpc.join_room(
  p_room_id text,
  p_access_key text default null,
  p_username text default null,
  p_avatar_url text default null
)
returns jsonb
language plpgsql
volatile
security definer  -- writes room_members and reads room_secrets, which no client may touch
set search_path = pg_catalog, pg_temp
as $$
declare
  v_user_id    text := watchium_private.require_user_id();
  v_username   text := watchium_private.check_username('p_username', p_username);
  v_avatar_url text := watchium_private.check_url('p_avatar_url', p_avatar_url);
  v_room       public.rooms;
  v_member     public.room_members;
  v_secret     watchium_private.room_secrets;
  v_budget     integer;
  v_user_left  integer;
  v_ban        watchium_private.room_bans;
begin
  -- Sizes first (22001), before any other work.
  perform watchium_private.check_size('p_room_id', pg_catalog.octet_length(p_room_id), 40);
  perform watchium_private.check_size('p_access_key', pg_catalog.octet_length(p_access_key), 24);
  perform watchium_private.check_size('p_username', pg_catalog.octet_length(p_username), 200);
  perform watchium_private.check_size('p_avatar_url', pg_catalog.octet_length(p_avatar_url), 8192);
  perform watchium_private.enforce_rate_limit(v_user_id, 'join_room');
  if p_room_id is null or p_room_id !~ '^[a-z0-9]{10}$' then
    raise exception 'p_room_id must be a room id: 10 characters of [a-z0-9]'
      using errcode = '22023';
  end if;
  select * into v_room from public.rooms as r where r.room_id = p_room_id for update;
  if not found then
    -- A missing room is answered as a private room whose key the caller does
    -- not have (same errors, a wrong key counted): non-members cannot tell them apart.
    v_room.room_id := p_room_id;
    v_room.is_public := false;
  end if;

  select * into v_member
  from public.room_members as m
  where m.room_id = v_room.room_id and m.user_id = v_user_id;
  if found then
    return pg_catalog.jsonb_build_object(
      'status', 'already_member',
      'room', pg_catalog.to_jsonb(v_room),
      'membership', pg_catalog.to_jsonb(v_member)
    );
  end if;

  if v_username is null then
    raise exception 'p_username is required to join a room'
      using errcode = '22023';
  end if;

  if not v_room.is_public then
    if p_access_key is null or p_access_key !~ '^[0-9]{6}$' then
      raise exception 'p_access_key must be the room''s 6-digit access key'
        using errcode = '22023',
              hint = 'Private rooms need the access key the host shares (a room id that names no room gets the same answer).';
    end if;
    -- Count the user's attempt first (locks the counter), compare, refund if right.
    v_user_left := watchium_private.count_key_attempt(v_user_id, 'join_room_key_user', 1);
    if v_user_left < 0 then
      raise exception 'too many wrong access keys for this user'
        using errcode = 'WD429',
              hint = 'Retry within the hour.';
    end if;
    select * into v_secret
    from watchium_private.room_secrets as s
    where s.room_id = v_room.room_id;
    v_budget := watchium_private.setting_integer('access_key_guess_budget')
              + watchium_private.setting_integer('access_key_guess_budget_per_hour')
                * pg_catalog.floor(extract(epoch from pg_catalog.now() - v_secret.created_at) / 3600)::integer;
    if v_secret.wrong_attempts >= v_budget then
      raise exception 'too many wrong access keys for this room''s key'
        using errcode = 'WD429',
              hint = 'Ask the host for a new key (update_room with p_rotate_access_key); a new key works at once.';
    end if;
    if v_secret.access_key is null or v_secret.access_key <> p_access_key then
      update watchium_private.room_secrets as s
      set wrong_attempts = s.wrong_attempts + 1
      where s.room_id = v_room.room_id;
      return pg_catalog.jsonb_build_object(
        'status', 'invalid_access_key',
        'room_id', v_room.room_id,
        'attempts_left', least(v_user_left, v_budget - v_secret.wrong_attempts - 1)
      );
    end if;
    perform watchium_private.count_key_attempt(v_user_id, 'join_room_key_user', -1);
  end if;

  -- A ban in force refuses the join whatever the key: bans name users, so a
  -- rotated key changes nothing. Checked after the key, so that a private
  -- room is not revealed to someone without it.
  v_ban := watchium_private.active_ban(v_room.room_id, v_user_id);
  if v_ban.user_id is not null then
    raise exception 'you are banned from room % %', v_room.room_id,
      case when v_ban.ends_at is null then 'for good'
           else 'until ' || pg_catalog.to_char(v_ban.ends_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') end
      using errcode = '42501',
            hint = coalesce('Reason: ' || v_ban.reason, 'Ask a moderator of the room.');
  end if;

  perform watchium_private.check_membership_cap(v_user_id);
  -- An empty room: the joiner becomes host (the join trigger flags it).
  insert into public.room_members (room_id, user_id, username, avatar_url)
  values (v_room.room_id, v_user_id, v_username, v_avatar_url);

  select * into v_member
  from public.room_members as m
  where m.room_id = v_room.room_id and m.user_id = v_user_id;
  select * into v_room from public.rooms as r where r.room_id = v_room.room_id;
  return pg_catalog.jsonb_build_object(
    'status', 'joined',
    'room', pg_catalog.to_jsonb(v_room),
    'membership', pg_catalog.to_jsonb(v_member)
  );
end;
$$;
comment on function watchium_rpc.join_room(text, text, text, text) is
  'Body of public.join_room (same arguments, result and errors; documented there). Security definer: writes room_members and reads room_secrets, which no client may touch. Callers reach it through public.join_room, a security invoker entry point; schema watchium_rpc is not exposed by the Data API.';
comment on function public.join_room(text, text, text, text) is
  'Joins a room as the caller (idempotent). Private rooms need p_access_key; a wrong key returns {status: invalid_access_key, attempts_left} and is counted per user and per key (WD429 once either budget is spent; a rotated key starts a new budget). WD409 past max_memberships_per_user. Returns {status, room, membership}.';

drop function public.set_room_join_policy(text, text);
drop function watchium_rpc.set_room_join_policy(text, text);
drop function public.answer_join_request(text, text, boolean);
drop function watchium_rpc.answer_join_request(text, text, boolean);
drop function public.get_join_requests(text);
drop function watchium_rpc.get_join_requests(text);
drop function public.request_to_join(text, text, text, text);
drop function watchium_rpc.request_to_join(text, text, text, text);
