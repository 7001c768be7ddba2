-- =============================================================================
-- 0028 join requests per user
--
-- 0027 capped the requests one room holds, not the rooms one user asks: an
-- account could leave a waiting request in every approval room it can find,
-- each kept until a moderator answers. request_to_join now refuses a new
-- request (WD409) while the user has max_join_requests_per_user (20) waiting,
-- all rooms together; counted under a per-user advisory lock, so concurrent
-- requests of one user cannot pass the cap together. The count, and
-- forget_user's delete, read room_join_requests_user_id_idx.
--
-- The index is built plainly (not concurrently: a revision runs in one
-- transaction): the table is new in 0026 and holds at most
-- max_join_requests_per_room waiting and accepted rows per room, and its
-- SHARE lock blocks only request writes for the build. It is the only
-- existing table this revision locks.
-- =============================================================================

insert into watchium_private.settings (key, value, description) values
  ('max_join_requests_per_user', '20',
   'Waiting join requests one user may have, all rooms together; past it request_to_join raises WD409.');

-- squawk-ignore require-concurrent-index-creation
create index room_join_requests_user_id_idx on watchium_private.room_join_requests (user_id);

-- request_to_join (0027): the per-user cap on a new request.
create or replace function watchium_rpc.request_to_join(
  p_room_id text,
  p_username text default null,
  p_message text default null,
  p_access_key text default null
)
returns jsonb
language plpgsql
volatile
security definer  -- reads room_secrets and writes room_join_requests, which no client may touch
set search_path = pg_catalog, pg_temp
as $$
declare
  v_user_id  text := watchium_private.require_user_id();
  v_username text;
  v_message  text;
  v_room     public.rooms;
  v_request  watchium_private.room_join_requests;
  v_refused  jsonb;
  v_cap      integer;
  v_count    integer;
begin
  -- Sizes first (22001), before any other work.
  perform watchium_private.check_size('p_room_id', pg_catalog.octet_length(p_room_id), 40);
  perform watchium_private.check_size('p_username', pg_catalog.octet_length(p_username), 200);
  perform watchium_private.check_size('p_message', pg_catalog.octet_length(p_message), 800);
  perform watchium_private.check_size('p_access_key', pg_catalog.octet_length(p_access_key), 24);
  v_username := watchium_private.check_username('p_username', p_username);
  v_message := watchium_private.check_text('p_message', p_message, 1, 200);
  perform watchium_private.enforce_rate_limit(v_user_id, 'request_to_join');
  if p_room_id is null or p_room_id !~ '^[a-z0-9]{10}$' then
    raise exception 'p_room_id must be a room id: 10 characters of [a-z0-9]'
      using errcode = '22023';
  end if;
  -- The room lock serializes requests and answers of the room (the cap is exact).
  select * into v_room from public.rooms as r where r.room_id = p_room_id for update;
  if not found then
    -- As join_room: a missing room is a private room whose key the caller lacks.
    v_room.room_id := p_room_id;
    v_room.is_public := false;
  end if;

  if exists (select from public.room_members as m
             where m.room_id = v_room.room_id and m.user_id = v_user_id) then
    return pg_catalog.jsonb_build_object('status', 'member', 'room_id', v_room.room_id);
  end if;

  v_request := watchium_private.live_join_request(v_room.room_id, v_user_id);
  if not v_room.is_public and v_request.user_id is null then
    v_refused := watchium_private.check_access_key(v_room, v_user_id, p_access_key);
    if v_refused is not null then
      return v_refused;
    end if;
  end if;
  perform watchium_private.require_not_banned(v_room.room_id, v_user_id);

  if v_request.status = 'approved' then
    return pg_catalog.jsonb_build_object(
      'status', 'approved', 'room_id', v_room.room_id, 'answered_at', v_request.answered_at,
      'valid_until', v_request.answered_at + watchium_private.setting_interval('join_approval_valid_for'));
  end if;
  if watchium_private.room_join_policy(v_room) <> 'approval' then
    raise exception 'room % does not need approval to join: call join_room', v_room.room_id
      using errcode = 'WD409',
            hint = case when v_room.is_public then 'Anyone may join this room.'
                        else 'Join with the access key.' end;
  end if;
  if v_request.status = 'pending' then
    return pg_catalog.jsonb_build_object(
      'status', 'pending', 'room_id', v_room.room_id, 'requested_at', v_request.created_at);
  end if;
  if v_request.status = 'refused' then
    return pg_catalog.jsonb_build_object(
      'status', 'refused', 'room_id', v_room.room_id,
      'retry_after', v_request.answered_at + watchium_private.setting_interval('join_request_retry_after'));
  end if;

  -- A new request.
  if v_username is null then
    raise exception 'p_username is required to request to join a room'
      using errcode = '22023';
  end if;
  -- The user's waiting requests, all rooms, serialized per user by a transaction
  -- advisory lock (as memberships are): taken after the room lock, and no room
  -- lock is taken after it, so it adds no lock cycle.
  perform pg_catalog.pg_advisory_xact_lock(
    pg_catalog.hashtext('watchium_private.room_join_requests:' || v_user_id));
  v_cap := watchium_private.setting_integer('max_join_requests_per_user');
  select pg_catalog.count(*) into v_count
  from watchium_private.room_join_requests as q
  where q.user_id = v_user_id and q.status = 'pending';
  if v_count >= v_cap then
    raise exception 'you have % join requests waiting, the most one user may have (max_join_requests_per_user = %)',
      v_count, v_cap
      using errcode = 'WD409',
            hint = 'Wait for answers (request_to_join tells the status) before asking other rooms.';
  end if;
  -- Requests that no longer count (an acceptance not used in time, a refusal
  -- whose wait is over) go first: they hold no place.
  delete from watchium_private.room_join_requests as q
  where q.room_id = v_room.room_id
    and ((q.status = 'approved'
          and q.answered_at <= pg_catalog.now() - watchium_private.setting_interval('join_approval_valid_for'))
         or (q.status = 'refused'
             and q.answered_at <= pg_catalog.now() - watchium_private.setting_interval('join_request_retry_after')));
  v_cap := watchium_private.setting_integer('max_join_requests_per_room');
  select pg_catalog.count(*) into v_count
  from watchium_private.room_join_requests as q
  where q.room_id = v_room.room_id and q.status <> 'refused';
  if v_count >= v_cap then
    raise exception 'room % has % join requests waiting, the most a room holds (max_join_requests_per_room = %)',
      v_room.room_id, v_count, v_cap
      using errcode = 'WD409',
            hint = 'Retry once the room''s moderators have answered some.';
  end if;
  insert into watchium_private.room_join_requests as q (room_id, user_id, username, message)
  values (v_room.room_id, v_user_id, v_username, v_message)
  returning * into v_request;
  perform watchium_private.emit_room_event(v_room.room_id, 'join_requested',
    pg_catalog.jsonb_build_object('user_id', v_user_id, 'username', v_username));
  return pg_catalog.jsonb_build_object(
    'status', 'pending', 'room_id', v_room.room_id, 'requested_at', v_request.created_at);
end;
$$;
comment on function watchium_rpc.request_to_join(text, text, text, text) is
  'Body of public.request_to_join (same arguments, result and errors; documented there). Security definer: reads room_secrets and writes room_join_requests, which no client may touch. Callers reach it through public.request_to_join, a security invoker entry point; schema watchium_rpc is not exposed by the Data API.';
