-- =============================================================================
-- 0040 a user can withdraw their join request
--
-- request_to_join keeps a request until a moderator answers it. Until now the
-- requester could not take it back: it stayed in the moderators' list and
-- counted against the user's max_join_requests_per_user (20 waiting
-- requests, all rooms together) until someone answered it.
--
--   withdraw_join_request(room)  deletes the caller's own pending or accepted
--                                (not yet used) request in the room, under
--                                the room lock, as answers are taken: a
--                                request is answered or withdrawn, never both.
--                                A refusal is not deleted, because the refusal
--                                is what makes the user wait
--                                join_request_retry_after before asking again.
--                                Returns {room_id, withdrawn}. It is idempotent,
--                                and answers alike for a missing room, a room
--                                the caller cannot see and no request.
--                                Event join_request_withdrawn {user_id}.
--                                Rate limit: 20 a minute.
-- New functions and a rate-limit rule: no table is locked. lock_timeout and
-- statement_timeout are set by migrations/env.py.
-- =============================================================================

insert into watchium_private.rate_limit_rules (action, max_requests, window_minutes, description) values
  ('withdraw_join_request', 20, 1, 'withdraw_join_request calls per user per minute.');

create function watchium_rpc.withdraw_join_request(p_room_id text)
returns jsonb
language plpgsql
volatile
security definer  -- deletes from room_join_requests, which no client may touch
set search_path = pg_catalog, pg_temp
as $$
declare
  v_user_id   text := watchium_private.require_user_id();
  v_withdrawn boolean;
begin
  -- Sizes first (22001), before any other work.
  perform watchium_private.check_size('p_room_id', pg_catalog.octet_length(p_room_id), 40);
  perform watchium_private.enforce_rate_limit(v_user_id, 'withdraw_join_request');
  if p_room_id is null or p_room_id !~ '^[a-z0-9]{10}$' then
    raise exception 'p_room_id must be a room id: 10 characters of [a-z0-9]'
      using errcode = '22023';
  end if;
  -- The room lock, as answer_join_request takes it: a request is answered or
  -- withdrawn, never both. A missing room locks nothing and has no request.
  perform from public.rooms as r where r.room_id = p_room_id for update;
  delete from watchium_private.room_join_requests as q
  where q.room_id = p_room_id
    and q.user_id = v_user_id
    and q.status in ('pending', 'approved');
  v_withdrawn := found;
  if v_withdrawn then
    perform watchium_private.emit_room_event(p_room_id, 'join_request_withdrawn',
      pg_catalog.jsonb_build_object('user_id', v_user_id));
  end if;
  return pg_catalog.jsonb_build_object('room_id', p_room_id, 'withdrawn', v_withdrawn);
end;
$$;
comment on function watchium_rpc.withdraw_join_request(text) is
  'Body of public.withdraw_join_request (same arguments, result and errors; documented there). Security definer: deletes from room_join_requests, which no client may touch. Callers reach it through public.withdraw_join_request, a security invoker entry point; schema watchium_rpc is not exposed by the Data API.';
revoke all on function watchium_rpc.withdraw_join_request(text) from public;
grant execute on function watchium_rpc.withdraw_join_request(text) to authenticated, service_role;

create function public.withdraw_join_request(p_room_id text)
returns jsonb
language plpgsql
volatile
security invoker  -- the body is the security definer function
set search_path = pg_catalog, pg_temp
set lock_timeout = '2s'  -- bounded lock waits; tuned by the rpc_lock_timeout setting
as $$
begin
  return watchium_rpc.withdraw_join_request(p_room_id);
end;
$$;
comment on function public.withdraw_join_request(text) is
  'Withdraws the caller''s own join request in a room: a pending one, or an accepted one not yet used (a refusal stays, with its wait). Idempotent. Returns {room_id, withdrawn}: withdrawn is false when there was nothing to withdraw, and a missing room or one the caller cannot see answers alike. Event join_request_withdrawn {user_id}.';
revoke all on function public.withdraw_join_request(text) from public, anon;
grant execute on function public.withdraw_join_request(text) to authenticated, service_role;
