-- =============================================================================
-- 0021 group wait and ready check
--
-- A bounded group wait for buffering members, and the host's ready check,
-- sharing one waiting state of the room:
--   report_playback_status  a member reports 'buffering' or 'ready' (with its
--                           position); a waited-for member starting to buffer
--                           while the room plays moves the room to waiting
--                           (the expected position freezes: the room is
--                           paused at it); the report that leaves no member
--                           blocking resumes the room, at a scheduled start
--   set_wait_opt_out        a member is never waited for
--   force_resume            the host resumes a waiting room (blockers skipped)
--   start_ready_check       the host pauses the room until enough members are
--   set_ready               ready (or the deadline passes), then it starts
--
-- No timers: deadlines are columns. A blocking member's excuse deadline is
-- member_playback.wait_deadline (first load 60 s, re-buffer 10 s); the room's
-- earliest pending deadline is rooms.sync_deadline, so that any call on the
-- room applies it with one comparison of a column of the row it reads
-- (watchium_private.apply_sync_deadlines), and maintain() sweeps the rooms
-- whose deadline passed (watchium_private.apply_due_sync_deadlines).
--
-- Scheduled starts: a resume takes effect at a future instant
-- (watchium_private.scheduled_start_at), stored as the playback reference:
-- rooms.playback_updated_at in the future with is_playing true. The expected
-- position before that instant is the start position
-- (room_expected_position counts a reference in the future as no time).
-- =============================================================================

insert into watchium_private.rate_limit_rules (action, max_requests, window_minutes, description) values
  ('playback_status', 120, 1,
   'report_playback_status, set_ready and set_wait_opt_out calls per member (each takes the room row lock).');

-- =============================================================================
-- Per-member playback status: watchium_private.member_playback
-- =============================================================================
create table watchium_private.member_playback (
  room_id        text          not null,
  user_id        text          not null,
  status         text          not null default 'ready',
  reported_time  numeric(10,2) not null default 0,
  status_since   timestamptz   not null default now(),
  wait_deadline  timestamptz,
  skipped_at     timestamptz,
  late_joiner    boolean       not null default false,
  loaded_at      timestamptz,
  wait_opt_out   boolean       not null default false,
  ready_at       timestamptz,
  updated_at     timestamptz   not null default now(),
  constraint member_playback_pkey primary key (room_id, user_id),
  constraint member_playback_room_id_user_id_fkey foreign key (room_id, user_id)
    references public.room_members (room_id, user_id) on delete cascade,
  constraint member_playback_status_check check (status in ('buffering', 'ready')),
  constraint member_playback_reported_time_check check (reported_time between 0 and 86400),
  constraint member_playback_wait_deadline_check check (wait_deadline is null or status = 'buffering')
);
comment on table watchium_private.member_playback is
  'Each member''s last buffering/ready report, its wait deadline, opt-out and ready-check answer. A row exists once the member reported, opted out or answered a ready check. Not published; read through get_room_sync_state.';
comment on column watchium_private.member_playback.room_id is 'The room.';
comment on column watchium_private.member_playback.user_id is 'The member.';
comment on column watchium_private.member_playback.updated_at is 'When the row last changed.';
comment on column watchium_private.member_playback.status is 'buffering or ready, as last reported.';
comment on column watchium_private.member_playback.reported_time is 'The position the member reported with its status.';
comment on column watchium_private.member_playback.status_since is 'When the status last changed.';
comment on column watchium_private.member_playback.wait_deadline is 'While the member blocks the room: when it is excused (first load or re-buffer timeout after it started buffering). Null when it does not block.';
comment on column watchium_private.member_playback.skipped_at is 'When the room stopped waiting for this buffering member (deadline passed, or the host forced a resume); null otherwise.';
comment on column watchium_private.member_playback.late_joiner is 'This buffering is the first load of a member that joined while the room was playing: never waited for.';
comment on column watchium_private.member_playback.loaded_at is 'Last ready report: null means the member has not loaded yet, so its buffering is a first load.';
comment on column watchium_private.member_playback.wait_opt_out is 'The member asked never to be waited for.';
comment on column watchium_private.member_playback.ready_at is 'When the member answered ready to a ready check: ready for the check that started at or before it.';
alter table watchium_private.member_playback enable row level security;
revoke all on table watchium_private.member_playback from public;

-- =============================================================================
-- Helpers (internal)
-- =============================================================================

-- -----------------------------------------------------------------------------
-- watchium_private.scheduled_start_at(room, at, episode_start): the instant a
-- start decided at p_at takes effect, so that every client starts together:
-- p_at + the room's minimum start lead (room option sync_min_start_lead,
-- default 0.5 s), and at least its episode countdown for an episode start.
-- -----------------------------------------------------------------------------
create function watchium_private.scheduled_start_at(
  p_room public.rooms,
  p_at timestamptz,
  p_episode_start boolean
)
returns timestamptz
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
declare
  o record := watchium_private.room_sync_options(p_room);
begin
  return p_at + pg_catalog.make_interval(secs => greatest(
    o.min_start_lead,
    case when p_episode_start then o.episode_countdown else 0 end
  )::double precision);
end;
$$;
comment on function watchium_private.scheduled_start_at(public.rooms, timestamptz, boolean) is
  'When a start decided at p_at takes effect: p_at + the room''s minimum start lead (for an episode start, at least its countdown). Stored as rooms.playback_updated_at with is_playing true. Internal.';
revoke all on function watchium_private.scheduled_start_at(public.rooms, timestamptz, boolean) from public;

-- -----------------------------------------------------------------------------
-- watchium_private.room_blockers(room_id): the members the room waits for
-- now (buffering, deadline pending): how many, the first 50 ids (by deadline),
-- and the earliest deadline.
-- -----------------------------------------------------------------------------
create function watchium_private.room_blockers(
  p_room_id text,
  out blocking_members integer,
  out blocking text[],
  out next_deadline timestamptz
)
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
begin
  select pg_catalog.count(*)::integer,
         (pg_catalog.array_agg(b.user_id order by b.wait_deadline, b.user_id))[1:50],
         pg_catalog.min(b.wait_deadline)
  into blocking_members, blocking, next_deadline
  from watchium_private.member_playback as b
  where b.room_id = p_room_id
    and b.wait_deadline is not null;
  blocking := coalesce(blocking, '{}'::text[]);
end;
$$;
comment on function watchium_private.room_blockers(text) is
  'The members room p_room_id waits for (buffering with a pending excuse deadline): count, the first 50 user ids by deadline, the earliest deadline. Internal.';
revoke all on function watchium_private.room_blockers(text) from public;

-- -----------------------------------------------------------------------------
-- watchium_private.ready_count(room): members ready for the running ready
-- check, and how many are needed (min ready, else every member).
-- -----------------------------------------------------------------------------
create function watchium_private.ready_count(
  p_room public.rooms,
  out ready_members integer,
  out needed integer
)
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
begin
  select pg_catalog.count(*)::integer into ready_members
  from watchium_private.member_playback as b
  where b.room_id = p_room.room_id
    and b.ready_at >= p_room.waiting_since;
  if p_room.ready_check_min_ready is not null then
    needed := p_room.ready_check_min_ready;
  else
    select pg_catalog.count(*)::integer into needed
    from public.room_members as m
    where m.room_id = p_room.room_id;
  end if;
end;
$$;
comment on function watchium_private.ready_count(public.rooms) is
  'Members ready for the room''s running ready check (ready_at at or after waiting_since) and how many are needed (ready_check_min_ready, else every member). Internal.';
revoke all on function watchium_private.ready_count(public.rooms) from public;

-- -----------------------------------------------------------------------------
-- watchium_private.room_wait_state(room): the waiting state for readers:
-- state (playing, scheduled, paused, waiting), reason, since when, the
-- pending deadline, the blocking members, the ready check's count, and the
-- scheduled start. A member whose deadline has passed but was not applied yet
-- (no call on the room since) is not listed as blocking.
-- -----------------------------------------------------------------------------
create function watchium_private.room_wait_state(p_room public.rooms)
returns jsonb
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
declare
  v_now     timestamptz := pg_catalog.now();
  v_block   record;
  v_ready   integer;
  v_needed  integer;
begin
  if p_room.waiting_reason is null then
    return pg_catalog.jsonb_build_object(
      'state', case
        when p_room.is_playing and p_room.playback_updated_at > v_now then 'scheduled'
        when p_room.is_playing then 'playing'
        else 'paused' end,
      'starts_at', case when p_room.is_playing and p_room.playback_updated_at > v_now
                        then p_room.playback_updated_at end,
      'reason', null, 'waiting_since', null, 'deadline', null,
      'blocking_members', 0, 'blocking', '[]'::jsonb, 'ready_check', null
    );
  end if;
  if p_room.waiting_reason = 'ready_check' then
    select c.ready_members, c.needed into v_ready, v_needed
    from watchium_private.ready_count(p_room) as c;
  end if;
  select pg_catalog.count(*)::integer as n,
         coalesce((pg_catalog.array_agg(b.user_id order by b.wait_deadline, b.user_id))[1:50],
                  '{}'::text[]) as ids
  into v_block
  from watchium_private.member_playback as b
  where b.room_id = p_room.room_id
    and b.wait_deadline > v_now;
  return pg_catalog.jsonb_build_object(
    'state', 'waiting',
    'starts_at', null,
    'reason', p_room.waiting_reason,
    'waiting_since', p_room.waiting_since,
    'deadline', p_room.sync_deadline,
    'blocking_members', case when p_room.waiting_reason = 'buffering' then v_block.n else 0 end,
    'blocking', case when p_room.waiting_reason = 'buffering'
                     then pg_catalog.to_jsonb(v_block.ids) else '[]'::jsonb end,
    'ready_check', case when p_room.waiting_reason = 'ready_check' then
      pg_catalog.jsonb_build_object(
        'ready_members', v_ready,
        'needed', v_needed,
        'min_ready', p_room.ready_check_min_ready,
        'deadline', p_room.sync_deadline
      ) end
  );
end;
$$;
comment on function watchium_private.room_wait_state(public.rooms) is
  'The room''s waiting state for readers: state (playing, scheduled, paused, waiting), starts_at of a scheduled start, reason, waiting_since, deadline, blocking_members and the first 50 blocking user ids, ready_check {ready_members, needed, min_ready, deadline}. Internal.';
revoke all on function watchium_private.room_wait_state(public.rooms) from public;

-- -----------------------------------------------------------------------------
-- watchium_private.playback_payload(room, action): the 'playback' event's
-- payload for a waiting transition (action wait or resume).
-- -----------------------------------------------------------------------------
create function watchium_private.playback_payload(p_room public.rooms, p_action text)
returns jsonb
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
begin
  return pg_catalog.jsonb_build_object(
    'room_id', p_room.room_id,
    'action', p_action,
    'is_playing', p_room.is_playing,
    'current_time', p_room.current_playback_time,
    'playback_speed', p_room.playback_speed,
    'playback_updated_at', p_room.playback_updated_at,
    'episode_number', p_room.episode_number,
    'host_user_id', p_room.host_user_id
  );
end;
$$;
comment on function watchium_private.playback_payload(public.rooms, text) is
  'The payload of a playback room event for the room''s current state and p_action. Internal.';
revoke all on function watchium_private.playback_payload(public.rooms, text) from public;

-- -----------------------------------------------------------------------------
-- watchium_private.begin_wait(room, reason, deadline, min_ready): the room
-- starts waiting. Caller holds the room row lock. The expected position
-- freezes: the room is paused at it (a scheduled start not reached yet
-- freezes at its start position), so every client pauses on the 'playback'
-- event (action wait). Returns the updated room.
-- -----------------------------------------------------------------------------
create function watchium_private.begin_wait(
  p_room public.rooms,
  p_reason text,
  p_deadline timestamptz,
  p_min_ready integer
)
returns public.rooms
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
declare
  v_at   timestamptz := pg_catalog.clock_timestamp();
  v_room public.rooms;
begin
  update public.rooms as r
  set current_playback_time = watchium_private.room_expected_position(p_room, v_at),
      is_playing = false,
      playback_updated_at = v_at,
      waiting_since = v_at,
      waiting_reason = p_reason,
      sync_deadline = p_deadline,
      ready_check_min_ready = p_min_ready,
      -- Refreshed at most once a minute: the update stays HOT (last_activity is
      -- indexed), as a host control's does.
      last_activity = case
        when r.last_activity < pg_catalog.now() - interval '1 minute' then pg_catalog.now()
        else r.last_activity
      end
  where r.room_id = p_room.room_id
  returning * into v_room;
  perform watchium_private.emit_room_event(
    v_room.room_id, 'playback', watchium_private.playback_payload(v_room, 'wait'));
  return v_room;
end;
$$;
comment on function watchium_private.begin_wait(public.rooms, text, timestamptz, integer) is
  'The room starts waiting (reason buffering or ready_check): paused at its expected position, waiting_since now, sync_deadline p_deadline; emits playback (action wait). Caller holds the room lock. Internal.';
revoke all on function watchium_private.begin_wait(public.rooms, text, timestamptz, integer) from public;

-- -----------------------------------------------------------------------------
-- watchium_private.emit_sync_wait(room, state, cause, user_id, skipped): the
-- 'sync_wait' event: who blocks (count and first 50 ids), who was skipped.
-- -----------------------------------------------------------------------------
create function watchium_private.emit_sync_wait(
  p_room public.rooms,
  p_state text,
  p_cause text,
  p_user_id text,
  p_skipped text[],
  p_waiting_since timestamptz,
  p_reason text
)
returns void
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
declare
  v_count integer := 0;
  v_ids   text[] := '{}'::text[];
begin
  if p_state = 'waiting' then
    select b.blocking_members, b.blocking into v_count, v_ids
    from watchium_private.room_blockers(p_room.room_id) as b;
  end if;
  perform watchium_private.emit_room_event(
    p_room.room_id,
    'sync_wait',
    pg_catalog.jsonb_build_object(
      'state', p_state,
      'reason', p_reason,
      'cause', p_cause,
      'user_id', p_user_id,
      'blocking_members', v_count,
      'blocking', pg_catalog.to_jsonb(v_ids),
      'skipped', pg_catalog.to_jsonb(coalesce(p_skipped, '{}'::text[])),
      'waiting_since', p_waiting_since,
      'deadline', case when p_state = 'waiting' then p_room.sync_deadline end,
      'starts_at', case when p_state = 'resumed' then p_room.playback_updated_at end
    )
  );
end;
$$;
comment on function watchium_private.emit_sync_wait(public.rooms, text, text, text, text[], timestamptz, text) is
  'Emits the sync_wait room event for the room as it is now (p_room): state waiting (who blocks: count and first 50 ids, the deadline), resumed (starts_at) or cancelled, its cause, the member whose call caused it, the members skipped, since when and why (p_reason) the room waited. Internal.';
revoke all on function watchium_private.emit_sync_wait(public.rooms, text, text, text, text[], timestamptz, text) from public;

-- -----------------------------------------------------------------------------
-- watchium_private.end_wait(room, cause, user_id, skipped): the room stops
-- waiting and plays again at a scheduled start, from the frozen position.
-- Remaining blockers are skipped. Caller holds the room row lock. Returns the
-- updated room.
-- -----------------------------------------------------------------------------
create function watchium_private.end_wait(
  p_room public.rooms,
  p_cause text,
  p_user_id text,
  p_skipped text[]
)
returns public.rooms
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
declare
  v_room    public.rooms;
  v_skipped text[];
  v_at      timestamptz := pg_catalog.clock_timestamp();
begin
  with skipped as (
    update watchium_private.member_playback as b
    set wait_deadline = null, skipped_at = v_at, updated_at = v_at
    where b.room_id = p_room.room_id and b.wait_deadline is not null
    returning b.user_id
  )
  select coalesce(p_skipped, '{}'::text[])
           || coalesce(pg_catalog.array_agg(s.user_id order by s.user_id), '{}'::text[])
  into v_skipped
  from skipped as s;

  update public.rooms as r
  set is_playing = true,
      playback_updated_at = watchium_private.scheduled_start_at(p_room, v_at, false),
      waiting_since = null,
      waiting_reason = null,
      sync_deadline = null,
      ready_check_min_ready = null,
      -- Refreshed at most once a minute: the update stays HOT (last_activity is
      -- indexed), as a host control's does.
      last_activity = case
        when r.last_activity < pg_catalog.now() - interval '1 minute' then pg_catalog.now()
        else r.last_activity
      end
  where r.room_id = p_room.room_id
  returning * into v_room;

  perform watchium_private.emit_room_event(
    v_room.room_id, 'playback', watchium_private.playback_payload(v_room, 'resume'));
  perform watchium_private.emit_sync_wait(
    v_room, 'resumed', p_cause, p_user_id, v_skipped, p_room.waiting_since, p_room.waiting_reason);
  return v_room;
end;
$$;
comment on function watchium_private.end_wait(public.rooms, text, text, text[]) is
  'The waiting room plays again from its frozen position at a scheduled start (scheduled_start_at); members still blocking are skipped; emits playback (action resume) and sync_wait (resumed). Caller holds the room lock. Internal.';
revoke all on function watchium_private.end_wait(public.rooms, text, text, text[]) from public;

-- -----------------------------------------------------------------------------
-- watchium_private.settle_room(room, user_id): applies the room's due
-- deadlines. Caller holds the room row lock and passes the row it read.
--   ready check past its deadline: 'ready_check' expired, playback starts;
--   buffering members past their deadline: skipped; the room resumes when
--   none blocks any more, else it keeps waiting for the others (sync_wait).
-- Returns the room as it is afterwards.
-- -----------------------------------------------------------------------------
create function watchium_private.settle_room(p_room public.rooms, p_user_id text)
returns public.rooms
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
declare
  v_room    public.rooms := p_room;
  v_at      timestamptz := pg_catalog.clock_timestamp();
  v_skipped text[];
  v_block   record;
  v_ready   record;
begin
  if v_room.sync_deadline is null or v_room.sync_deadline > v_at then
    return v_room;
  end if;

  if v_room.waiting_reason = 'ready_check' then
    v_ready := watchium_private.ready_count(v_room);
    perform watchium_private.emit_room_event(
      v_room.room_id, 'ready_check',
      pg_catalog.jsonb_build_object(
        'state', 'expired', 'user_id', null, 'ready', null,
        'ready_members', v_ready.ready_members, 'needed', v_ready.needed,
        'deadline', v_room.sync_deadline));
    return watchium_private.end_wait(v_room, 'deadline', p_user_id, null);
  end if;

  with due as (
    update watchium_private.member_playback as b
    set wait_deadline = null, skipped_at = v_at, updated_at = v_at
    where b.room_id = v_room.room_id and b.wait_deadline <= v_at
    returning b.user_id
  )
  select pg_catalog.array_agg(d.user_id order by d.user_id) into v_skipped from due as d;

  v_block := watchium_private.room_blockers(v_room.room_id);
  if v_room.waiting_reason is not null and v_block.blocking_members = 0 then
    return watchium_private.end_wait(v_room, 'deadline', p_user_id, v_skipped);
  end if;

  update public.rooms as r
  set sync_deadline = v_block.next_deadline
  where r.room_id = v_room.room_id
  returning * into v_room;
  if v_skipped is not null and v_room.waiting_reason is not null then
    perform watchium_private.emit_sync_wait(
      v_room, 'waiting', 'deadline', p_user_id, v_skipped, v_room.waiting_since, v_room.waiting_reason);
  end if;
  return v_room;
end;
$$;
comment on function watchium_private.settle_room(public.rooms, text) is
  'Applies the due deadlines of a room whose row the caller holds locked: an expired ready check starts playback; buffering members past their deadline are skipped and the room resumes when none blocks. Returns the room afterwards. Internal.';
revoke all on function watchium_private.settle_room(public.rooms, text) from public;

-- -----------------------------------------------------------------------------
-- watchium_private.apply_sync_deadlines(room_id, skip_locked): locks the room
-- and applies its due deadlines (settle_room). With p_skip_locked a room
-- locked by another transaction is left alone (that call, or the next one,
-- applies them): for callers that must not wait, such as heartbeats and
-- maintenance. Returns true when it applied something.
-- -----------------------------------------------------------------------------
create function watchium_private.apply_sync_deadlines(p_room_id text, p_skip_locked boolean)
returns boolean
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
declare
  v_room public.rooms;
begin
  if p_skip_locked then
    select * into v_room from public.rooms as r
    where r.room_id = p_room_id and r.sync_deadline <= pg_catalog.clock_timestamp()
    for update skip locked;
  else
    select * into v_room from public.rooms as r
    where r.room_id = p_room_id and r.sync_deadline <= pg_catalog.clock_timestamp()
    for update;
  end if;
  if not found then
    return false;
  end if;
  perform watchium_private.settle_room(v_room, null);
  return true;
end;
$$;
comment on function watchium_private.apply_sync_deadlines(text, boolean) is
  'Locks room p_room_id when its sync_deadline has passed and applies its due deadlines (settle_room); with p_skip_locked a room locked by another transaction is skipped. True when it applied them. Internal.';
revoke all on function watchium_private.apply_sync_deadlines(text, boolean) from public;

-- -----------------------------------------------------------------------------
-- watchium_private.apply_due_sync_deadlines(): the maintenance sweep: every
-- room whose sync_deadline passed, each in its own lock, rooms locked by
-- callers skipped (their call applies it). No index: rooms with a pending
-- deadline are few, and maintenance runs once a minute; a sequential read of
-- public.rooms per minute costs less than an index updated by every wait.
-- -----------------------------------------------------------------------------
create function watchium_private.apply_due_sync_deadlines()
returns jsonb
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
declare
  v_room_id text;
  v_applied integer := 0;
  v_busy    integer := 0;
begin
  for v_room_id in
    select r.room_id from public.rooms as r
    where r.sync_deadline <= pg_catalog.clock_timestamp()
    order by r.sync_deadline
  loop
    if watchium_private.apply_sync_deadlines(v_room_id, true) then
      v_applied := v_applied + 1;
    else
      v_busy := v_busy + 1;
    end if;
  end loop;
  return pg_catalog.jsonb_build_object('rooms_applied', v_applied, 'rooms_skipped_busy', v_busy);
end;
$$;
comment on function watchium_private.apply_due_sync_deadlines() is
  'Maintenance: applies the due deadlines of every room whose sync_deadline passed (rooms locked by callers are skipped; their call applies them). Returns {rooms_applied, rooms_skipped_busy}. Internal.';
revoke all on function watchium_private.apply_due_sync_deadlines() from public;

-- -----------------------------------------------------------------------------
-- watchium_private.lock_member_room(room_id, user_id): the room row locked
-- (lock order: room first) for a member's call, its due deadlines applied.
-- P0002 when absent or private to a non-member, 42501 for a non-member.
-- -----------------------------------------------------------------------------
create function watchium_private.lock_member_room(p_room_id text, p_user_id text)
returns public.rooms
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
declare
  v_room public.rooms;
begin
  select * into v_room from public.rooms as r where r.room_id = p_room_id for update;
  perform watchium_private.hide_private_room(v_room, p_room_id, p_user_id);
  if not exists (
    select from public.room_members as m where m.room_id = p_room_id and m.user_id = p_user_id
  ) then
    raise exception 'p_room_id: you are not a member of room %', p_room_id
      using errcode = '42501', hint = 'Join the room first.';
  end if;
  return watchium_private.settle_room(v_room, p_user_id);
end;
$$;
comment on function watchium_private.lock_member_room(text, text) is
  'Locks room p_room_id for member p_user_id and applies its due deadlines; P0002 when absent or private to a non-member, 42501 for a non-member. Internal.';
revoke all on function watchium_private.lock_member_room(text, text) from public;

-- -----------------------------------------------------------------------------
-- watchium_private.member_wait_reply(room, user_id): what the member calls
-- return: its own status and the room's waiting state.
-- -----------------------------------------------------------------------------
create function watchium_private.member_wait_reply(p_room public.rooms, p_user_id text)
returns jsonb
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
declare
  v_me jsonb;
begin
  select pg_catalog.jsonb_build_object(
           'status', b.status,
           'reported_time', b.reported_time,
           'is_blocking', b.wait_deadline is not null,
           'wait_deadline', b.wait_deadline,
           'skipped', b.skipped_at is not null,
           'late_joiner', b.late_joiner,
           'wait_opt_out', b.wait_opt_out,
           'ready', p_room.waiting_reason = 'ready_check' and b.ready_at >= p_room.waiting_since)
  into v_me
  from watchium_private.member_playback as b
  where b.room_id = p_room.room_id and b.user_id = p_user_id;
  return pg_catalog.jsonb_build_object(
    'room_id', p_room.room_id,
    'me', v_me,
    'is_playing', p_room.is_playing,
    'current_time', p_room.current_playback_time,
    'playback_updated_at', p_room.playback_updated_at,
    'waiting', watchium_private.room_wait_state(p_room)
  );
end;
$$;
comment on function watchium_private.member_wait_reply(public.rooms, text) is
  'The reply of the waiting RPCs: the member''s playback status, the room''s playback reference and its waiting state (room_wait_state). Internal.';
revoke all on function watchium_private.member_wait_reply(public.rooms, text) from public;

-- =============================================================================
-- public.report_playback_status(room_id, status, position)
-- =============================================================================

-- -----------------------------------------------------------------------------
-- A member reports 'buffering' or 'ready' with its position.
--   buffering, waited for (the room plays or waits for buffering members; the
--   member did not opt out; not a late joiner's first load): the member
--   blocks until its deadline (first load: it never reported ready; else a
--   re-buffer). A playing room starts waiting (paused at the expected
--   position). A member already buffering keeps its deadline.
--   A late joiner (its first load, joined after the room's playback reference
--   while it plays) is never waited for: it catches up through the Live state.
--   ready: the member stops blocking; when no member blocks any more the
--   waiting room resumes at a scheduled start, in the same transaction.
-- Member only; rate limited (playback_status). Security definer: writes
-- member_playback and rooms, which clients cannot.
-- -----------------------------------------------------------------------------
create function watchium_rpc.report_playback_status(
  p_room_id text,
  p_status text,
  p_position numeric
)
returns jsonb
language plpgsql
volatile
security definer  -- writes watchium_private.member_playback and public.rooms
set search_path = pg_catalog, pg_temp
as $$
declare
  v_user_id   text;
  v_time      numeric;
  v_room      public.rooms;
  v_prev      watchium_private.member_playback;
  v_joined_at timestamptz;
  v_at        timestamptz;
  v_waited    boolean;
  v_late      boolean;
  v_deadline  timestamptz;
  v_timeout   numeric;
  v_block     record;
  o           record;
begin
  -- Sizes first (22001), before any other work.
  perform watchium_private.check_size('p_room_id', pg_catalog.octet_length(p_room_id), 40);
  perform watchium_private.check_size('p_status', pg_catalog.octet_length(p_status), 40);
  v_user_id := watchium_private.require_user_id();
  if p_status is null or p_status not in ('buffering', 'ready') then
    raise exception 'p_status must be ''buffering'' or ''ready'' (got %)',
      coalesce(pg_catalog.quote_literal(p_status), 'null')
      using errcode = '22023';
  end if;
  v_time := watchium_private.require_playback_time(p_position, 'p_position');
  perform watchium_private.enforce_rate_limit(v_user_id, 'playback_status');

  v_room := watchium_private.lock_member_room(p_room_id, v_user_id);
  v_at := pg_catalog.clock_timestamp();
  select * into v_prev from watchium_private.member_playback as b
  where b.room_id = p_room_id and b.user_id = v_user_id;

  if p_status = 'ready' then
    insert into watchium_private.member_playback as b
      (room_id, user_id, status, reported_time, status_since, loaded_at, updated_at)
    values (p_room_id, v_user_id, 'ready', v_time, v_at, v_at, v_at)
    on conflict (room_id, user_id) do update
      set status = 'ready',
          reported_time = excluded.reported_time,
          status_since = case when b.status = 'ready' then b.status_since else excluded.status_since end,
          wait_deadline = null,
          skipped_at = null,
          late_joiner = false,
          loaded_at = excluded.loaded_at,
          updated_at = excluded.updated_at;
    if v_prev.wait_deadline is not null and v_room.waiting_reason = 'buffering' then
      v_block := watchium_private.room_blockers(p_room_id);
      if v_block.blocking_members = 0 then
        v_room := watchium_private.end_wait(v_room, 'reports', v_user_id, null);
      else
        update public.rooms as r set sync_deadline = v_block.next_deadline
        where r.room_id = p_room_id returning * into v_room;
        perform watchium_private.emit_sync_wait(
          v_room, 'waiting', 'ready', v_user_id, null, v_room.waiting_since, v_room.waiting_reason);
      end if;
    end if;
    return watchium_private.member_wait_reply(v_room, v_user_id);
  end if;

  -- Buffering.
  if v_prev.status = 'buffering' then
    -- Already buffering: the position is news, the deadline is not.
    update watchium_private.member_playback as b
    set reported_time = v_time, updated_at = v_at
    where b.room_id = p_room_id and b.user_id = v_user_id;
    return watchium_private.member_wait_reply(v_room, v_user_id);
  end if;

  select m.joined_at into v_joined_at from public.room_members as m
  where m.room_id = p_room_id and m.user_id = v_user_id;
  v_late := v_prev.loaded_at is null
            and (v_room.is_playing or v_room.waiting_reason is not distinct from 'buffering')
            and v_joined_at > coalesce(v_room.waiting_since, v_room.playback_updated_at);
  v_waited := not coalesce(v_prev.wait_opt_out, false)
              and not v_late
              and ((v_room.is_playing and v_room.waiting_reason is null)
                   or v_room.waiting_reason is not distinct from 'buffering');
  if v_waited then
    -- The room's timeouts (room options, else the settings): first load 60 s,
    -- re-buffer 10 s by default; 0 means the room never waits for it.
    o := watchium_private.room_sync_options(v_room);
    v_timeout := case when v_prev.loaded_at is null then o.first_load_timeout
                      else o.rebuffer_timeout end;
    if v_timeout > 0 then
      v_deadline := v_at + pg_catalog.make_interval(secs => v_timeout::double precision);
    else
      v_waited := false;
    end if;
  end if;

  insert into watchium_private.member_playback as b
    (room_id, user_id, status, reported_time, status_since, wait_deadline, late_joiner, updated_at)
  values (p_room_id, v_user_id, 'buffering', v_time, v_at, v_deadline, v_late, v_at)
  on conflict (room_id, user_id) do update
    set status = 'buffering',
        reported_time = excluded.reported_time,
        status_since = excluded.status_since,
        wait_deadline = excluded.wait_deadline,
        skipped_at = null,
        late_joiner = excluded.late_joiner,
        updated_at = excluded.updated_at;

  if v_waited then
    if v_room.waiting_reason is null then
      v_room := watchium_private.begin_wait(v_room, 'buffering', v_deadline, null);
    else
      update public.rooms as r set sync_deadline = least(r.sync_deadline, v_deadline)
      where r.room_id = p_room_id returning * into v_room;
    end if;
    perform watchium_private.emit_sync_wait(
      v_room, 'waiting', 'buffering', v_user_id, null, v_room.waiting_since, v_room.waiting_reason);
  end if;
  return watchium_private.member_wait_reply(v_room, v_user_id);
end;
$$;
comment on function watchium_rpc.report_playback_status(text, text, numeric) is
  'Body of public.report_playback_status (same arguments, result and errors; documented there). Security definer: writes watchium_private.member_playback and public.rooms. Callers reach it through public.report_playback_status, a security invoker entry point; schema watchium_rpc is not exposed by the Data API.';
revoke all on function watchium_rpc.report_playback_status(text, text, numeric) from public;
grant execute on function watchium_rpc.report_playback_status(text, text, numeric) to authenticated, service_role;

-- -----------------------------------------------------------------------------
-- public.report_playback_status: the Data API entry point; its body is
-- watchium_rpc.report_playback_status above. Security invoker: it runs with
-- the caller's rights and only passes the arguments on; the body checks them
-- and the caller's identity itself.
-- -----------------------------------------------------------------------------
create function public.report_playback_status(
  p_room_id text,
  p_status text,
  p_position numeric
)
returns jsonb
language plpgsql
volatile
security invoker  -- the body is the security definer function
set search_path = pg_catalog, pg_temp
set lock_timeout = '2s'  -- bounded lock waits; tuned by the rpc_lock_timeout setting
as $$
begin
  return watchium_rpc.report_playback_status(p_room_id, p_status, p_position);
end;
$$;
comment on function public.report_playback_status(text, text, numeric) is
  'A member reports buffering or ready at p_position (0 to 86400 s). Buffering while the room plays makes the room wait for the member until its deadline (first load 60 s, re-buffer 10 s), unless it opted out or is a late joiner; the ready report that leaves nobody blocking resumes the room at a scheduled start. Returns the member''s status and the room''s waiting state.';
revoke all on function public.report_playback_status(text, text, numeric) from public, anon;
grant execute on function public.report_playback_status(text, text, numeric) to authenticated, service_role;

-- =============================================================================
-- public.set_wait_opt_out(room_id, opt_out)
-- =============================================================================

-- -----------------------------------------------------------------------------
-- A member chooses never to be waited for (true) or to be waited for again
-- (false). Opting out while blocking stops blocking at once (the room resumes
-- when nobody else blocks). Member only; rate limited (playback_status).
-- -----------------------------------------------------------------------------
create function watchium_rpc.set_wait_opt_out(p_room_id text, p_opt_out boolean)
returns jsonb
language plpgsql
volatile
security definer  -- writes watchium_private.member_playback and public.rooms
set search_path = pg_catalog, pg_temp
as $$
declare
  v_user_id text;
  v_room    public.rooms;
  v_was     timestamptz;
  v_at      timestamptz;
  v_block   record;
begin
  -- Sizes first (22001), before any other work.
  perform watchium_private.check_size('p_room_id', pg_catalog.octet_length(p_room_id), 40);
  v_user_id := watchium_private.require_user_id();
  if p_opt_out is null then
    raise exception 'p_opt_out must be true or false, not null' using errcode = '22023';
  end if;
  perform watchium_private.enforce_rate_limit(v_user_id, 'playback_status');
  v_room := watchium_private.lock_member_room(p_room_id, v_user_id);
  v_at := pg_catalog.clock_timestamp();

  select b.wait_deadline into v_was from watchium_private.member_playback as b
  where b.room_id = p_room_id and b.user_id = v_user_id;
  insert into watchium_private.member_playback as b (room_id, user_id, wait_opt_out, updated_at)
  values (p_room_id, v_user_id, p_opt_out, v_at)
  on conflict (room_id, user_id) do update
    set wait_opt_out = excluded.wait_opt_out,
        wait_deadline = case when excluded.wait_opt_out then null else b.wait_deadline end,
        updated_at = excluded.updated_at;

  if p_opt_out and v_was is not null and v_room.waiting_reason = 'buffering' then
    v_block := watchium_private.room_blockers(p_room_id);
    if v_block.blocking_members = 0 then
      v_room := watchium_private.end_wait(v_room, 'opt_out', v_user_id, null);
    else
      update public.rooms as r set sync_deadline = v_block.next_deadline
      where r.room_id = p_room_id returning * into v_room;
      perform watchium_private.emit_sync_wait(
        v_room, 'waiting', 'opt_out', v_user_id, null, v_room.waiting_since, v_room.waiting_reason);
    end if;
  end if;
  return watchium_private.member_wait_reply(v_room, v_user_id);
end;
$$;
comment on function watchium_rpc.set_wait_opt_out(text, boolean) is
  'Body of public.set_wait_opt_out (same arguments, result and errors; documented there). Security definer: writes watchium_private.member_playback and public.rooms. Callers reach it through public.set_wait_opt_out, a security invoker entry point; schema watchium_rpc is not exposed by the Data API.';
revoke all on function watchium_rpc.set_wait_opt_out(text, boolean) from public;
grant execute on function watchium_rpc.set_wait_opt_out(text, boolean) to authenticated, service_role;

-- -----------------------------------------------------------------------------
-- public.set_wait_opt_out: the Data API entry point; its body is
-- watchium_rpc.set_wait_opt_out above.
-- -----------------------------------------------------------------------------
create function public.set_wait_opt_out(p_room_id text, p_opt_out boolean)
returns jsonb
language plpgsql
volatile
security invoker  -- the body is the security definer function
set search_path = pg_catalog, pg_temp
set lock_timeout = '2s'  -- bounded lock waits; tuned by the rpc_lock_timeout setting
as $$
begin
  return watchium_rpc.set_wait_opt_out(p_room_id, p_opt_out);
end;
$$;
comment on function public.set_wait_opt_out(text, boolean) is
  'The caller opts out of being waited for (p_opt_out true: its buffering never pauses the room; if it blocks now, it stops) or back in (false). Returns the member''s status and the room''s waiting state.';
revoke all on function public.set_wait_opt_out(text, boolean) from public, anon;
grant execute on function public.set_wait_opt_out(text, boolean) to authenticated, service_role;

-- =============================================================================
-- public.force_resume(room_id)
-- =============================================================================

-- -----------------------------------------------------------------------------
-- The host ends the room's wait (buffering members or a ready check): every
-- member still blocking is skipped and the room plays at a scheduled start.
-- A room that is not waiting (a deadline may just have resumed it) is left as
-- it is: resumed false. Permission control_playback (the host; co-hosts by
-- default); rate limited (sync_control).
-- -----------------------------------------------------------------------------
create function watchium_rpc.force_resume(p_room_id text)
returns jsonb
language plpgsql
volatile
security definer  -- writes public.rooms and watchium_private.member_playback
set search_path = pg_catalog, pg_temp
as $$
declare
  v_user_id text;
  v_room    public.rooms;
  v_ready   record;
  v_resumed boolean := false;
begin
  -- Sizes first (22001), before any other work.
  perform watchium_private.check_size('p_room_id', pg_catalog.octet_length(p_room_id), 40);
  v_user_id := watchium_private.require_user_id();
  perform watchium_private.enforce_rate_limit(v_user_id, 'sync_control');
  select * into v_room from public.rooms as r where r.room_id = p_room_id for update;
  perform watchium_private.hide_private_room(v_room, p_room_id, v_user_id);
  -- Whoever may control playback (the host; co-hosts by default).
  perform watchium_private.require_room_permission(p_room_id, v_user_id, 'control_playback');
  v_room := watchium_private.settle_room(v_room, v_user_id);
  if v_room.waiting_reason is not null then
    if v_room.waiting_reason = 'ready_check' then
      v_ready := watchium_private.ready_count(v_room);
      perform watchium_private.emit_room_event(
        p_room_id, 'ready_check',
        pg_catalog.jsonb_build_object(
          'state', 'forced', 'user_id', v_user_id, 'ready', null,
          'ready_members', v_ready.ready_members, 'needed', v_ready.needed,
          'deadline', v_room.sync_deadline));
    end if;
    v_room := watchium_private.end_wait(v_room, 'host', v_user_id, null);
    v_resumed := true;
  end if;
  return watchium_private.member_wait_reply(v_room, v_user_id)
         || pg_catalog.jsonb_build_object('resumed', v_resumed);
end;
$$;
comment on function watchium_rpc.force_resume(text) is
  'Body of public.force_resume (same arguments, result and errors; documented there). Security definer: writes public.rooms and watchium_private.member_playback. Callers reach it through public.force_resume, a security invoker entry point; schema watchium_rpc is not exposed by the Data API.';
revoke all on function watchium_rpc.force_resume(text) from public;
grant execute on function watchium_rpc.force_resume(text) to authenticated, service_role;

-- -----------------------------------------------------------------------------
-- public.force_resume: the Data API entry point; its body is
-- watchium_rpc.force_resume above.
-- -----------------------------------------------------------------------------
create function public.force_resume(p_room_id text)
returns jsonb
language plpgsql
volatile
security invoker  -- the body is the security definer function
set search_path = pg_catalog, pg_temp
set lock_timeout = '2s'  -- bounded lock waits; tuned by the rpc_lock_timeout setting
as $$
begin
  return watchium_rpc.force_resume(p_room_id);
end;
$$;
comment on function public.force_resume(text) is
  'Permission control_playback (the host; co-hosts by default): ends the room''s wait (buffering members or a ready check); members still blocking are skipped and playback starts at a scheduled start. resumed is false when the room was not waiting.';
revoke all on function public.force_resume(text) from public, anon;
grant execute on function public.force_resume(text) to authenticated, service_role;

-- =============================================================================
-- Ready check: public.start_ready_check, public.set_ready
-- =============================================================================

-- -----------------------------------------------------------------------------
-- public.start_ready_check(room_id, timeout_seconds, min_ready default null):
-- the host pauses the room (waiting, reason ready_check) until p_min_ready
-- members (null: every member) answered ready, or until the deadline (now +
-- p_timeout_seconds, 1 to 3600); either way playback then starts at a
-- scheduled start. The host counts as ready. One ready check at a time
-- (WD409 while one runs). Permission control_playback (the host; co-hosts by
-- default); rate limited (sync_control).
-- -----------------------------------------------------------------------------
create function watchium_rpc.start_ready_check(
  p_room_id text,
  p_timeout_seconds numeric,
  p_min_ready integer default null
)
returns jsonb
language plpgsql
volatile
security definer  -- writes public.rooms and watchium_private.member_playback
set search_path = pg_catalog, pg_temp
as $$
declare
  v_user_id text;
  v_room    public.rooms;
  v_members integer;
  v_ready   record;
begin
  -- Sizes first (22001), before any other work.
  perform watchium_private.check_size('p_room_id', pg_catalog.octet_length(p_room_id), 40);
  v_user_id := watchium_private.require_user_id();
  if p_timeout_seconds is null or p_timeout_seconds = 'NaN'::numeric
     or p_timeout_seconds not between 1 and 3600 then
    raise exception 'p_timeout_seconds must be a number of seconds from 1 to 3600 (got %)',
      coalesce(p_timeout_seconds::text, 'null')
      using errcode = '22023', hint = 'The ready check ends at now + p_timeout_seconds.';
  end if;
  if p_min_ready is not null and p_min_ready < 1 then
    raise exception 'p_min_ready must be at least 1, or null for every member (got %)', p_min_ready
      using errcode = '22023';
  end if;
  perform watchium_private.enforce_rate_limit(v_user_id, 'sync_control');
  select * into v_room from public.rooms as r where r.room_id = p_room_id for update;
  perform watchium_private.hide_private_room(v_room, p_room_id, v_user_id);
  -- Whoever may control playback (the host; co-hosts by default).
  perform watchium_private.require_room_permission(p_room_id, v_user_id, 'control_playback');
  select pg_catalog.count(*)::integer into v_members
  from public.room_members as m where m.room_id = p_room_id;
  if p_min_ready > v_members then
    raise exception 'p_min_ready must be at most the room''s % member(s) (got %)', v_members, p_min_ready
      using errcode = '22023', hint = 'Pass null to wait for every member.';
  end if;
  v_room := watchium_private.settle_room(v_room, v_user_id);
  if v_room.waiting_reason = 'ready_check' then
    raise exception 'a ready check is already running in room %', p_room_id
      using errcode = 'WD409', hint = 'Wait for it to end, or call force_resume.';
  end if;
  if v_room.waiting_reason = 'buffering' then
    -- The ready check takes over: the buffering members no longer block.
    update watchium_private.member_playback as b
    set wait_deadline = null, skipped_at = pg_catalog.clock_timestamp()
    where b.room_id = p_room_id and b.wait_deadline is not null;
    update public.rooms as r
    set waiting_reason = 'ready_check',
        waiting_since = pg_catalog.clock_timestamp(),
        sync_deadline = pg_catalog.clock_timestamp() + pg_catalog.make_interval(secs => p_timeout_seconds::double precision),
        ready_check_min_ready = p_min_ready
    where r.room_id = p_room_id
    returning * into v_room;
  else
    v_room := watchium_private.begin_wait(
      v_room, 'ready_check',
      pg_catalog.clock_timestamp() + pg_catalog.make_interval(secs => p_timeout_seconds::double precision),
      p_min_ready);
  end if;
  -- The host is ready.
  insert into watchium_private.member_playback as b (room_id, user_id, ready_at, updated_at)
  values (p_room_id, v_user_id, v_room.waiting_since, v_room.waiting_since)
  on conflict (room_id, user_id) do update
    set ready_at = excluded.ready_at, updated_at = excluded.updated_at;

  v_ready := watchium_private.ready_count(v_room);
  perform watchium_private.emit_room_event(
    p_room_id, 'ready_check',
    pg_catalog.jsonb_build_object(
      'state', 'started', 'user_id', v_user_id, 'ready', true,
      'ready_members', v_ready.ready_members, 'needed', v_ready.needed,
      'deadline', v_room.sync_deadline));
  if v_ready.ready_members >= v_ready.needed then
    perform watchium_private.emit_room_event(
      p_room_id, 'ready_check',
      pg_catalog.jsonb_build_object(
        'state', 'completed', 'user_id', v_user_id, 'ready', true,
        'ready_members', v_ready.ready_members, 'needed', v_ready.needed,
        'deadline', v_room.sync_deadline));
    v_room := watchium_private.end_wait(v_room, 'ready', v_user_id, null);
  end if;
  return watchium_private.member_wait_reply(v_room, v_user_id);
end;
$$;
comment on function watchium_rpc.start_ready_check(text, numeric, integer) is
  'Body of public.start_ready_check (same arguments, result and errors; documented there). Security definer: writes public.rooms and watchium_private.member_playback. Callers reach it through public.start_ready_check, a security invoker entry point; schema watchium_rpc is not exposed by the Data API.';
revoke all on function watchium_rpc.start_ready_check(text, numeric, integer) from public;
grant execute on function watchium_rpc.start_ready_check(text, numeric, integer) to authenticated, service_role;

-- -----------------------------------------------------------------------------
-- public.start_ready_check: the Data API entry point; its body is
-- watchium_rpc.start_ready_check above.
-- -----------------------------------------------------------------------------
create function public.start_ready_check(
  p_room_id text,
  p_timeout_seconds numeric,
  p_min_ready integer default null
)
returns jsonb
language plpgsql
volatile
security invoker  -- the body is the security definer function
set search_path = pg_catalog, pg_temp
set lock_timeout = '2s'  -- bounded lock waits; tuned by the rpc_lock_timeout setting
as $$
begin
  return watchium_rpc.start_ready_check(p_room_id, p_timeout_seconds, p_min_ready);
end;
$$;
comment on function public.start_ready_check(text, numeric, integer) is
  'Permission control_playback (the host; co-hosts by default): pauses the room until p_min_ready members (null: every member; the host counts as ready) answered set_ready, or until now + p_timeout_seconds (1 to 3600); then playback starts at a scheduled start. WD409 while a ready check runs. Returns the room''s waiting state.';
revoke all on function public.start_ready_check(text, numeric, integer) from public, anon;
grant execute on function public.start_ready_check(text, numeric, integer) to authenticated, service_role;

-- -----------------------------------------------------------------------------
-- public.set_ready(room_id, ready): a member answers the running ready check
-- (true: ready, false: not any more). The answer that reaches the needed
-- count starts playback at a scheduled start, in the same transaction. WD409
-- when no ready check runs. Member only; rate limited (playback_status).
-- -----------------------------------------------------------------------------
create function watchium_rpc.set_ready(p_room_id text, p_ready boolean)
returns jsonb
language plpgsql
volatile
security definer  -- writes watchium_private.member_playback and public.rooms
set search_path = pg_catalog, pg_temp
as $$
declare
  v_user_id text;
  v_room    public.rooms;
  v_before  text;
  v_at      timestamptz;
  v_ready   record;
begin
  -- Sizes first (22001), before any other work.
  perform watchium_private.check_size('p_room_id', pg_catalog.octet_length(p_room_id), 40);
  v_user_id := watchium_private.require_user_id();
  if p_ready is null then
    raise exception 'p_ready must be true or false, not null' using errcode = '22023';
  end if;
  perform watchium_private.enforce_rate_limit(v_user_id, 'playback_status');
  select r.waiting_reason into v_before from public.rooms as r where r.room_id = p_room_id;
  v_room := watchium_private.lock_member_room(p_room_id, v_user_id);
  if v_room.waiting_reason is distinct from 'ready_check' and v_before = 'ready_check' then
    -- The check ended at its deadline, applied by this very call: the answer
    -- comes too late and changes nothing (no error, so that the expiry this
    -- call applied is kept).
    return watchium_private.member_wait_reply(v_room, v_user_id);
  end if;
  if v_room.waiting_reason is distinct from 'ready_check' then
    raise exception 'no ready check is running in room %', p_room_id
      using errcode = 'WD409', hint = 'The host starts one with start_ready_check.';
  end if;
  v_at := pg_catalog.clock_timestamp();
  insert into watchium_private.member_playback as b (room_id, user_id, ready_at, updated_at)
  values (p_room_id, v_user_id, case when p_ready then v_at end, v_at)
  on conflict (room_id, user_id) do update
    set ready_at = excluded.ready_at, updated_at = excluded.updated_at;

  v_ready := watchium_private.ready_count(v_room);
  perform watchium_private.emit_room_event(
    p_room_id, 'ready_check',
    pg_catalog.jsonb_build_object(
      'state', 'updated', 'user_id', v_user_id, 'ready', p_ready,
      'ready_members', v_ready.ready_members, 'needed', v_ready.needed,
      'deadline', v_room.sync_deadline));
  if v_ready.ready_members >= v_ready.needed then
    perform watchium_private.emit_room_event(
      p_room_id, 'ready_check',
      pg_catalog.jsonb_build_object(
        'state', 'completed', 'user_id', v_user_id, 'ready', p_ready,
        'ready_members', v_ready.ready_members, 'needed', v_ready.needed,
        'deadline', v_room.sync_deadline));
    v_room := watchium_private.end_wait(v_room, 'ready', v_user_id, null);
  end if;
  return watchium_private.member_wait_reply(v_room, v_user_id);
end;
$$;
comment on function watchium_rpc.set_ready(text, boolean) is
  'Body of public.set_ready (same arguments, result and errors; documented there). Security definer: writes watchium_private.member_playback and public.rooms. Callers reach it through public.set_ready, a security invoker entry point; schema watchium_rpc is not exposed by the Data API.';
revoke all on function watchium_rpc.set_ready(text, boolean) from public;
grant execute on function watchium_rpc.set_ready(text, boolean) to authenticated, service_role;

-- -----------------------------------------------------------------------------
-- public.set_ready: the Data API entry point; its body is
-- watchium_rpc.set_ready above.
-- -----------------------------------------------------------------------------
create function public.set_ready(p_room_id text, p_ready boolean)
returns jsonb
language plpgsql
volatile
security invoker  -- the body is the security definer function
set search_path = pg_catalog, pg_temp
set lock_timeout = '2s'  -- bounded lock waits; tuned by the rpc_lock_timeout setting
as $$
begin
  return watchium_rpc.set_ready(p_room_id, p_ready);
end;
$$;
comment on function public.set_ready(text, boolean) is
  'A member answers the running ready check (p_ready true or false); the answer that reaches the needed count starts playback at a scheduled start. WD409 when no ready check runs. Returns the member''s status and the room''s waiting state.';
revoke all on function public.set_ready(text, boolean) from public, anon;
grant execute on function public.set_ready(text, boolean) to authenticated, service_role;

-- =============================================================================
-- maintain(): one more job, sync_deadlines (apply_due_sync_deadlines), before
-- the sync history job (whose DDL locks are held until the commit); otherwise
-- the definition of 0013 (episode queue).
-- =============================================================================
create or replace function watchium_rpc.maintain()
returns jsonb
language plpgsql
volatile
security definer  -- removes members, rooms, partitions and log rows owned by the package
set search_path = pg_catalog, pg_temp
as $$
declare
  v_timeout interval := coalesce(watchium_private.setting_interval('maintenance_lock_timeout'),
                                 interval '50 milliseconds');
  v_rooms   jsonb;
  v_queues  jsonb;
  v_events  jsonb;
  v_rates   jsonb;
  v_history jsonb;
  v_waits   jsonb;
  v_skipped jsonb := '[]'::jsonb;
begin
  perform pg_catalog.set_config('lock_timeout',
    ((pg_catalog.date_part('epoch', v_timeout) * 1000)::bigint)::text || 'ms', true);

  begin
    v_rooms := watchium_private.maintain_rooms();
  exception when lock_not_available then
    v_rooms := pg_catalog.jsonb_build_object('skipped', 'lock timeout');
    v_skipped := v_skipped || pg_catalog.jsonb_build_object(
      'job', 'rooms', 'reason', 'lock timeout: the whole job is retried by the next run');
  end;
  if coalesce((v_rooms ->> 'rooms_skipped_busy')::integer, 0) > 0 then
    v_skipped := v_skipped || pg_catalog.jsonb_build_object(
      'job', 'rooms', 'reason', (v_rooms ->> 'rooms_skipped_busy') || ' room(s) locked by callers');
  end if;
  if coalesce((v_rooms ->> 'members_skipped_busy')::integer, 0) > 0 then
    v_skipped := v_skipped || pg_catalog.jsonb_build_object(
      'job', 'rooms', 'reason', (v_rooms ->> 'members_skipped_busy')
        || ' stale-looking member(s) locked by callers or refreshed by a heartbeat');
  end if;

  -- Queues whose current item is over and that no caller advanced (rooms
  -- whose members stopped sending heartbeats); rooms busy with callers are
  -- theirs to advance.
  begin
    v_queues := watchium_private.maintain_queues();
  exception when lock_not_available then
    v_queues := pg_catalog.jsonb_build_object('skipped', 'lock timeout');
    v_skipped := v_skipped || pg_catalog.jsonb_build_object('job', 'queues', 'reason', 'lock timeout');
  end;
  if coalesce((v_queues ->> 'queues_skipped_busy')::integer, 0) > 0 then
    v_skipped := v_skipped || pg_catalog.jsonb_build_object(
      'job', 'queues', 'reason', (v_queues ->> 'queues_skipped_busy') || ' room(s) locked by callers');
  end if;

  begin
    v_events := watchium_private.expire_room_events();
  exception when lock_not_available then
    v_events := pg_catalog.jsonb_build_object('skipped', 'lock timeout');
    v_skipped := v_skipped || pg_catalog.jsonb_build_object('job', 'room_events', 'reason', 'lock timeout');
  end;
  begin
    v_rates := watchium_private.expire_rate_limit_counters();
  exception when lock_not_available then
    v_rates := pg_catalog.jsonb_build_object('skipped', 'lock timeout');
    v_skipped := v_skipped || pg_catalog.jsonb_build_object('job', 'rate_limits', 'reason', 'lock timeout');
  end;

  -- Deadlines of waiting rooms and ready checks that no call applied yet.
  begin
    v_waits := watchium_private.apply_due_sync_deadlines();
  exception when lock_not_available then
    v_waits := pg_catalog.jsonb_build_object('skipped', 'lock timeout');
    v_skipped := v_skipped || pg_catalog.jsonb_build_object('job', 'sync_deadlines', 'reason', 'lock timeout');
  end;
  if coalesce((v_waits ->> 'rooms_skipped_busy')::integer, 0) > 0 then
    v_skipped := v_skipped || pg_catalog.jsonb_build_object(
      'job', 'sync_deadlines', 'reason', (v_waits ->> 'rooms_skipped_busy')
        || ' room(s) locked by callers (their call applies the deadline)');
  end if;

  v_history := watchium_private.maintain_sync_history();
  v_skipped := v_skipped || coalesce((
    select pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object('job', 'sync_history') || s.x)
    from pg_catalog.jsonb_array_elements(v_history -> 'skipped') as s(x)), '[]'::jsonb);

  return pg_catalog.jsonb_build_object(
    'rooms', v_rooms,
    'queues', v_queues,
    'room_events', v_events,
    'rate_limits', v_rates,
    'sync_history', v_history,
    'sync_deadlines', v_waits,
    'skipped', v_skipped,
    'ran_at', pg_catalog.now()
  );
end;
$$;
comment on function watchium_rpc.maintain() is
  'Body of public.maintain (same arguments, result and errors; documented there). Security definer: removes members, rooms, partitions and log rows owned by the package. Callers reach it through public.maintain, a security invoker entry point; schema watchium_rpc is not exposed by the Data API.';
