-- =============================================================================
-- 0012 hot paths
--
-- Less work per host control and per room event, every guarantee kept (rate
-- limit, host check under the room row lock, one durable 'playback' event):
--   apply_host_control  refreshes rooms.last_activity only when it is older
--                       than a minute, so the room UPDATE of a control
--                       changes no indexed column and can be HOT (the two
--                       listing indexes hold last_activity); the private-room
--                       check runs only when the caller is not the host (the
--                       host is a member: the check passes for it).
--   emit_room_event     commit_durably(), room_event_topic() and
--                       room_event_delivery() inlined: three nested calls
--                       (each with a SET clause) less per event.
--   rooms               fillfactor 90: room for the HOT versions on the page.
--   check_rate_limit    sizes compared inline (check_size called only to
--                       raise), the action counted by its own upsert instead
--                       of consume_rate_limit (which checked its arguments
--                       again), and the custom-action cap checked only when
--                       that upsert created a counter, after it, instead of
--                       two lookups before every call. Same results, errors
--                       and limits; the self-limit stays one upsert.
-- =============================================================================
set local lock_timeout = '5s';
set local statement_timeout = '60s';

-- Only new and updated pages use it: no rewrite (SHARE UPDATE EXCLUSIVE lock).
alter table public.rooms set (fillfactor = 90);

-- -----------------------------------------------------------------------------
--
-- The shared body of the host controls. The caller validated its arguments
-- and passes the caller's id (require_user_id, read once per control).
--   1. rate limit (sync_control) for the caller;
--   2. the room row lock (lock order), then the host check;
--   3. the new state: a new reference instant (playback_updated_at = now) at
--      p_time, or at the expected position when p_time is null;
--   4. one sync record per member, one snapshot row (nothing else per member: "needs to
--      resync" is derived from the new reference, see needs_resync);
--   5. one 'playback' room event.
-- Returns the new state.
-- last_activity moves when it is older than a minute: the listing indexes hold
-- it, so changing it on every control made every room UPDATE a non-HOT one
-- (three index entries per control).
-- -----------------------------------------------------------------------------
create or replace function watchium_private.apply_host_control(
  p_user_id text,
  p_room_id text,
  p_action text,
  p_is_playing boolean,
  p_time numeric,
  p_speed numeric
)
returns jsonb
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
declare
  v_user_id  text := p_user_id;
  v_room     public.rooms;
  v_old_speed numeric;
  v_position numeric;
  v_at       timestamptz;
  v_sync     jsonb;
  v_state    jsonb;
begin
  perform watchium_private.enforce_rate_limit(v_user_id, 'sync_control');

  select * into v_room from public.rooms as r where r.room_id = p_room_id for update;
  -- rooms.host_user_id names the member flagged is_host (trigger
  -- _200_sync_room_host keeps them together, under this same row lock).
  if v_room.host_user_id is distinct from v_user_id then
    -- Not the host (or no such room): a missing room, or a private one the
    -- caller is not a member of, answers P0002 as everywhere else. The host is
    -- a member, so the check is skipped for it.
    perform watchium_private.hide_private_room(v_room, p_room_id, v_user_id);
    raise exception 'only the host of room % controls playback', p_room_id
      using errcode = '42501', hint = 'Ask the host, or become host when the host leaves.';
  end if;

  -- The new reference instant is when the change happens, after the room lock
  -- was granted, not when the transaction began: a control that waited behind
  -- another one must not date its position back (playing clients would
  -- overshoot by the wait times the speed).
  v_at := pg_catalog.clock_timestamp();
  v_position := coalesce(p_time, watchium_private.room_expected_position(v_room, v_at));
  v_old_speed := v_room.playback_speed;  -- members were playing at the old speed

  update public.rooms as r
  set is_playing = coalesce(p_is_playing, r.is_playing),
      current_playback_time = v_position,
      playback_speed = coalesce(p_speed, r.playback_speed),
      playback_updated_at = v_at,
      last_activity = case
        when r.last_activity < pg_catalog.now() - interval '1 minute' then pg_catalog.now()
        else r.last_activity
      end
  where r.room_id = p_room_id
  returning * into v_room;

  v_sync := watchium_private.sync_room_members(
    p_room_id,
    v_position,
    case p_action when 'seek' then 'seek' when 'speed' then 'speed' else 'play_pause' end,
    v_user_id,
    v_old_speed
  );

  v_state := pg_catalog.jsonb_build_object(
    'room_id', v_room.room_id,
    'action', p_action,
    'is_playing', v_room.is_playing,
    'current_time', v_room.current_playback_time,
    'playback_speed', v_room.playback_speed,
    'playback_updated_at', v_room.playback_updated_at,
    'episode_number', v_room.episode_number,
    'host_user_id', v_room.host_user_id
  );
  perform watchium_private.emit_room_event(p_room_id, 'playback', v_state);
  return v_state || pg_catalog.jsonb_build_object('sync', v_sync);
end;
$$;
comment on function watchium_private.apply_host_control(text, text, text, boolean, numeric, numeric) is
  'Shared body of the host controls: rate limit, room lock, host check, new playback reference (last_activity refreshed when older than a minute), bulk sync, one playback event. Internal.';

-- -----------------------------------------------------------------------------
-- watchium_private.emit_room_event(room_id, event, payload) -> event_id
--
-- The message is {event_id, room_id, event, payload, sent_at}.
-- NOTIFY payloads must be shorter than 8000 bytes: a larger message is sent as
-- {event_id, room_id, event, truncated: true} and the listener reads the full
-- payload from the log, so a big payload never fails the transaction.
-- Delivery happens at commit; a rolled-back transaction sends nothing.
-- Every control and membership change emits one: room_event_delivery(),
-- room_event_topic() and commit_durably() are inlined here (same rules, see
-- those functions; a test compares them), one nested call each less.
-- -----------------------------------------------------------------------------
create or replace function watchium_private.emit_room_event(p_room_id text, p_event text, p_payload jsonb)
returns bigint
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
declare
  v_event_id bigint;
  v_message  jsonb;
  v_text     text;
  v_setting  text;
  v_delivery text;
  v_topic    text;
  v_replaced text;
begin
  insert into watchium_private.room_events (room_id, event, payload)
  values (p_room_id, p_event, coalesce(p_payload, '{}'::jsonb))
  returning event_id into v_event_id;

  -- commit_durably(), inlined: an event is never soft state. A heartbeat that
  -- relaxed synchronous_commit remembered the value it replaced.
  v_replaced := pg_catalog.current_setting('watchium.soft_commit', true);
  if v_replaced in ('on', 'local', 'remote_write', 'remote_apply') then
    perform pg_catalog.set_config('synchronous_commit', v_replaced, true),
            pg_catalog.set_config('watchium.soft_commit', '', true);
  end if;

  -- room_event_delivery(), inlined.
  v_setting := (
    select s.value #>> '{}' from watchium_private.settings as s where s.key = 'room_event_delivery'
  );
  v_delivery := case
    when coalesce(v_setting, 'auto') = 'notify' then 'notify'
    when pg_catalog.to_regprocedure('realtime.send(jsonb, text, text, boolean)') is null then 'notify'
    when v_setting = 'both' then 'both'
    else 'realtime'
  end;

  v_message := pg_catalog.jsonb_build_object(
    'event_id', v_event_id,
    'room_id', p_room_id,
    'event', p_event,
    'payload', coalesce(p_payload, '{}'::jsonb),
    'sent_at', pg_catalog.now()
  );

  -- room_event_topic(), inlined.
  v_topic := 'room:' || p_room_id
             || case when p_event in ('play', 'pause', 'seek', 'chat_message') then ':members' else '' end;
  if v_delivery in ('realtime', 'both') then
    -- Dynamic, and built by format(): realtime.send may not exist when this
    -- function is created or checked.
    execute pg_catalog.format('select %I.send($1, $2, $3, true)', 'realtime')
      using v_message, p_event, v_topic;
  end if;
  if v_delivery in ('notify', 'both') then
    v_text := v_message::text;
    if pg_catalog.octet_length(v_text) >= 8000 then
      v_text := pg_catalog.jsonb_build_object(
        'event_id', v_event_id, 'room_id', p_room_id, 'event', p_event, 'truncated', true
      )::text;
    end if;
    perform pg_catalog.pg_notify('watchium:' || v_topic, v_text);
  end if;

  return v_event_id;
end;
$$;

-- -----------------------------------------------------------------------------
-- public.check_rate_limit: the seed's RPC, made safe (its body).
--
-- Counts one request of p_action and returns whether it is within
-- p_max_requests per p_window_minutes. Callers spend only their own budget:
-- p_user_id must be the caller's own id unless the caller is trusted
-- (service_role, the database owner). Works for any action name, within two
-- bounds that keep one client from growing the counters table:
--   * the function is rate limited itself (rule check_rate_limit, per user);
--   * a user has at most max_rate_limit_actions_per_user live counters of
--     actions that are not ours (not in rate_limit_rules): a live counter is
--     one whose window has not ended. A call that would start one more raises
--     WD429 naming p_action (and its new counter is rolled back with it);
--     counters already started keep counting.
-- The common call (a counter that exists) is two upserts: the self-limit's and
-- the action's. Only a call whose upsert created a counter of an action
-- without a rule takes the user's advisory lock and counts the user's live
-- custom counters (its own included): concurrent creators serialize on the
-- lock, and each counts the others' committed counters, so the cap is exact.
-- Security definer: writes the private counters table.
-- -----------------------------------------------------------------------------
create or replace function watchium_rpc.check_rate_limit(
  p_user_id text,
  p_action text,
  p_window_minutes integer default 1,
  p_max_requests integer default 60
)
returns boolean
language plpgsql
volatile
security definer  -- writes watchium_private.rate_limit_counters, which no client may touch
set search_path = pg_catalog, pg_temp
as $$
declare
  v_count    integer;
  v_created  boolean;
  v_live     integer;
  v_cap      integer;
begin
  -- Sizes first (22001); check_size is called only to raise its error.
  if pg_catalog.octet_length(p_user_id) > 400 then
    perform watchium_private.check_size('p_user_id', pg_catalog.octet_length(p_user_id), 400);
  end if;
  if pg_catalog.octet_length(p_action) > 200 then
    perform watchium_private.check_size('p_action', pg_catalog.octet_length(p_action), 200);
  end if;
  if not watchium_private.caller_is_trusted()
     and p_user_id is distinct from watchium_private.require_user_id() then
    raise exception 'p_user_id must be your own user id: callers can only spend their own rate limit'
      using errcode = '42501';
  end if;
  if p_user_id is null or pg_catalog.char_length(p_user_id) not between 1 and 100 then
    raise exception 'p_user_id must be 1 to 100 characters' using errcode = '22023';
  end if;
  if p_action is null or p_action !~ '^[a-z][a-z0-9_]{0,49}$' then
    raise exception 'p_action must be 1 to 50 characters of [a-z0-9_], starting with a letter (got %)',
      pg_catalog.quote_nullable(p_action)
      using errcode = '22023';
  end if;
  if p_window_minutes is null or p_window_minutes not between 1 and 1440 then
    raise exception 'p_window_minutes must be between 1 and 1440 (got %)', p_window_minutes
      using errcode = '22023';
  end if;
  perform watchium_private.enforce_rate_limit(p_user_id, 'check_rate_limit');
  if p_max_requests is null or p_max_requests not between 1 and 1000000 then
    raise exception 'p_max_requests must be between 1 and 1000000 (got %)', p_max_requests
      using errcode = '22023';
  end if;

  -- consume_rate_limit's upsert (its arguments are checked above). xmax = 0:
  -- this statement inserted the row (a new counter) rather than updating it.
  insert into watchium_private.rate_limit_counters as c
    (subject, action, window_minutes, window_start, request_count)
  values (
    p_user_id, p_action, p_window_minutes,
    pg_catalog.to_timestamp(
      pg_catalog.floor(extract(epoch from pg_catalog.now()) / (p_window_minutes * 60)::double precision)
        * (p_window_minutes * 60)::double precision
    ),
    1
  )
  on conflict (subject, action, window_minutes, window_start)
    do update set request_count = c.request_count + 1
  returning c.request_count, c.xmax = 0
  into v_count, v_created;

  if v_created
     and not exists (select from watchium_private.rate_limit_rules as r where r.action = p_action) then
    -- A new counter of a custom action: serialize the user's new counters so
    -- the cap is exact, then count the live ones, this one included.
    perform pg_catalog.pg_advisory_xact_lock(
      pg_catalog.hashtext('watchium_private.rate_limit_counters:' || p_user_id));
    v_cap := watchium_private.setting_integer('max_rate_limit_actions_per_user');
    select pg_catalog.count(*) into v_live
    from watchium_private.rate_limit_counters as c
    where c.subject = p_user_id
      and c.window_start + c.window_minutes * interval '1 minute' > pg_catalog.now()
      and not exists (select from watchium_private.rate_limit_rules as r where r.action = c.action);
    if v_live > v_cap then
      raise exception 'p_action %: you already have % live rate limit counters of your own actions (at most %)',
        pg_catalog.quote_literal(p_action), v_live - 1, v_cap
        using errcode = 'WD429',
              hint = 'Reuse action names; a counter ends with its window (max_rate_limit_actions_per_user).';
    end if;
  end if;
  return v_count <= p_max_requests;
end;
$$;
