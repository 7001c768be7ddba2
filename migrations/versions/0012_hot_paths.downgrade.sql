-- 0012 hot paths, downgrade: the definitions of 0007 (apply_host_control) and
-- 0004 (emit_room_event), 0003 (watchium_rpc.check_rate_limit), and the default
-- fillfactor of rooms.
set local lock_timeout = '5s';
set local statement_timeout = '60s';

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
  perform watchium_private.hide_private_room(v_room, p_room_id, v_user_id);
  -- rooms.host_user_id names the member flagged is_host (trigger
  -- _200_sync_room_host keeps them together, under this same row lock).
  if v_room.host_user_id is distinct from v_user_id then
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
      last_activity = pg_catalog.now()
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
  'Shared body of the host controls: rate limit, room lock, host check, new playback reference, bulk sync, one playback event. Internal.';

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
  v_delivery text := watchium_private.room_event_delivery();
  v_topic    text;
begin
  insert into watchium_private.room_events (room_id, event, payload)
  values (p_room_id, p_event, coalesce(p_payload, '{}'::jsonb))
  returning event_id into v_event_id;
  perform watchium_private.commit_durably();  -- an event is never soft state

  v_message := pg_catalog.jsonb_build_object(
    'event_id', v_event_id,
    'room_id', p_room_id,
    'event', p_event,
    'payload', coalesce(p_payload, '{}'::jsonb),
    'sent_at', pg_catalog.now()
  );

  v_topic := watchium_private.room_event_topic(p_room_id, p_event);
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
comment on function watchium_private.emit_room_event(text, text, jsonb) is
  'Logs a room event and delivers it to its topic (room_event_topic: room:<room_id>, or room:<room_id>:members for member broadcasts) through Supabase Realtime, or to NOTIFY channel "watchium:" || topic (plain PostgreSQL). Returns the event id. Internal: called by the RPC functions and triggers.';

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
  v_window_start timestamptz;
  v_live         integer;
  v_cap          integer;
begin
  perform watchium_private.check_size('p_user_id', pg_catalog.octet_length(p_user_id), 400);
  perform watchium_private.check_size('p_action', pg_catalog.octet_length(p_action), 200);
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

  if not exists (
    select from watchium_private.rate_limit_rules as r where r.action = p_action
  ) then
    v_window_start := pg_catalog.to_timestamp(
      pg_catalog.floor(extract(epoch from pg_catalog.now()) / (p_window_minutes * 60))
        * (p_window_minutes * 60)
    );
    if not exists (
      select from watchium_private.rate_limit_counters as c
      where c.subject = p_user_id and c.action = p_action
        and c.window_minutes = p_window_minutes and c.window_start = v_window_start
    ) then
      -- A new counter: serialize the user's new counters so the cap is exact.
      perform pg_catalog.pg_advisory_xact_lock(
        pg_catalog.hashtext('watchium_private.rate_limit_counters:' || p_user_id));
      v_cap := watchium_private.setting_integer('max_rate_limit_actions_per_user');
      select pg_catalog.count(*) into v_live
      from watchium_private.rate_limit_counters as c
      where c.subject = p_user_id
        and c.window_start + c.window_minutes * interval '1 minute' > pg_catalog.now()
        and not exists (select from watchium_private.rate_limit_rules as r where r.action = c.action);
      if v_live >= v_cap then
        raise exception 'p_action %: you already have % live rate limit counters of your own actions (at most %)',
          pg_catalog.quote_literal(p_action), v_live, v_cap
          using errcode = 'WD429',
                hint = 'Reuse action names; a counter ends with its window (max_rate_limit_actions_per_user).';
      end if;
    end if;
  end if;
  return watchium_private.consume_rate_limit(p_user_id, p_action, p_window_minutes, p_max_requests);
end;
$$;

alter table public.rooms reset (fillfactor);
