-- =============================================================================
-- 0015 room role functions
--
--   set_member_role       give a member another role (manage_roles)
--   set_room_permission   change a permission's minimum role (manage_permissions)
--   get_room_permissions  the room's map as the caller may see it
--   kick_member           needs the kick permission (default co_host) and a
--                         target of a lower role (the host is never kicked)
--   host succession       prefers co-hosts: the longest-present co-host,
--                         else the longest-present member (trigger
--                         _300_member_left and maintain_rooms' successor lock)
--
-- The rule of every role and permission change: nobody gives what they do not
-- rank above. A caller with manage_roles changes only members of a lower role
-- than its own, to a role lower than its own (so a co-host can never make a
-- co-host, and nobody reaches host but through transfer_host); a caller with
-- manage_permissions changes only permissions whose minimum role it holds,
-- to a minimum role it holds (the host, ranking above every role, always
-- keeps every permission).
-- =============================================================================

insert into watchium_private.rate_limit_rules (action, max_requests, window_minutes, description) values
  ('set_member_role',     30, 1, 'set_member_role calls per user per minute.'),
  ('set_room_permission', 30, 1, 'set_room_permission calls per user per minute.');

-- -----------------------------------------------------------------------------
-- tg_room_members__member_left (0005), with the successor chosen among the
-- co-hosts first: the longest-present co-host, else the longest-present
-- member (earliest joined_at, then user_id).
-- -----------------------------------------------------------------------------
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
    order by c.room_id, c.role <> 'co_host', c.joined_at, c.user_id
  ) as successor
  where m.room_id = successor.room_id and m.user_id = successor.user_id;

  return null;
end;
$$;
comment on function watchium_private.tg_room_members__member_left() is
  'Trigger function (statement level): leave sync records, room activity, and host succession when the host was removed: the longest-present co-host, else the longest-present member.';

-- -----------------------------------------------------------------------------
-- watchium_private.maintain_rooms (0005), its successor lock (step 4) in the
-- trigger's new order; nothing else changes.
-- -----------------------------------------------------------------------------
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

    -- 4. Successors of departing hosts (their is_host is set by the trigger,
    -- co-hosts first). A room whose successor is locked by a caller keeps its
    -- members this run.
    with departing as (
      select s.room_id, s.user_id, s.is_host
      from pg_catalog.jsonb_to_recordset(v_stale) as s(room_id text, user_id text, is_host boolean)
    ),
    successor as (
      select distinct on (c.room_id) c.room_id, c.user_id
      from public.room_members as c
      where c.room_id in (select d.room_id from departing as d where d.is_host)
        and (c.room_id, c.user_id) not in (select d.room_id, d.user_id from departing as d)
      order by c.room_id, c.role <> 'co_host', c.joined_at, c.user_id
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
  'Maintenance: removes members without a heartbeat for member_stale_after (host handed to the longest-present co-host, else the longest-present member) and deletes rooms empty for longer than empty_room_grace (with their comments). Never waits for a lock: rooms, members and presence rows held by callers (lock order, SKIP LOCKED) are left for the next run and counted in rooms_skipped_busy / members_skipped_busy; staleness is re-checked under the presence row lock. Returns a jsonb summary.';

-- -----------------------------------------------------------------------------
-- watchium_private.require_outranks(room_id, actor, target, what): 42501
-- unless the actor's role ranks above the target's (the target must be a
-- member: P0002 naming p_user_id otherwise). Returns the target's role.
-- -----------------------------------------------------------------------------
create function watchium_private.require_outranks(
  p_room_id text,
  p_actor text,
  p_target text,
  p_what text
)
returns text
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
declare
  v_actor  text;
  v_target text;
begin
  select m.role into v_target
  from public.room_members as m
  where m.room_id = p_room_id and m.user_id = p_target;
  if v_target is null then
    raise exception 'p_user_id % is not a member of room %', p_target, p_room_id
      using errcode = 'P0002';
  end if;
  select m.role into v_actor
  from public.room_members as m
  where m.room_id = p_room_id and m.user_id = p_actor;
  if watchium_private.role_rank(v_actor) <= watchium_private.role_rank(v_target) then
    raise exception 'you may % only members of a lower role than yours (you are %, % is %)',
      p_what, coalesce(v_actor, 'not a member'), p_target, v_target
      using errcode = '42501';
  end if;
  return v_target;
end;
$$;
comment on function watchium_private.require_outranks(text, text, text, text) is
  'Returns the role of member p_target of the room; P0002 when not a member, 42501 unless p_actor''s role ranks above it. Internal.';
revoke all on function watchium_private.require_outranks(text, text, text, text) from public;

-- -----------------------------------------------------------------------------
-- public.set_member_role(room_id, user_id, role): gives member p_user_id the
-- role co_host, member or viewer. Needs manage_roles (default: host); the
-- target must rank below the caller and so must the new role: a co-host
-- with manage_roles makes members viewers and back, never co-hosts, and
-- nobody is made host here (transfer_host). Emits member_role_changed when
-- the role changes. Returns {room_id, user_id, role, previous_role}.
-- Security definer: updates room_members.
-- -----------------------------------------------------------------------------
create function watchium_rpc.set_member_role(p_room_id text, p_user_id text, p_role text)
returns jsonb
language plpgsql
volatile
security definer  -- updates room_members, which no client may write
set search_path = pg_catalog, pg_temp
as $$
declare
  v_user_id  text := watchium_private.require_user_id();
  v_room     public.rooms;
  v_previous text;
  v_mine     text;
begin
  -- Sizes first (22001), before any other work.
  perform watchium_private.check_size('p_room_id', pg_catalog.octet_length(p_room_id), 40);
  perform watchium_private.check_size('p_user_id', pg_catalog.octet_length(p_user_id), 400);
  perform watchium_private.check_size('p_role', pg_catalog.octet_length(p_role), 40);
  if p_user_id is null or pg_catalog.char_length(p_user_id) not between 1 and 100 then
    raise exception 'p_user_id must be a user id of 1 to 100 characters' using errcode = '22023';
  end if;
  if p_role is null or p_role not in ('co_host', 'member', 'viewer') then
    raise exception 'p_role must be co_host, member or viewer'
      using errcode = '22023',
            hint = 'The host changes only through transfer_host.';
  end if;
  perform watchium_private.enforce_rate_limit(v_user_id, 'set_member_role');
  v_room := watchium_private.lock_room(p_room_id);
  perform watchium_private.hide_private_room(v_room, p_room_id, v_user_id);
  perform watchium_private.require_room_permission(v_room.room_id, v_user_id, 'manage_roles');
  v_previous := watchium_private.require_outranks(v_room.room_id, v_user_id, p_user_id, 'change the role of');
  select m.role into v_mine
  from public.room_members as m
  where m.room_id = v_room.room_id and m.user_id = v_user_id;
  if watchium_private.role_rank(p_role) >= watchium_private.role_rank(v_mine) then
    raise exception 'p_role: you may give only roles lower than yours (you are %)', v_mine
      using errcode = '42501';
  end if;
  if p_role <> v_previous then
    update public.room_members as m
    set role = p_role
    where m.room_id = v_room.room_id and m.user_id = p_user_id;
    perform watchium_private.emit_room_event(v_room.room_id, 'member_role_changed',
      pg_catalog.jsonb_build_object('user_id', p_user_id, 'role', p_role,
                                    'previous_role', v_previous, 'changed_by', v_user_id));
  end if;
  return pg_catalog.jsonb_build_object('room_id', v_room.room_id, 'user_id', p_user_id,
                                       'role', p_role, 'previous_role', v_previous);
end;
$$;
comment on function watchium_rpc.set_member_role(text, text, text) is
  'Body of public.set_member_role (same arguments, result and errors; documented there). Security definer: updates room_members, which no client may write. Callers reach it through public.set_member_role, a security invoker entry point; schema watchium_rpc is not exposed by the Data API.';
revoke all on function watchium_rpc.set_member_role(text, text, text) from public;
grant execute on function watchium_rpc.set_member_role(text, text, text) to authenticated, service_role;

-- -----------------------------------------------------------------------------
-- public.set_member_role: the Data API entry point; its body is
-- watchium_rpc.set_member_role above. Security invoker: it runs with the
-- caller's rights and only passes the arguments on; the body checks them and
-- the caller's identity itself.
-- -----------------------------------------------------------------------------
create function public.set_member_role(p_room_id text, p_user_id text, p_role text)
returns jsonb
language plpgsql
volatile
security invoker  -- the body is the security definer function
set search_path = pg_catalog, pg_temp
set lock_timeout = '2s'  -- bounded lock waits; tuned by the rpc_lock_timeout setting
as $$
begin
  return watchium_rpc.set_member_role(p_room_id, p_user_id, p_role);
end;
$$;
comment on function public.set_member_role(text, text, text) is
  'Gives member p_user_id the role co_host, member or viewer. Needs manage_roles (default: host); the member and the new role must both rank below the caller (never host: transfer_host). Emits member_role_changed. Returns {room_id, user_id, role, previous_role}.';
revoke all on function public.set_member_role(text, text, text) from public, anon;
grant execute on function public.set_member_role(text, text, text) to authenticated, service_role;

-- -----------------------------------------------------------------------------
-- public.set_room_permission(room_id, permission, min_role): the minimum role
-- of a permission in the room; null goes back to the default. Needs
-- manage_permissions (default: host); the caller must hold both the current
-- and the new minimum role. A value equal to the default is stored as no
-- override. Emits room_permission_changed when it changes. Returns
-- {room_id, permission, min_role, previous_min_role, is_default}.
-- Security definer: writes room_permissions.
-- -----------------------------------------------------------------------------
create function watchium_rpc.set_room_permission(p_room_id text, p_permission text, p_min_role text default null)
returns jsonb
language plpgsql
volatile
security definer  -- writes room_permissions, which no client may write
set search_path = pg_catalog, pg_temp
as $$
declare
  v_user_id  text := watchium_private.require_user_id();
  v_room     public.rooms;
  v_default  text;
  v_previous text;
  v_new      text;
  v_mine     text;
begin
  -- Sizes first (22001), before any other work.
  perform watchium_private.check_size('p_room_id', pg_catalog.octet_length(p_room_id), 40);
  perform watchium_private.check_size('p_permission', pg_catalog.octet_length(p_permission), 160);
  perform watchium_private.check_size('p_min_role', pg_catalog.octet_length(p_min_role), 40);
  select c.default_min_role into v_default
  from watchium_private.room_permission_catalogue as c
  where c.permission = p_permission;
  if v_default is null then
    raise exception 'p_permission must be a room permission'
      using errcode = '22023',
            hint = 'get_room_permissions lists them.';
  end if;
  if p_min_role is not null and p_min_role not in ('host', 'co_host', 'member', 'viewer') then
    raise exception 'p_min_role must be host, co_host, member, viewer or null (the default)'
      using errcode = '22023';
  end if;
  v_new := coalesce(p_min_role, v_default);
  perform watchium_private.enforce_rate_limit(v_user_id, 'set_room_permission');
  v_room := watchium_private.lock_room(p_room_id);
  perform watchium_private.hide_private_room(v_room, p_room_id, v_user_id);
  perform watchium_private.require_room_permission(v_room.room_id, v_user_id, 'manage_permissions');
  v_previous := watchium_private.room_permission_min_role(v_room.room_id, p_permission);
  select m.role into v_mine
  from public.room_members as m
  where m.room_id = v_room.room_id and m.user_id = v_user_id;
  if watchium_private.role_rank(v_mine) < greatest(watchium_private.role_rank(v_previous),
                                                  watchium_private.role_rank(v_new)) then
    raise exception 'p_permission: you may change only permissions you hold, to a role you hold (you are %)', v_mine
      using errcode = '42501';
  end if;
  if v_new = v_default then
    delete from public.room_permissions as p
    where p.room_id = v_room.room_id and p.permission = p_permission;
  else
    insert into public.room_permissions as p (room_id, permission, min_role, updated_by)
    values (v_room.room_id, p_permission, v_new, v_user_id)
    on conflict (room_id, permission) do update
      set min_role = excluded.min_role, updated_by = excluded.updated_by, updated_at = pg_catalog.now();
  end if;
  if v_new <> v_previous then
    perform watchium_private.emit_room_event(v_room.room_id, 'room_permission_changed',
      pg_catalog.jsonb_build_object('permission', p_permission, 'min_role', v_new,
                                    'previous_min_role', v_previous, 'changed_by', v_user_id));
  end if;
  return pg_catalog.jsonb_build_object('room_id', v_room.room_id, 'permission', p_permission,
    'min_role', v_new, 'previous_min_role', v_previous, 'is_default', v_new = v_default);
end;
$$;
comment on function watchium_rpc.set_room_permission(text, text, text) is
  'Body of public.set_room_permission (same arguments, result and errors; documented there). Security definer: writes room_permissions, which no client may write. Callers reach it through public.set_room_permission, a security invoker entry point; schema watchium_rpc is not exposed by the Data API.';
revoke all on function watchium_rpc.set_room_permission(text, text, text) from public;
grant execute on function watchium_rpc.set_room_permission(text, text, text) to authenticated, service_role;

-- -----------------------------------------------------------------------------
-- public.set_room_permission: the Data API entry point; its body is
-- watchium_rpc.set_room_permission above. Security invoker: it runs with the
-- caller's rights and only passes the arguments on; the body checks them and
-- the caller's identity itself.
-- -----------------------------------------------------------------------------
create function public.set_room_permission(p_room_id text, p_permission text, p_min_role text default null)
returns jsonb
language plpgsql
volatile
security invoker  -- the body is the security definer function
set search_path = pg_catalog, pg_temp
set lock_timeout = '2s'  -- bounded lock waits; tuned by the rpc_lock_timeout setting
as $$
begin
  return watchium_rpc.set_room_permission(p_room_id, p_permission, p_min_role);
end;
$$;
comment on function public.set_room_permission(text, text, text) is
  'Sets the minimum role (host, co_host, member, viewer; null: the default) of p_permission in the room. Needs manage_permissions (default: host) and both the current and the new minimum role. Emits room_permission_changed. Returns {room_id, permission, min_role, previous_min_role, is_default}.';
revoke all on function public.set_room_permission(text, text, text) from public, anon;
grant execute on function public.set_room_permission(text, text, text) to authenticated, service_role;

-- -----------------------------------------------------------------------------
-- public.get_room_permissions(room_id): the room's permission map for anyone
-- who may see the room: {room_id, role (the caller's, null for a non-member),
-- permissions: [{permission, min_role, default_min_role, allowed, description}]}
-- in permission order. Security definer: reads the private catalogue.
-- -----------------------------------------------------------------------------
create function watchium_rpc.get_room_permissions(p_room_id text)
returns jsonb
language plpgsql
stable
security definer  -- reads the permission catalogue, which clients cannot read
set search_path = pg_catalog, pg_temp
as $$
declare
  v_user_id text := watchium_private.require_user_id();
  v_room    public.rooms;
  v_role    text;
begin
  -- Sizes first (22001), before any other work.
  perform watchium_private.check_size('p_room_id', pg_catalog.octet_length(p_room_id), 40);
  if p_room_id is null or p_room_id !~ '^[a-z0-9]{10}$' then
    raise exception 'p_room_id must be a room id: 10 characters of [a-z0-9]' using errcode = '22023';
  end if;
  select * into v_room from public.rooms as r where r.room_id = p_room_id;
  perform watchium_private.hide_private_room(v_room, p_room_id, v_user_id);
  select m.role into v_role
  from public.room_members as m
  where m.room_id = p_room_id and m.user_id = v_user_id;
  return pg_catalog.jsonb_build_object(
    'room_id', p_room_id,
    'role', v_role,
    'permissions', (
      select pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
               'permission', c.permission,
               'min_role', coalesce(o.min_role, c.default_min_role),
               'default_min_role', c.default_min_role,
               'allowed', v_role is not null and watchium_private.role_rank(v_role)
                            >= watchium_private.role_rank(coalesce(o.min_role, c.default_min_role)),
               'description', c.description)
             order by c.permission)
      from watchium_private.room_permission_catalogue as c
      left join public.room_permissions as o on o.room_id = p_room_id and o.permission = c.permission
    )
  );
end;
$$;
comment on function watchium_rpc.get_room_permissions(text) is
  'Body of public.get_room_permissions (same arguments, result and errors; documented there). Security definer: reads the permission catalogue, which clients cannot read. Callers reach it through public.get_room_permissions, a security invoker entry point; schema watchium_rpc is not exposed by the Data API.';
revoke all on function watchium_rpc.get_room_permissions(text) from public;
grant execute on function watchium_rpc.get_room_permissions(text) to authenticated, service_role;

-- -----------------------------------------------------------------------------
-- public.get_room_permissions: the Data API entry point; its body is
-- watchium_rpc.get_room_permissions above. Security invoker: it runs with the
-- caller's rights and only passes the arguments on; the body checks them and
-- the caller's identity itself.
-- -----------------------------------------------------------------------------
create function public.get_room_permissions(p_room_id text)
returns jsonb
language plpgsql
stable
security invoker  -- the body is the security definer function
set search_path = pg_catalog, pg_temp
set lock_timeout = '2s'  -- bounded lock waits; tuned by the rpc_lock_timeout setting
as $$
begin
  return watchium_rpc.get_room_permissions(p_room_id);
end;
$$;
comment on function public.get_room_permissions(text) is
  'The room''s permission map as the caller may see the room: {room_id, role, permissions: [{permission, min_role, default_min_role, allowed, description}]}. P0002 for a missing or invisible room.';
revoke all on function public.get_room_permissions(text) from public, anon;
grant execute on function public.get_room_permissions(text) to authenticated, service_role;

-- -----------------------------------------------------------------------------
-- public.kick_member (0005 body): needs the kick permission (default co_host)
-- and a target of a lower role than the caller's; the host is never kicked.
-- member_kicked as before.
-- -----------------------------------------------------------------------------
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
  perform watchium_private.require_room_permission(v_room.room_id, v_user_id, 'kick');
  if p_user_id = v_user_id then
    raise exception 'p_user_id must be another member: you cannot kick yourself'
      using errcode = '22023', hint = 'Use leave_room.';
  end if;
  perform watchium_private.require_outranks(v_room.room_id, v_user_id, p_user_id, 'kick');
  perform watchium_private.remove_member(v_room, p_user_id, 'member_kicked',
    pg_catalog.jsonb_build_object('user_id', p_user_id, 'kicked_by', v_user_id));
  return pg_catalog.jsonb_build_object('status', 'kicked', 'room_id', v_room.room_id, 'user_id', p_user_id);
end;
$$;

comment on function public.kick_member(text, text) is
  'Removes member p_user_id from the room (event member_kicked). Needs the kick permission (default: co_host) and a member of a lower role than the caller''s. 42501 otherwise, P0002 when not a member.';
