-- =============================================================================
-- 0027 a room's join policy: the functions
--
-- join_room follows the join policy; request_to_join, get_join_requests,
-- answer_join_request and set_room_join_policy; a ban deletes the user's
-- request; forget_user deletes an account's requests. The column, the
-- requests table and the helpers are 0026's; see its header for the rules.
--
-- A revision of its own: its downgrade puts back the functions that do not
-- read 0026's column and helpers and commits before 0026's downgrade drops
-- them, so a call that started on these functions during a downgrade still
-- finds them.
-- =============================================================================

-- =============================================================================
-- join_room (0019): the join policy. An approval room admits a user whose
-- request was accepted (within join_approval_valid_for), whatever key the
-- user holds, and the join consumes the acceptance; everyone else gets 42501
-- naming request_to_join. An accepted user needs no key: the acceptance
-- shows it reached the room. The key check and the ban refusal are 0019's,
-- moved to helpers request_to_join shares.
-- =============================================================================
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
  v_request    watchium_private.room_join_requests;
  v_approved   boolean;
  v_refused    jsonb;
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

  v_request := watchium_private.live_join_request(v_room.room_id, v_user_id);
  v_approved := v_request.status is not distinct from 'approved';

  -- A private room needs its key, unless a moderator accepted the user's
  -- request (which the user could only make with the key).
  if not v_room.is_public and not v_approved then
    v_refused := watchium_private.check_access_key(v_room, v_user_id, p_access_key);
    if v_refused is not null then
      return v_refused;
    end if;
  end if;

  -- A ban in force refuses the join whatever the key: bans name users, so a
  -- rotated key changes nothing. Checked after the key, so that a private
  -- room is not revealed to someone without it.
  perform watchium_private.require_not_banned(v_room.room_id, v_user_id);

  -- Approval: the key alone admits nobody.
  if watchium_private.room_join_policy(v_room) = 'approval' and not v_approved then
    raise exception 'room % admits new members by approval: call request_to_join, then join_room once a moderator accepts', v_room.room_id
      using errcode = '42501',
            hint = case when v_request.status = 'pending' then 'Your request is pending.'
                        when v_request.status = 'refused' then 'Your request was refused.'
                        else 'The access key alone does not admit anyone to this room.' end;
  end if;

  perform watchium_private.check_membership_cap(v_user_id);
  -- An empty room: the joiner becomes host (the join trigger flags it).
  insert into public.room_members (room_id, user_id, username, avatar_url)
  values (v_room.room_id, v_user_id, v_username, v_avatar_url);
  -- The join consumes an acceptance (and ends any other request of the user).
  delete from watchium_private.room_join_requests as q
  where q.room_id = v_room.room_id and q.user_id = v_user_id;

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
  'Joins a room as the caller (idempotent). Private rooms need p_access_key; a wrong key returns {status: invalid_access_key, attempts_left} and is counted per user and per key (WD429 once either budget is spent; a rotated key starts a new budget). A room whose join policy is approval admits only a user whose request_to_join a moderator accepted (42501 otherwise, whatever the key; the join consumes the acceptance). 42501 for a banned user. WD409 past max_memberships_per_user. Returns {status, room, membership}.';

-- =============================================================================
-- public.request_to_join(room_id, username default null, message default
-- null, access_key default null): the caller asks to join a room whose join
-- policy is approval. Idempotent: asking again answers the request's status
-- without changing it. {status, room_id, ...}:
--   pending   (requested_at)  waiting for a moderator;
--   approved  (answered_at, valid_until)  join_room admits the caller once;
--   refused   (retry_after)   told once asked again; a new request may be
--                             made after join_request_retry_after;
--   member                    the caller is a member already;
--   invalid_access_key (attempts_left)  as join_room.
-- A private room needs p_access_key for a new request (the same check,
-- counts and answers as join_room, so a non-member without the key cannot
-- tell the room from a missing one); a user with a request in the room
-- needs it no more. A banned user gets join_room's refusal. A room that does
-- not need approval: WD409 naming join_room. A new request needs
-- p_username; WD409 past max_join_requests_per_room. Emits join_requested
-- {user_id, username} (never the message).
-- Security definer: reads room_secrets, writes room_join_requests.
-- =============================================================================
create function watchium_rpc.request_to_join(
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
revoke all on function watchium_rpc.request_to_join(text, text, text, text) from public;
grant execute on function watchium_rpc.request_to_join(text, text, text, text) to authenticated, service_role;

create function public.request_to_join(
  p_room_id text,
  p_username text default null,
  p_message text default null,
  p_access_key text default null
)
returns jsonb
language plpgsql
volatile
security invoker  -- the body is the security definer function
set search_path = pg_catalog, pg_temp
set lock_timeout = '2s'  -- bounded lock waits; tuned by the rpc_lock_timeout setting
as $$
begin
  return watchium_rpc.request_to_join(p_room_id, p_username, p_message, p_access_key);
end;
$$;
comment on function public.request_to_join(text, text, text, text) is
  'Asks to join a room whose join policy is approval (idempotent: asking again returns the status). A private room needs p_access_key for a new request (as join_room: invalid_access_key, WD429). Returns {status: pending | approved | refused | member | invalid_access_key, room_id, ...}. 42501 for a banned user; WD409 when the room needs no approval, or past max_join_requests_per_room. Event join_requested {user_id, username}.';
revoke all on function public.request_to_join(text, text, text, text) from public, anon;
grant execute on function public.request_to_join(text, text, text, text) to authenticated, service_role;

-- =============================================================================
-- public.get_join_requests(room_id): the room's pending and accepted (not yet
-- used) requests, oldest first, for members with approve_joins (default
-- co_host). {room_id, join_policy, requests: [{user_id, username, message,
-- status, created_at, answered_by, answered_at}]}. Refused requests and
-- users with a ban in force are not listed.
-- Security definer: reads room_join_requests.
-- =============================================================================
create function watchium_rpc.get_join_requests(p_room_id text)
returns jsonb
language plpgsql
stable
security definer  -- reads room_join_requests, which no client may read
set search_path = pg_catalog, pg_temp
as $$
declare
  v_user_id text := watchium_private.require_user_id();
  v_room    public.rooms;
begin
  -- Sizes first (22001), before any other work.
  perform watchium_private.check_size('p_room_id', pg_catalog.octet_length(p_room_id), 40);
  if p_room_id is null or p_room_id !~ '^[a-z0-9]{10}$' then
    raise exception 'p_room_id must be a room id: 10 characters of [a-z0-9]' using errcode = '22023';
  end if;
  select * into v_room from public.rooms as r where r.room_id = p_room_id;
  perform watchium_private.hide_private_room(v_room, p_room_id, v_user_id);
  perform watchium_private.require_room_permission(p_room_id, v_user_id, 'approve_joins');
  return pg_catalog.jsonb_build_object(
    'room_id', p_room_id,
    'join_policy', watchium_private.room_join_policy(v_room),
    'requests', (
      select coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
               'user_id', q.user_id, 'username', q.username, 'message', q.message,
               'status', q.status, 'created_at', q.created_at,
               'answered_by', q.answered_by, 'answered_at', q.answered_at)
             order by q.created_at, q.user_id), '[]'::jsonb)
      from watchium_private.room_join_requests as q
      where q.room_id = p_room_id
        and (q.status = 'pending'
             or (q.status = 'approved'
                 and q.answered_at > pg_catalog.now() - watchium_private.setting_interval('join_approval_valid_for')))
        and (watchium_private.active_ban(q.room_id, q.user_id)).user_id is null)
  );
end;
$$;
comment on function watchium_rpc.get_join_requests(text) is
  'Body of public.get_join_requests (same arguments, result and errors; documented there). Security definer: reads room_join_requests, which no client may read. Callers reach it through public.get_join_requests, a security invoker entry point; schema watchium_rpc is not exposed by the Data API.';
revoke all on function watchium_rpc.get_join_requests(text) from public;
grant execute on function watchium_rpc.get_join_requests(text) to authenticated, service_role;

create function public.get_join_requests(p_room_id text)
returns jsonb
language plpgsql
stable
security invoker  -- the body is the security definer function
set search_path = pg_catalog, pg_temp
set lock_timeout = '2s'  -- bounded lock waits; tuned by the rpc_lock_timeout setting
as $$
begin
  return watchium_rpc.get_join_requests(p_room_id);
end;
$$;
comment on function public.get_join_requests(text) is
  'The room''s pending and accepted (not yet used) join requests, oldest first: {room_id, join_policy, requests: [{user_id, username, message, status, created_at, answered_by, answered_at}]}. Needs approve_joins (default co_host); 42501 otherwise.';
revoke all on function public.get_join_requests(text) from public, anon;
grant execute on function public.get_join_requests(text) to authenticated, service_role;

-- =============================================================================
-- public.answer_join_request(room_id, user_id, accept): a member with
-- approve_joins (default co_host) accepts or refuses a pending request.
-- Accepted: the user may join once (join_room) within
-- join_approval_valid_for. Refused: the request leaves the list, its message
-- is erased, and the requester learns it when it asks again. A request is
-- answered once: P0002 for no pending request (none, refused, a user with a
-- ban in force), WD409 for one already accepted; two moderators answering at
-- once serialize on the room lock, and the second gets that answer.
-- {room_id, user_id, status: approved | refused}. Event
-- join_request_answered {user_id, answered_by} (the outcome is not told to
-- the room: an acceptance shows as member_joined when the user joins).
-- Security definer: writes room_join_requests.
-- =============================================================================
create function watchium_rpc.answer_join_request(p_room_id text, p_user_id text, p_accept boolean)
returns jsonb
language plpgsql
volatile
security definer  -- writes room_join_requests, which no client may write
set search_path = pg_catalog, pg_temp
as $$
declare
  v_user_id text := watchium_private.require_user_id();
  v_room    public.rooms;
  v_request watchium_private.room_join_requests;
begin
  -- Sizes first (22001), before any other work.
  perform watchium_private.check_size('p_room_id', pg_catalog.octet_length(p_room_id), 40);
  perform watchium_private.check_size('p_user_id', pg_catalog.octet_length(p_user_id), 400);
  if p_user_id is null or pg_catalog.char_length(p_user_id) not between 1 and 100 then
    raise exception 'p_user_id must be a user id of 1 to 100 characters' using errcode = '22023';
  end if;
  if p_accept is null then
    raise exception 'p_accept must be true (accept) or false (refuse)' using errcode = '22023';
  end if;
  perform watchium_private.enforce_rate_limit(v_user_id, 'answer_join_request');
  v_room := watchium_private.lock_room(p_room_id);
  perform watchium_private.hide_private_room(v_room, p_room_id, v_user_id);
  perform watchium_private.require_room_permission(v_room.room_id, v_user_id, 'approve_joins');

  v_request := watchium_private.live_join_request(v_room.room_id, p_user_id);
  if v_request.status is null or v_request.status = 'refused'
     or (watchium_private.active_ban(v_room.room_id, p_user_id)).user_id is not null then
    raise exception 'user % has no pending request to join room %', p_user_id, v_room.room_id
      using errcode = 'P0002';
  end if;
  if v_request.status = 'approved' then
    raise exception 'the request of user % to join room % was already accepted', p_user_id, v_room.room_id
      using errcode = 'WD409',
            hint = 'A request is answered once; ban the user to keep it out.';
  end if;

  update watchium_private.room_join_requests as q
  set status = case when p_accept then 'approved' else 'refused' end,
      message = null,
      answered_by = v_user_id,
      answered_at = pg_catalog.now()
  where q.room_id = v_room.room_id and q.user_id = p_user_id;
  perform watchium_private.emit_room_event(v_room.room_id, 'join_request_answered',
    pg_catalog.jsonb_build_object('user_id', p_user_id, 'answered_by', v_user_id));
  return pg_catalog.jsonb_build_object(
    'room_id', v_room.room_id, 'user_id', p_user_id,
    'status', case when p_accept then 'approved' else 'refused' end);
end;
$$;
comment on function watchium_rpc.answer_join_request(text, text, boolean) is
  'Body of public.answer_join_request (same arguments, result and errors; documented there). Security definer: writes room_join_requests, which no client may write. Callers reach it through public.answer_join_request, a security invoker entry point; schema watchium_rpc is not exposed by the Data API.';
revoke all on function watchium_rpc.answer_join_request(text, text, boolean) from public;
grant execute on function watchium_rpc.answer_join_request(text, text, boolean) to authenticated, service_role;

create function public.answer_join_request(p_room_id text, p_user_id text, p_accept boolean)
returns jsonb
language plpgsql
volatile
security invoker  -- the body is the security definer function
set search_path = pg_catalog, pg_temp
set lock_timeout = '2s'  -- bounded lock waits; tuned by the rpc_lock_timeout setting
as $$
begin
  return watchium_rpc.answer_join_request(p_room_id, p_user_id, p_accept);
end;
$$;
comment on function public.answer_join_request(text, text, boolean) is
  'Accepts (p_accept true: the user may then join once with join_room) or refuses a pending join request. Needs approve_joins (default co_host). P0002 without a pending request, WD409 when it was already accepted: a request is answered once. Returns {room_id, user_id, status: approved | refused}. Event join_request_answered {user_id, answered_by}.';
revoke all on function public.answer_join_request(text, text, boolean) from public, anon;
grant execute on function public.answer_join_request(text, text, boolean) to authenticated, service_role;

-- =============================================================================
-- public.set_room_join_policy(room_id, policy): sets rooms.join_policy.
-- Needs update_room (default host: the permission of the room's settings,
-- privacy and key included). 'open' needs a public room and 'key' a private
-- one (22023 naming update_room's p_is_public otherwise); 'approval' either;
-- null goes back to the rule of the visibility. Leaving approval drops the
-- pending and refused requests (accepted ones still admit their user once).
-- {room_id, join_policy, previous_join_policy, requests_dropped} (policies
-- in force); room_updated {join_policy} when the policy in force changed.
-- Security definer: updates rooms and room_join_requests.
-- =============================================================================
create function watchium_rpc.set_room_join_policy(p_room_id text, p_policy text)
returns jsonb
language plpgsql
volatile
security definer  -- updates rooms and room_join_requests, which no client may write
set search_path = pg_catalog, pg_temp
as $$
declare
  v_user_id  text := watchium_private.require_user_id();
  v_room     public.rooms;
  v_previous text;
  v_policy   text;
  v_dropped  integer := 0;
begin
  -- Sizes first (22001), before any other work.
  perform watchium_private.check_size('p_room_id', pg_catalog.octet_length(p_room_id), 40);
  perform watchium_private.check_size('p_policy', pg_catalog.octet_length(p_policy), 40);
  if p_policy is not null and p_policy not in ('open', 'key', 'approval') then
    raise exception 'p_policy must be open, key, approval or null (got %)', p_policy
      using errcode = '22023',
            hint = 'null follows the room''s visibility: open when public, key when private.';
  end if;
  perform watchium_private.enforce_rate_limit(v_user_id, 'set_room_join_policy');
  v_room := watchium_private.lock_room(p_room_id);
  perform watchium_private.hide_private_room(v_room, p_room_id, v_user_id);
  perform watchium_private.require_room_permission(v_room.room_id, v_user_id, 'update_room');
  if p_policy = 'open' and not v_room.is_public then
    raise exception 'p_policy open needs a public room: a private room is reached with its access key'
      using errcode = '22023',
            hint = 'Make the room public first (update_room with p_is_public => true).';
  end if;
  if p_policy = 'key' and v_room.is_public then
    raise exception 'p_policy key needs a private room: public rooms have no access key'
      using errcode = '22023',
            hint = 'Make the room private first (update_room with p_is_public => false); it then gets a key.';
  end if;

  v_previous := watchium_private.room_join_policy(v_room);
  update public.rooms as r
  set join_policy = p_policy
  where r.room_id = v_room.room_id and r.join_policy is distinct from p_policy
  returning * into v_room;
  if not found then
    select * into v_room from public.rooms as r where r.room_id = p_room_id;
  end if;
  v_policy := watchium_private.room_join_policy(v_room);
  if v_previous = 'approval' and v_policy <> 'approval' then
    delete from watchium_private.room_join_requests as q
    where q.room_id = v_room.room_id and q.status <> 'approved';
    get diagnostics v_dropped = row_count;
  end if;
  if v_policy <> v_previous then
    perform watchium_private.emit_room_event(v_room.room_id, 'room_updated',
      pg_catalog.jsonb_build_object('join_policy', v_policy));
  end if;
  return pg_catalog.jsonb_build_object(
    'room_id', v_room.room_id, 'join_policy', v_policy, 'previous_join_policy', v_previous,
    'requests_dropped', v_dropped);
end;
$$;
comment on function watchium_rpc.set_room_join_policy(text, text) is
  'Body of public.set_room_join_policy (same arguments, result and errors; documented there). Security definer: updates rooms and room_join_requests, which no client may write. Callers reach it through public.set_room_join_policy, a security invoker entry point; schema watchium_rpc is not exposed by the Data API.';
revoke all on function watchium_rpc.set_room_join_policy(text, text) from public;
grant execute on function watchium_rpc.set_room_join_policy(text, text) to authenticated, service_role;

create function public.set_room_join_policy(p_room_id text, p_policy text)
returns jsonb
language plpgsql
volatile
security invoker  -- the body is the security definer function
set search_path = pg_catalog, pg_temp
set lock_timeout = '2s'  -- bounded lock waits; tuned by the rpc_lock_timeout setting
as $$
begin
  return watchium_rpc.set_room_join_policy(p_room_id, p_policy);
end;
$$;
comment on function public.set_room_join_policy(text, text) is
  'Sets the room''s join policy: open (public rooms), key (private rooms), approval (a member with approve_joins accepts each newcomer), or null (by visibility). Needs update_room (default host). Leaving approval drops pending and refused requests. Returns {room_id, join_policy, previous_join_policy, requests_dropped}; event room_updated {join_policy}.';
revoke all on function public.set_room_join_policy(text, text) from public, anon;
grant execute on function public.set_room_join_policy(text, text) to authenticated, service_role;

-- =============================================================================
-- ban_user (0019): a ban deletes the user's join request in the room.
-- =============================================================================
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
  -- A banned user's join request goes (request_to_join refuses it anyway).
  delete from watchium_private.room_join_requests as q
  where q.room_id = p_room.room_id and q.user_id = p_user_id;
  perform watchium_private.emit_room_event(p_room.room_id, 'member_banned',
    pg_catalog.jsonb_build_object('user_id', p_user_id, 'banned_by', p_actor, 'ends_at', p_ends_at));
  return watchium_private.remove_member(p_room, p_user_id, 'member_kicked',
    pg_catalog.jsonb_build_object('user_id', p_user_id, 'kicked_by', p_actor));
end;
$$;
comment on function watchium_private.ban_user(public.rooms, text, text, timestamptz, text) is
  'Bans p_user_id from the room until p_ends_at (null: for good): checks the ban permission and, for a member, its lower role; deletes the user''s join request, emits member_banned and removes a member (member_kicked). Caller holds the room lock. Internal.';

-- =============================================================================
-- forget_user (0022): a forgotten account's join requests are deleted
-- (join_requests_deleted in the result). Otherwise 0022's definition.
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
  v_requests    integer := 0;
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

  -- Join requests carry the user's name and message: they go.
  delete from watchium_private.room_join_requests as q where q.user_id = p_user_id;
  get diagnostics v_requests = row_count;

  return pg_catalog.jsonb_build_object(
    'user_id', p_user_id,
    'rooms_left', v_rooms,
    'comments_deleted', v_deleted,
    'comments_tombstoned', v_tombstoned,
    'rate_limit_counters_deleted', v_counters,
    'realtime_metrics_deleted', v_metrics,
    'queue_items_anonymized', v_queued,
    'join_requests_deleted', v_requests
  );
end;
$$;
comment on function watchium_rpc.forget_user(text) is
  'Body of public.forget_user (same arguments, result and errors; documented there). Security definer: deletes from tables that no client may write. Callers reach it through public.forget_user, a security invoker entry point; schema watchium_rpc is not exposed by the Data API.';
comment on function public.forget_user(text) is
  'service_role only: forgets a deleted account. Leaves every room (host handed on), deletes the user''s comments (those with replies become authorless tombstones), removes presence, rate limit counters and realtime metrics, deletes the user''s join requests, and leaves the user''s queued episodes in their queues without author. Ids in sync history and room events stay until they expire. Returns a summary.';
