-- =============================================================================
-- 0011 room sync options
--
-- The tunables of playback coordination, per room, with project-wide defaults
-- in watchium_private.settings:
--   drift_perfect, drift_good, drift_minor   sync level boundaries (0.5/1/2 s)
--   first_load_timeout, rebuffer_timeout     how long a room waits for a
--                                            buffering member (60 s / 10 s)
--   min_start_lead                           the least lead of a scheduled
--                                            start (0.5 s)
--   episode_countdown                        countdown before an episode
--                                            starts (0 = off)
-- Stored as nullable columns of public.rooms: null follows the project
-- default, so changing a setting changes every room that did not choose its
-- own value. Columns of the room rather than a 1:1 table because the
-- heartbeat already reads the room row (no extra join on the hot path).
-- Adding nullable columns without a default rewrites nothing. The CHECK
-- constraints are added NOT VALID and validated in the same transaction, so
-- the ACCESS EXCLUSIVE lock of the ALTER is still held while the validation
-- reads rooms once (every row is null in the new columns; rooms has one row
-- per room). lock_timeout bounds the wait for that lock.
-- lock_timeout and statement_timeout are set by migrations/env.py for every
-- revision.
--
-- public.set_room_sync_options(room_id, options) (host) and
-- public.get_room_sync_options(room_id) (members) read and write them;
-- watchium_private.room_sync_options(room) is the one definition of the
-- effective values, for the functions that use them.
-- =============================================================================

insert into watchium_private.settings (key, value, description) values
  ('sync_drift_perfect', '0.5',
   'Default sync level boundary, seconds: a drift up to this is perfect. Rooms may choose their own (set_room_sync_options).'),
  ('sync_drift_good', '1',
   'Default sync level boundary, seconds: a drift up to this is good. Rooms may choose their own.'),
  ('sync_drift_minor', '2',
   'Default sync level boundary, seconds: a drift up to this is minor_drift and still synced; above it a member is out_of_sync. Rooms may choose their own.'),
  ('sync_first_load_timeout', '60',
   'Default seconds a room waits for a member buffering its first load before excusing it. Rooms may choose their own.'),
  ('sync_rebuffer_timeout', '10',
   'Default seconds a room waits for a member re-buffering before excusing it. Rooms may choose their own.'),
  ('sync_min_start_lead', '0.5',
   'Default least lead, seconds, of a scheduled start (resume, play after a seek, episode start). Rooms may choose their own.'),
  ('sync_episode_countdown', '0',
   'Default countdown, seconds, before an episode starts (0 = none). Rooms may choose their own.');

alter table public.rooms
  add column sync_drift_perfect numeric(6,2),
  add column sync_drift_good numeric(6,2),
  add column sync_drift_minor numeric(6,2),
  add column sync_first_load_timeout numeric(6,2),
  add column sync_rebuffer_timeout numeric(6,2),
  add column sync_min_start_lead numeric(6,2),
  add column sync_episode_countdown numeric(6,2);

-- `between` is false for NaN and the infinities, so these refuse them too.
alter table public.rooms
  add constraint rooms_sync_drift_check check (
    ((sync_drift_perfect is null) = (sync_drift_good is null)
      and (sync_drift_good is null) = (sync_drift_minor is null))
    and sync_drift_perfect between 0.01 and 60
    and sync_drift_good between 0.01 and 60
    and sync_drift_minor between 0.01 and 60
    and sync_drift_perfect <= sync_drift_good
    and sync_drift_good <= sync_drift_minor
  ) not valid,
  add constraint rooms_sync_first_load_timeout_check
    check (sync_first_load_timeout between 0 and 3600) not valid,
  add constraint rooms_sync_rebuffer_timeout_check
    check (sync_rebuffer_timeout between 0 and 600) not valid,
  add constraint rooms_sync_min_start_lead_check
    check (sync_min_start_lead between 0 and 10) not valid,
  add constraint rooms_sync_episode_countdown_check
    check (sync_episode_countdown between 0 and 60) not valid;
-- squawk-ignore constraint-missing-not-valid
alter table public.rooms validate constraint rooms_sync_drift_check;
-- squawk-ignore constraint-missing-not-valid
alter table public.rooms validate constraint rooms_sync_first_load_timeout_check;
-- squawk-ignore constraint-missing-not-valid
alter table public.rooms validate constraint rooms_sync_rebuffer_timeout_check;
-- squawk-ignore constraint-missing-not-valid
alter table public.rooms validate constraint rooms_sync_min_start_lead_check;
-- squawk-ignore constraint-missing-not-valid
alter table public.rooms validate constraint rooms_sync_episode_countdown_check;

comment on column public.rooms.sync_drift_perfect is
  'Sync level boundary, seconds (drift <= this: perfect); null = the setting sync_drift_perfect. The three drift boundaries are set together (all null or all set, perfect <= good <= minor).';
comment on column public.rooms.sync_drift_good is
  'Sync level boundary, seconds (drift <= this: good); null = the setting sync_drift_good.';
comment on column public.rooms.sync_drift_minor is
  'Sync level boundary, seconds (drift <= this: minor_drift, still synced; above: out_of_sync); null = the setting sync_drift_minor.';
comment on column public.rooms.sync_first_load_timeout is
  'Seconds the room waits for a member buffering its first load (0 to 3600); null = the setting sync_first_load_timeout.';
comment on column public.rooms.sync_rebuffer_timeout is
  'Seconds the room waits for a re-buffering member (0 to 600); null = the setting sync_rebuffer_timeout.';
comment on column public.rooms.sync_min_start_lead is
  'Least lead of a scheduled start, seconds (0 to 10); null = the setting sync_min_start_lead.';
comment on column public.rooms.sync_episode_countdown is
  'Countdown before an episode starts, seconds (0 = none, at most 60); null = the setting sync_episode_countdown.';

-- -----------------------------------------------------------------------------
-- watchium_private.sync_option_defaults(): the project-wide defaults, read in
-- one statement. A missing setting falls back to the built-in default.
-- -----------------------------------------------------------------------------
create function watchium_private.sync_option_defaults(
  out drift_perfect numeric,
  out drift_good numeric,
  out drift_minor numeric,
  out first_load_timeout numeric,
  out rebuffer_timeout numeric,
  out min_start_lead numeric,
  out episode_countdown numeric
)
language plpgsql  -- not sql: a SQL function with SET is planned again on every call
stable
set search_path = pg_catalog, pg_temp
as $$
begin
  select coalesce(pg_catalog.min((s.value #>> '{}')::numeric) filter (where s.key = 'sync_drift_perfect'), 0.5),
         coalesce(pg_catalog.min((s.value #>> '{}')::numeric) filter (where s.key = 'sync_drift_good'), 1),
         coalesce(pg_catalog.min((s.value #>> '{}')::numeric) filter (where s.key = 'sync_drift_minor'), 2),
         coalesce(pg_catalog.min((s.value #>> '{}')::numeric) filter (where s.key = 'sync_first_load_timeout'), 60),
         coalesce(pg_catalog.min((s.value #>> '{}')::numeric) filter (where s.key = 'sync_rebuffer_timeout'), 10),
         coalesce(pg_catalog.min((s.value #>> '{}')::numeric) filter (where s.key = 'sync_min_start_lead'), 0.5),
         coalesce(pg_catalog.min((s.value #>> '{}')::numeric) filter (where s.key = 'sync_episode_countdown'), 0)
  into drift_perfect, drift_good, drift_minor, first_load_timeout, rebuffer_timeout,
       min_start_lead, episode_countdown
  from watchium_private.settings as s
  where s.key in ('sync_drift_perfect', 'sync_drift_good', 'sync_drift_minor',
                  'sync_first_load_timeout', 'sync_rebuffer_timeout', 'sync_min_start_lead',
                  'sync_episode_countdown');
end;
$$;
comment on function watchium_private.sync_option_defaults() is
  'The project-wide defaults of the room sync options (settings sync_drift_perfect, sync_drift_good, sync_drift_minor, sync_first_load_timeout, sync_rebuffer_timeout, sync_min_start_lead, sync_episode_countdown; seconds), read in one statement. Internal.';
revoke all on function watchium_private.sync_option_defaults() from public;

-- -----------------------------------------------------------------------------
-- watchium_private.room_sync_options(room): the room's effective options (its
-- own values, else the defaults). The one definition for every reader.
-- -----------------------------------------------------------------------------
create function watchium_private.room_sync_options(
  p_room public.rooms,
  out drift_perfect numeric,
  out drift_good numeric,
  out drift_minor numeric,
  out first_load_timeout numeric,
  out rebuffer_timeout numeric,
  out min_start_lead numeric,
  out episode_countdown numeric
)
language plpgsql  -- not sql: a SQL function with SET is planned again on every call
stable
set search_path = pg_catalog, pg_temp
as $$
declare
  d record := watchium_private.sync_option_defaults();
begin
  -- The drift boundaries are one set: the room's three, or the defaults'.
  if p_room.sync_drift_perfect is not null then
    drift_perfect := p_room.sync_drift_perfect;
    drift_good := p_room.sync_drift_good;
    drift_minor := p_room.sync_drift_minor;
  else
    drift_perfect := d.drift_perfect;
    drift_good := d.drift_good;
    drift_minor := d.drift_minor;
  end if;
  first_load_timeout := coalesce(p_room.sync_first_load_timeout, d.first_load_timeout);
  rebuffer_timeout := coalesce(p_room.sync_rebuffer_timeout, d.rebuffer_timeout);
  min_start_lead := coalesce(p_room.sync_min_start_lead, d.min_start_lead);
  episode_countdown := coalesce(p_room.sync_episode_countdown, d.episode_countdown);
end;
$$;
comment on function watchium_private.room_sync_options(public.rooms) is
  'The effective sync options of a room, seconds: its own values (rooms.sync_*), else the project defaults (sync_option_defaults). The drift boundaries come as one set. Internal.';
revoke all on function watchium_private.room_sync_options(public.rooms) from public;

-- -----------------------------------------------------------------------------
-- watchium_private.room_sync_options_json(room): the same as a JSON object,
-- plus `defaults`: the option names that follow the project default.
-- -----------------------------------------------------------------------------
create function watchium_private.room_sync_options_json(p_room public.rooms)
returns jsonb
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
declare
  o record := watchium_private.room_sync_options(p_room);
begin
  return pg_catalog.jsonb_build_object(
    'drift_perfect', o.drift_perfect,
    'drift_good', o.drift_good,
    'drift_minor', o.drift_minor,
    'first_load_timeout', o.first_load_timeout,
    'rebuffer_timeout', o.rebuffer_timeout,
    'min_start_lead', o.min_start_lead,
    'episode_countdown', o.episode_countdown,
    'defaults', pg_catalog.to_jsonb(array_remove(array[
      case when p_room.sync_drift_perfect is null then 'drift_perfect' end,
      case when p_room.sync_drift_good is null then 'drift_good' end,
      case when p_room.sync_drift_minor is null then 'drift_minor' end,
      case when p_room.sync_first_load_timeout is null then 'first_load_timeout' end,
      case when p_room.sync_rebuffer_timeout is null then 'rebuffer_timeout' end,
      case when p_room.sync_min_start_lead is null then 'min_start_lead' end,
      case when p_room.sync_episode_countdown is null then 'episode_countdown' end
    ]::text[], null))
  );
end;
$$;
comment on function watchium_private.room_sync_options_json(public.rooms) is
  'The effective sync options of a room as {drift_perfect, drift_good, drift_minor, first_load_timeout, rebuffer_timeout, min_start_lead, episode_countdown, defaults}: defaults lists the options following the project default. Internal.';
revoke all on function watchium_private.room_sync_options_json(public.rooms) from public;

-- -----------------------------------------------------------------------------
-- public.set_room_sync_options(room_id, options): the host (the update_room
-- permission) sets the room's
-- sync options. p_options is an object of option names to seconds (a JSON
-- number) or null (back to the project default); options not named keep
-- their value. The three drift boundaries are one set: naming any of them
-- stores all three (the others at their current effective value), and null
-- for any of them returns all three to the defaults (mixing null and numbers
-- among them is refused). Bad input: 22023 naming the option, nothing stored.
-- Counted against the host's update_room budget. Emits room_updated
-- {sync_options: the changed options' new effective values} when something
-- changed. Returns the effective options (get_room_sync_options).
-- Security definer: updates rooms, which no client may write.
-- -----------------------------------------------------------------------------
create function watchium_rpc.set_room_sync_options(p_room_id text, p_options jsonb)
returns jsonb
language plpgsql
volatile
security definer  -- updates rooms, which no client may write
set search_path = pg_catalog, pg_temp
as $$
declare
  c_ranges constant jsonb := '{
    "drift_perfect": [0.01, 60], "drift_good": [0.01, 60], "drift_minor": [0.01, 60],
    "first_load_timeout": [0, 3600], "rebuffer_timeout": [0, 600],
    "min_start_lead": [0, 10], "episode_countdown": [0, 60]}'::jsonb;
  v_user_id text := watchium_private.require_user_id();
  v_key     text;
  v_value   jsonb;
  v_num     numeric;
  v_new     jsonb := '{}'::jsonb;  -- option -> numeric value, or JSON null
  v_drift_null boolean;
  v_drift_set  boolean;
  v_room    public.rooms;
  v_before  jsonb;
  v_after   jsonb;
  v_changes jsonb := '{}'::jsonb;
  o         record;
begin
  -- Sizes first (22001), before any other work.
  perform watchium_private.check_size('p_room_id', pg_catalog.octet_length(p_room_id), 40);
  perform watchium_private.check_size('p_options', pg_catalog.pg_column_size(p_options), 2048);
  if p_options is null or pg_catalog.jsonb_typeof(p_options) <> 'object' then
    raise exception 'p_options must be a JSON object of option names to seconds (got %)',
      coalesce(pg_catalog.jsonb_typeof(p_options), 'null')
      using errcode = '22023',
            hint = 'Options: drift_perfect, drift_good, drift_minor, first_load_timeout, rebuffer_timeout, min_start_lead, episode_countdown.';
  end if;
  if p_options = '{}'::jsonb then
    raise exception 'p_options names no option: pass at least one'
      using errcode = '22023',
            hint = 'Options: drift_perfect, drift_good, drift_minor, first_load_timeout, rebuffer_timeout, min_start_lead, episode_countdown.';
  end if;
  for v_key, v_value in select e.key, e.value from pg_catalog.jsonb_each(p_options) as e order by e.key loop
    if not c_ranges ? v_key then
      raise exception 'p_options.%: no such option', pg_catalog.left(v_key, 64)
        using errcode = '22023',
              hint = 'Options: drift_perfect, drift_good, drift_minor, first_load_timeout, rebuffer_timeout, min_start_lead, episode_countdown.';
    end if;
    if pg_catalog.jsonb_typeof(v_value) = 'null' then
      v_new := v_new || pg_catalog.jsonb_build_object(v_key, null);
      continue;
    end if;
    if pg_catalog.jsonb_typeof(v_value) <> 'number' then
      raise exception 'p_options.% must be a number of seconds or null (got %)',
        v_key, pg_catalog.left(v_value::text, 64)
        using errcode = '22023';
    end if;
    v_num := (v_value #>> '{}')::numeric;  -- JSON numbers are finite
    if v_num not between (c_ranges -> v_key ->> 0)::numeric and (c_ranges -> v_key ->> 1)::numeric then
      raise exception 'p_options.% must be from % to % seconds (got %)',
        v_key, c_ranges -> v_key ->> 0, c_ranges -> v_key ->> 1, v_num
        using errcode = '22023';
    end if;
    v_new := v_new || pg_catalog.jsonb_build_object(v_key, pg_catalog.round(v_num, 2));
  end loop;

  select pg_catalog.bool_or(pg_catalog.jsonb_typeof(v_new -> k) = 'null'),
         pg_catalog.bool_or(pg_catalog.jsonb_typeof(v_new -> k) = 'number')
  into v_drift_null, v_drift_set
  from pg_catalog.unnest(array['drift_perfect', 'drift_good', 'drift_minor']) as k;
  if v_drift_null and v_drift_set then
    raise exception 'p_options: drift_perfect, drift_good and drift_minor are one set: null (back to the defaults) for all of them, or numbers'
      using errcode = '22023';
  end if;

  perform watchium_private.enforce_rate_limit(v_user_id, 'update_room');
  v_room := watchium_private.lock_room(p_room_id);
  perform watchium_private.hide_private_room(v_room, p_room_id, v_user_id);
  -- The room's settings: the update_room permission (host by default; 0010).
  perform watchium_private.require_room_permission(v_room.room_id, v_user_id, 'update_room');

  o := watchium_private.room_sync_options(v_room);
  if v_drift_set then
    -- The set as it will be: the named boundaries, the others as they are.
    o.drift_perfect := coalesce((v_new ->> 'drift_perfect')::numeric, o.drift_perfect);
    o.drift_good := coalesce((v_new ->> 'drift_good')::numeric, o.drift_good);
    o.drift_minor := coalesce((v_new ->> 'drift_minor')::numeric, o.drift_minor);
    if o.drift_perfect > o.drift_good then
      raise exception 'p_options.drift_perfect (%) must be <= drift_good (%)', o.drift_perfect, o.drift_good
        using errcode = '22023';
    end if;
    if o.drift_good > o.drift_minor then
      raise exception 'p_options.drift_good (%) must be <= drift_minor (%)', o.drift_good, o.drift_minor
        using errcode = '22023';
    end if;
  end if;

  v_before := watchium_private.room_sync_options_json(v_room) - 'defaults';
  update public.rooms as r
  set sync_drift_perfect = case when v_drift_set then o.drift_perfect
                                when v_drift_null then null else r.sync_drift_perfect end,
      sync_drift_good = case when v_drift_set then o.drift_good
                             when v_drift_null then null else r.sync_drift_good end,
      sync_drift_minor = case when v_drift_set then o.drift_minor
                              when v_drift_null then null else r.sync_drift_minor end,
      sync_first_load_timeout = case when v_new ? 'first_load_timeout'
        then (v_new ->> 'first_load_timeout')::numeric else r.sync_first_load_timeout end,
      sync_rebuffer_timeout = case when v_new ? 'rebuffer_timeout'
        then (v_new ->> 'rebuffer_timeout')::numeric else r.sync_rebuffer_timeout end,
      sync_min_start_lead = case when v_new ? 'min_start_lead'
        then (v_new ->> 'min_start_lead')::numeric else r.sync_min_start_lead end,
      sync_episode_countdown = case when v_new ? 'episode_countdown'
        then (v_new ->> 'episode_countdown')::numeric else r.sync_episode_countdown end
  where r.room_id = v_room.room_id
  returning * into v_room;
  v_after := watchium_private.room_sync_options_json(v_room);

  select coalesce(pg_catalog.jsonb_object_agg(a.key, a.value), '{}'::jsonb)
  into v_changes
  from pg_catalog.jsonb_each(v_after - 'defaults') as a
  where a.value is distinct from v_before -> a.key;
  if v_changes <> '{}'::jsonb then
    perform watchium_private.emit_room_event(v_room.room_id, 'room_updated',
      pg_catalog.jsonb_build_object('sync_options', v_changes));
  end if;
  return v_after;
end;
$$;
comment on function watchium_rpc.set_room_sync_options(text, jsonb) is
  'Body of public.set_room_sync_options (same arguments, result and errors; documented there). Security definer: updates rooms, which no client may write. Callers reach it through public.set_room_sync_options, a security invoker entry point; schema watchium_rpc is not exposed by the Data API.';
revoke all on function watchium_rpc.set_room_sync_options(text, jsonb) from public;
grant execute on function watchium_rpc.set_room_sync_options(text, jsonb) to authenticated, service_role;

-- -----------------------------------------------------------------------------
-- public.set_room_sync_options: the Data API entry point; its body is
-- watchium_rpc.set_room_sync_options above. Security invoker: it runs with the
-- caller's rights and only passes the arguments on; the body checks them and
-- the caller's identity itself.
-- -----------------------------------------------------------------------------
create function public.set_room_sync_options(p_room_id text, p_options jsonb)
returns jsonb
language plpgsql
volatile
security invoker  -- the body is the security definer function
set search_path = pg_catalog, pg_temp
set lock_timeout = '2s'  -- bounded lock waits; tuned by the rpc_lock_timeout setting
as $$
begin
  return watchium_rpc.set_room_sync_options(p_room_id, p_options);
end;
$$;
comment on function public.set_room_sync_options(text, jsonb) is
  'Host only (the update_room permission): sets the room''s sync options from p_options {option: seconds, or null for the project default}: drift_perfect, drift_good, drift_minor (one set, perfect <= good <= minor, 0.01 to 60), first_load_timeout (0 to 3600), rebuffer_timeout (0 to 600), min_start_lead (0 to 10), episode_countdown (0 to 60). 22023 naming the option on bad input. Emits room_updated {sync_options}. Returns the effective options.';
revoke all on function public.set_room_sync_options(text, jsonb) from public, anon;
grant execute on function public.set_room_sync_options(text, jsonb) to authenticated, service_role;

-- -----------------------------------------------------------------------------
-- public.get_room_sync_options(room_id): the room's effective sync options.
-- Members (trusted callers: any room). Read only.
-- Security definer: reads the settings, which clients cannot.
-- -----------------------------------------------------------------------------
create function watchium_rpc.get_room_sync_options(p_room_id text)
returns jsonb
language plpgsql
stable
security definer  -- reads watchium_private.settings
set search_path = pg_catalog, pg_temp
as $$
declare
  v_user_id text;
begin
  -- Sizes first (22001), before any other work.
  perform watchium_private.check_size('p_room_id', pg_catalog.octet_length(p_room_id), 40);
  if not watchium_private.caller_is_trusted() then
    v_user_id := watchium_private.require_user_id();
  end if;
  return watchium_private.room_sync_options_json(
    watchium_private.require_sync_room(p_room_id, v_user_id));
end;
$$;
comment on function watchium_rpc.get_room_sync_options(text) is
  'Body of public.get_room_sync_options (same arguments, result and errors; documented there). Security definer: reads watchium_private.settings. Callers reach it through public.get_room_sync_options, a security invoker entry point; schema watchium_rpc is not exposed by the Data API.';
revoke all on function watchium_rpc.get_room_sync_options(text) from public;
grant execute on function watchium_rpc.get_room_sync_options(text) to authenticated, service_role;

-- -----------------------------------------------------------------------------
-- public.get_room_sync_options: the Data API entry point; its body is
-- watchium_rpc.get_room_sync_options above. Security invoker: it runs with the
-- caller's rights and only passes the arguments on; the body checks them and
-- the caller's identity itself.
-- -----------------------------------------------------------------------------
create function public.get_room_sync_options(p_room_id text)
returns jsonb
language plpgsql
stable
security invoker  -- the body is the security definer function
set search_path = pg_catalog, pg_temp
set lock_timeout = '2s'  -- bounded lock waits; tuned by the rpc_lock_timeout setting
as $$
begin
  return watchium_rpc.get_room_sync_options(p_room_id);
end;
$$;
comment on function public.get_room_sync_options(text) is
  'The room''s effective sync options, seconds: drift_perfect, drift_good, drift_minor, first_load_timeout, rebuffer_timeout, min_start_lead, episode_countdown, and defaults (the options following the project default). Members only.';
revoke all on function public.get_room_sync_options(text) from public, anon;
grant execute on function public.get_room_sync_options(text) to authenticated, service_role;
