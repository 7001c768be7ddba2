-- Reverts 0015: the role functions go; kick_member, host succession and
-- maintain_rooms get their 0005 definitions back.
-- Calls that began before the revisions above were downgraded may still run
-- their bodies, which call the helpers dropped here: they end first.
select watchium_private.await_older_transactions();

drop function public.get_room_permissions(text);
drop function watchium_rpc.get_room_permissions(text);
drop function public.set_room_permission(text, text, text);
drop function watchium_rpc.set_room_permission(text, text, text);
drop function public.set_member_role(text, text, text);
drop function watchium_rpc.set_member_role(text, text, text);

create or replace function watchium_rpc.kick_member(p_room_id text, p_user_id text)
returns jsonb
language plpgsql
volatile
security definer  -- deletes from room_members, which no client may write
set search_path = pg_catalog, pg_temp
as $$
declare
  v_user_id text := watchium_private.require_user_id();
  v_room    public.rooms;
begin
  -- Sizes first (22001), before any other work.
  perform watchium_private.check_size('p_room_id', pg_catalog.octet_length(p_room_id), 40);
  perform watchium_private.check_size('p_user_id', pg_catalog.octet_length(p_user_id), 400);
  if p_user_id is null or pg_catalog.char_length(p_user_id) not between 1 and 100 then
    raise exception 'p_user_id must be a user id of 1 to 100 characters' using errcode = '22023';
  end if;
  perform watchium_private.enforce_rate_limit(v_user_id, 'kick_member');
  v_room := watchium_private.lock_room(p_room_id);
  perform watchium_private.hide_private_room(v_room, p_room_id, v_user_id);
  perform watchium_private.require_host(v_room, v_user_id);
  if p_user_id = v_user_id then
    raise exception 'p_user_id must be another member: the host cannot kick itself'
      using errcode = '22023', hint = 'Use leave_room.';
  end if;
  if not watchium_private.remove_member(v_room, p_user_id, 'member_kicked',
           pg_catalog.jsonb_build_object('user_id', p_user_id, 'kicked_by', v_user_id)) then
    raise exception 'p_user_id % is not a member of room %', p_user_id, v_room.room_id
      using errcode = 'P0002';
  end if;
  return pg_catalog.jsonb_build_object('status', 'kicked', 'room_id', v_room.room_id, 'user_id', p_user_id);
end;
$$;
comment on function watchium_rpc.kick_member(text, text) is
  'Body of public.kick_member (same arguments, result and errors; documented there). Security definer: deletes from room_members, which no client may write. Callers reach it through public.kick_member, a security invoker entry point; schema watchium_rpc is not exposed by the Data API.';

comment on function public.kick_member(text, text) is
  'Host only: removes member p_user_id from the room (event member_kicked). 42501 for non-hosts, P0002 when not a member.';

drop function watchium_private.require_outranks(text, text, text, text);

create or replace function watchium_private.tg_room_members__member_left()
returns trigger
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
begin
  insert into public.sync_states
    (room_id, user_id, host_time, member_time, time_difference, is_synced, sync_event_type)
  select o.room_id, o.user_id, e.position, o.current_playback_time,
         least(86400, abs(e.position - o.current_playback_time)), o.is_synced, 'leave'
  from old_members as o
  join public.rooms as r on r.room_id = o.room_id
  cross join lateral (select watchium_private.room_expected_position(r) as position) as e;

  update public.rooms as r
  set last_activity = pg_catalog.now()
  where r.room_id in (select o.room_id from old_members as o)
    and r.last_activity is distinct from pg_catalog.now();

  update public.room_members as m
  set is_host = true
  from (
    select distinct on (c.room_id) c.room_id, c.user_id
    from public.room_members as c
    join public.rooms as r on r.room_id = c.room_id
    where r.host_user_id is null
      and c.room_id in (select o.room_id from old_members as o where o.is_host)
    order by c.room_id, c.joined_at, c.user_id
  ) as successor
  where m.room_id = successor.room_id and m.user_id = successor.user_id;

  return null;
end;
$$;
comment on function watchium_private.tg_room_members__member_left() is
  'Trigger function (statement level): leave sync records, room activity, and host succession to the longest-present member when the host was removed.';

create or replace function watchium_private.maintain_rooms()
returns jsonb
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
declare
  v_stale_cutoff timestamptz := pg_catalog.now() - watchium_private.setting_interval('member_stale_after');
  v_empty_cutoff timestamptz := pg_catalog.now() - watchium_private.setting_interval('empty_room_grace');
  v_anchor_cutoff timestamptz := pg_catalog.now() - watchium_private.setting_interval('empty_anchor_grace');
  v_anchors      bigint[];
  v_anchors_deleted integer;
  v_candidates   text[];
  v_locked       text[];
  v_seen         integer;
  v_members      jsonb;
  v_stale        jsonb;
  v_blocked      text[];
  v_empty        text[];
  v_removed      integer;
  v_hosts        integer;
  v_deleted      integer;
  v_skipped      integer := 0;
begin
  -- Stale members ------------------------------------------------------------
  select pg_catalog.array_agg(distinct p.room_id) into v_candidates
  from watchium_private.member_presence as p
  where p.last_heartbeat < v_stale_cutoff;

  -- Each part in its own subtransaction: a lock it still has to wait for (a
  -- comment row held by its author when an empty room goes, history held by
  -- partition DDL) makes only that part skip this run, after
  -- maintenance_lock_timeout; its rooms count as busy.
  begin
    -- 1. Room rows, in room_id order.
    select pg_catalog.array_agg(l.room_id) into v_locked
    from (
      select r.room_id
      from public.rooms as r
      where r.room_id = any (coalesce(v_candidates, '{}'))
      order by r.room_id
      for update skip locked
    ) as l;

    -- How many members of the locked rooms look stale in this snapshot.
    select pg_catalog.count(*) into v_seen
    from watchium_private.member_presence as p
    where p.room_id = any (coalesce(v_locked, '{}'))
      and p.last_heartbeat < v_stale_cutoff;

    -- 2. Their room_members rows. The set is kept as jsonb for the events, the
    -- delete and the count (no temporary table: this runs every minute and
    -- would churn the catalog).
    select coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
             'room_id', l.room_id, 'user_id', l.user_id, 'is_host', l.is_host)), '[]'::jsonb)
      into v_members
    from (
      select m.room_id, m.user_id, m.is_host
      from public.room_members as m
      where m.room_id = any (coalesce(v_locked, '{}'))
        and exists (select from watchium_private.member_presence as p
                    where p.room_id = m.room_id and p.user_id = m.user_id
                      and p.last_heartbeat < v_stale_cutoff)
      order by m.room_id, m.user_id
      for update of m skip locked
    ) as l;

    -- 3. Their presence rows, staleness checked again under the lock (a row
    -- updated by a heartbeat that committed since this statement's snapshot is
    -- re-read, and no longer qualifies).
    select coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
             'room_id', s.room_id, 'user_id', s.user_id, 'is_host', s.is_host)
             order by s.room_id, s.user_id), '[]'::jsonb)
      into v_stale
    from pg_catalog.jsonb_to_recordset(v_members) as s(room_id text, user_id text, is_host boolean)
    where (s.room_id, s.user_id) in (
      select p.room_id, p.user_id
      from watchium_private.member_presence as p
      where (p.room_id, p.user_id) in (
              select x.room_id, x.user_id
              from pg_catalog.jsonb_to_recordset(v_members) as x(room_id text, user_id text))
        and p.last_heartbeat < v_stale_cutoff
      order by p.room_id, p.user_id
      for update of p skip locked
    );

    -- 4. Successors of departing hosts (their is_host is set by the trigger).
    -- A room whose successor is locked by a caller keeps its members this run.
    with departing as (
      select s.room_id, s.user_id, s.is_host
      from pg_catalog.jsonb_to_recordset(v_stale) as s(room_id text, user_id text, is_host boolean)
    ),
    successor as (
      select distinct on (c.room_id) c.room_id, c.user_id
      from public.room_members as c
      where c.room_id in (select d.room_id from departing as d where d.is_host)
        and (c.room_id, c.user_id) not in (select d.room_id, d.user_id from departing as d)
      order by c.room_id, c.joined_at, c.user_id
    ),
    locked as (
      select m.room_id
      from public.room_members as m
      join successor as n on n.room_id = m.room_id and n.user_id = m.user_id
      order by m.room_id
      for update of m skip locked
    )
    select pg_catalog.array_agg(n.room_id) into v_blocked
    from successor as n
    where n.room_id not in (select l.room_id from locked as l);

    if v_blocked is not null then
      select coalesce(pg_catalog.jsonb_agg(s.x), '[]'::jsonb) into v_stale
      from pg_catalog.jsonb_array_elements(v_stale) as s(x)
      where s.x ->> 'room_id' <> all (v_blocked);
    end if;

    perform watchium_private.emit_room_event(s.room_id, 'member_left',
      pg_catalog.jsonb_build_object('user_id', s.user_id, 'reason', 'stale'))
    from pg_catalog.jsonb_to_recordset(v_stale) as s(room_id text, user_id text, is_host boolean);

    delete from public.room_members as m
    using pg_catalog.jsonb_to_recordset(v_stale) as s(room_id text, user_id text, is_host boolean)
    where m.room_id = s.room_id and m.user_id = s.user_id;
    get diagnostics v_removed = row_count;

    select pg_catalog.count(*) into v_hosts
    from pg_catalog.jsonb_to_recordset(v_stale) as s(room_id text, user_id text, is_host boolean)
    join public.rooms as r on r.room_id = s.room_id
    where s.is_host and r.host_user_id is not null;
  exception when lock_not_available then
    v_removed := 0;
    v_hosts := 0;
    v_seen := 0;
    v_skipped := v_skipped + coalesce(pg_catalog.cardinality(v_locked), 0);
  end;

  -- Empty rooms past their grace period ----------------------------------------
  begin
    select pg_catalog.array_agg(e.room_id) into v_empty
    from (
      select r.room_id
      from public.rooms as r
      where r.host_user_id is null
        and r.last_activity < v_empty_cutoff
        and not exists (select from public.room_members as m where m.room_id = r.room_id)
      order by r.room_id
      for update skip locked
    ) as e;

    perform watchium_private.emit_room_event(e.room_id, 'room_deleted',
      pg_catalog.jsonb_build_object('reason', 'empty'))
    from pg_catalog.unnest(coalesce(v_empty, '{}')) as e(room_id);

    delete from public.rooms as r
    where r.room_id = any (coalesce(v_empty, '{}'));
    get diagnostics v_deleted = row_count;
  exception when lock_not_available then
    v_deleted := 0;
    v_skipped := v_skipped + coalesce(pg_catalog.cardinality(v_empty), 0);
  end;

  -- Idle empty anchors: older than empty_anchor_grace, nothing else in their
  -- thread and no room on their episode (get_or_create_anchor opens threads
  -- for any anime id). Locked with SKIP LOCKED (a reply being posted holds
  -- its anchor for key share), then checked again under the lock.
  select pg_catalog.array_agg(a.id) into v_anchors
  from (
    select c.id
    from public.comments as c
    where c.is_anchor
      and c.created_at < v_anchor_cutoff
      and not exists (select from public.comments as o
                      where o.anime_id = c.anime_id and o.episode_number = c.episode_number
                        and not o.is_anchor)
      and not exists (select from public.rooms as r
                      where r.anime_id = c.anime_id and r.episode_number = c.episode_number)
    order by c.id
    for update of c skip locked
  ) as a;
  delete from public.comments as c
  where c.id = any (coalesce(v_anchors, '{}'))
    and not exists (select from public.comments as o
                    where o.anime_id = c.anime_id and o.episode_number = c.episode_number
                      and not o.is_anchor)
    and not exists (select from public.rooms as r
                    where r.anime_id = c.anime_id and r.episode_number = c.episode_number);
  get diagnostics v_anchors_deleted = row_count;

  return pg_catalog.jsonb_build_object(
    'stale_members_removed', v_removed,
    'hosts_transferred', v_hosts,
    'empty_rooms_deleted', v_deleted,
    'empty_anchors_deleted', v_anchors_deleted,
    'rooms_skipped_busy', coalesce(pg_catalog.cardinality(v_candidates), 0)
                          - coalesce(pg_catalog.cardinality(v_locked), 0) + v_skipped,
    'members_skipped_busy', greatest(0, v_seen - v_removed)
  );
end;
$$;
comment on function watchium_private.maintain_rooms() is
  'Maintenance: removes members without a heartbeat for member_stale_after (host handed to the longest-present member) and deletes rooms empty for longer than empty_room_grace (with their comments). Never waits for a lock: rooms, members and presence rows held by callers (lock order, SKIP LOCKED) are left for the next run and counted in rooms_skipped_busy / members_skipped_busy; staleness is re-checked under the presence row lock. Returns a jsonb summary.';

delete from watchium_private.rate_limit_counters where action in ('set_member_role', 'set_room_permission');
delete from watchium_private.rate_limit_rules where action in ('set_member_role', 'set_room_permission');
