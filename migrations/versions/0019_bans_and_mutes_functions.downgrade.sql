-- Reverts 0019: the RPCs of bans and mutes go; the functions they changed get
-- back the definitions of 0005, 0006 and 0015 (0018's downgrade then drops the
-- helpers and tables).
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

create or replace function watchium_private.own_comment(p_comment_id bigint, p_user_id text, p_action text)
returns public.comments
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
declare
  v_comment   public.comments;
  v_room      public.rooms;
  v_is_member boolean := false;
begin
  if p_comment_id is null then
    raise exception 'p_comment_id is required' using errcode = '22023';
  end if;
  select * into v_comment from public.comments as c where c.id = p_comment_id for update;
  if v_comment.room_id is not null then
    select * into v_room from public.rooms as r where r.room_id = v_comment.room_id;
    v_is_member := exists (select from public.room_members as m
                           where m.room_id = v_comment.room_id and m.user_id = p_user_id);
  end if;
  if v_comment.id is null
     or (v_comment.room_id is not null and not v_room.is_public and not v_is_member) then
    raise exception 'comment % not found', p_comment_id using errcode = 'P0002';
  end if;
  if v_comment.deleted_at is not null then
    raise exception 'comment % was deleted', p_comment_id using errcode = 'P0002';
  end if;
  if v_comment.is_system_message or v_comment.is_anchor then
    raise exception 'comment % is not yours: the database wrote it, and nobody may change it', p_comment_id
      using errcode = '42501';
  end if;
  if v_comment.user_id is not distinct from p_user_id then
    if p_action = 'edit' and v_comment.room_id is not null and not v_is_member then
      raise exception 'comment % was posted in room %, which you are no longer a member of: it can be deleted, not edited',
        p_comment_id, v_comment.room_id
        using errcode = '42501';
    end if;
    return v_comment;
  end if;
  if p_action = 'delete' and v_comment.room_id is not null
     and v_room.host_user_id is not distinct from p_user_id then
    return v_comment;  -- the host moderates their room
  end if;
  raise exception 'comment % is not yours: only its author may change it%', p_comment_id,
    case when p_action = 'delete' then ' (or the host of its room delete it)' else '' end
    using errcode = '42501';
end;
$$;
comment on function watchium_private.own_comment(bigint, text, text) is
  'Locks and returns a comment p_user_id may p_action (edit: own comment, room comments only while a member; delete: own comment, or any member comment in a room p_user_id hosts). P0002 when missing, in a private room p_user_id is not a member of, or deleted; 42501 otherwise (system messages and anchors always). Internal.';

create or replace function watchium_rpc.get_comments(
  p_anime_id text,
  p_episode_number integer,
  p_room_id text default null,
  p_cursor text default null,
  p_limit integer default 50
)
returns jsonb
language plpgsql
stable
security definer  -- calls internal helpers; checks the room's visibility itself
set search_path = pg_catalog, pg_temp
as $$
declare
  v_limit   integer := watchium_private.check_limit('p_limit', p_limit);
  v_episode integer := watchium_private.check_episode('p_episode_number', p_episode_number);
  v_before  timestamptz;
  v_key     text;
  v_before_id bigint;
  v_items   jsonb;
  v_count   integer;
  v_last    jsonb;
begin
  -- Sizes first (22001), before any other work.
  perform watchium_private.check_size('p_anime_id', pg_catalog.octet_length(p_anime_id), 400);
  perform watchium_private.check_size('p_room_id', pg_catalog.octet_length(p_room_id), 40);
  perform watchium_private.check_size('p_cursor', pg_catalog.octet_length(p_cursor), 160);
  if p_anime_id is null or pg_catalog.char_length(p_anime_id) not between 1 and 100 then
    raise exception 'p_anime_id must be 1 to 100 characters' using errcode = '22023';
  end if;
  if p_room_id is not null and not exists (
    select from public.rooms as r
    where r.room_id = p_room_id
      and (r.is_public
           or watchium_private.caller_is_trusted()
           or exists (select from public.room_members as m
                      where m.room_id = r.room_id and m.user_id = watchium_private.current_user_id()))
  ) then
    raise exception 'room % not found', p_room_id using errcode = 'P0002';
  end if;
  if p_cursor is not null then
    select c.at, c.key into v_before, v_key from watchium_private.parse_cursor(p_cursor) as c;
    if v_key !~ '^[0-9]{1,18}$' then
      raise exception 'p_cursor must be a cursor returned by a previous call' using errcode = '22023';
    end if;
    v_before_id := v_key::bigint;
  end if;
  select coalesce(pg_catalog.jsonb_agg(pg_catalog.to_jsonb(page) order by page.created_at desc, page.id desc), '[]'::jsonb),
         pg_catalog.count(*)
    into v_items, v_count
  from (
    select c.*
    from public.comments as c
    where c.anime_id = p_anime_id
      and c.episode_number = v_episode
      and c.room_id is not distinct from p_room_id
      and (p_cursor is null or (c.created_at, c.id) < (v_before, v_before_id))
    order by c.created_at desc, c.id desc
    limit v_limit
  ) as page;
  v_last := v_items -> (v_count - 1);
  return pg_catalog.jsonb_build_object(
    'items', v_items,
    'next_cursor', case when v_count = v_limit then watchium_private.make_cursor(
      (v_last ->> 'created_at')::timestamptz, v_last ->> 'id') end
  );
end;
$$;
comment on function watchium_rpc.get_comments(text, integer, text, text, integer) is
  'Body of public.get_comments (same arguments, result and errors; documented there). Security definer: calls internal helpers; checks the room''s visibility itself. Callers reach it through public.get_comments, a security invoker entry point; schema watchium_rpc is not exposed by the Data API.';

create or replace function watchium_rpc.broadcast_to_room(p_room_id text, p_event_type text, p_payload jsonb)
returns bigint
language plpgsql
volatile
security definer  -- reads membership and writes watchium_private.room_events for the caller
set search_path = pg_catalog, pg_temp
as $$
declare
  v_user_id  text := watchium_private.require_user_id();
  v_max      bigint;
  v_fields   jsonb;
  v_is_host  boolean;
  v_username text;
begin
  -- Sizes first (22001), before any other work.
  perform watchium_private.check_size('p_room_id', pg_catalog.octet_length(p_room_id), 40);
  perform watchium_private.check_size('p_event_type', pg_catalog.octet_length(p_event_type), 200);
  perform watchium_private.check_size('p_payload', pg_catalog.pg_column_size(p_payload), 1048576);
  if p_room_id is null or p_room_id !~ '^[a-z0-9]{10}$' then
    raise exception 'p_room_id must be a room id: 10 characters of [a-z0-9]'
      using errcode = '22023';
  end if;
  v_max := coalesce(
    (select (s.value #>> '{}')::bigint from watchium_private.settings as s
     where s.key = 'broadcast_max_payload_bytes'),
    16384
  );
  if p_payload is not null and pg_catalog.octet_length(p_payload::text) > v_max then
    raise exception 'p_payload must be at most % bytes as JSON (got %)',
      v_max, pg_catalog.octet_length(p_payload::text)
      using errcode = '22023';
  end if;
  v_fields := watchium_private.validate_broadcast_payload(p_event_type, p_payload);

  select m.is_host, m.username into v_is_host, v_username
  from public.room_members as m
  where m.room_id = p_room_id and m.user_id = v_user_id;
  if not found then
    raise exception 'not a member of room %: only members may broadcast to it', p_room_id
      using errcode = '42501',
            hint = 'Join the room first.';
  end if;
  if p_event_type in ('play', 'pause', 'seek') and not v_is_host then
    raise exception '% events may only be sent by the host of room %', p_event_type, p_room_id
      using errcode = '42501';
  end if;

  perform watchium_private.enforce_rate_limit(v_user_id, 'broadcast');

  return watchium_private.emit_room_event(
    p_room_id,
    p_event_type,
    v_fields || pg_catalog.jsonb_build_object('user_id', v_user_id, 'username', v_username)
  );
end;
$$;
comment on function watchium_rpc.broadcast_to_room(text, text, jsonb) is
  'Body of public.broadcast_to_room (same arguments, result and errors; documented there). Security definer: reads membership and writes watchium_private.room_events for the caller. Callers reach it through public.broadcast_to_room, a security invoker entry point; schema watchium_rpc is not exposed by the Data API.';

create or replace function watchium_rpc.post_comment(
  p_anime_id text,
  p_episode_number integer,
  p_message text,
  p_username text default null,
  p_avatar_url text default null,
  p_room_id text default null,
  p_parent_id bigint default null,
  p_video_timestamp numeric default null
)
returns jsonb
language plpgsql
volatile
security definer  -- inserts into comments, which no client may write directly
set search_path = pg_catalog, pg_temp
as $$
declare
  v_user_id    text := watchium_private.require_user_id();
  v_anime_id   text := watchium_private.check_text('p_anime_id', p_anime_id, 1, 100);
  v_episode    integer := watchium_private.check_episode('p_episode_number', p_episode_number);
  v_message    text := watchium_private.check_text('p_message', p_message, 1, 2000, true);
  v_username   text := watchium_private.check_username('p_username', p_username);
  v_avatar_url text := watchium_private.check_url('p_avatar_url', p_avatar_url);
  v_timestamp  numeric := watchium_private.check_video_time('p_video_timestamp', p_video_timestamp);
  v_room       public.rooms;
  v_member     public.room_members;
  v_parent     public.comments;
  v_comment    public.comments;
begin
  -- Sizes first (22001), before any other work.
  perform watchium_private.check_size('p_anime_id', pg_catalog.octet_length(p_anime_id), 400);
  perform watchium_private.check_size('p_message', pg_catalog.octet_length(p_message), 8000);
  perform watchium_private.check_size('p_username', pg_catalog.octet_length(p_username), 200);
  perform watchium_private.check_size('p_avatar_url', pg_catalog.octet_length(p_avatar_url), 8192);
  perform watchium_private.check_size('p_room_id', pg_catalog.octet_length(p_room_id), 40);
  if v_anime_id is null then
    raise exception 'p_anime_id is required' using errcode = '22023';
  end if;
  if v_message is null then
    raise exception 'p_message is required' using errcode = '22023';
  end if;
  perform watchium_private.enforce_rate_limit(v_user_id, 'post_comment');

  if p_room_id is not null then
    v_room := watchium_private.lock_room(p_room_id);
    perform watchium_private.hide_private_room(v_room, p_room_id, v_user_id);
    select * into v_member
    from public.room_members as m
    where m.room_id = v_room.room_id and m.user_id = v_user_id;
    if not found then
      raise exception 'only members of room % may comment in it', v_room.room_id
        using errcode = '42501', hint = 'Join the room first.';
    end if;
    if v_room.anime_id <> v_anime_id or v_room.episode_number <> v_episode then
      raise exception 'p_anime_id and p_episode_number must be the room''s current anime and episode (% episode %)',
        v_room.anime_id, v_room.episode_number
        using errcode = '22023';
    end if;
    v_username := v_member.username;
    v_avatar_url := coalesce(v_avatar_url, v_member.avatar_url);
  elsif v_username is null then
    raise exception 'p_username is required for a comment outside a room' using errcode = '22023';
  end if;

  if p_parent_id is not null then
    -- Key share: the parent cannot be deleted between this check and the
    -- insert (delete_comment locks it for update first), so a reply to a
    -- comment deleted meanwhile gets this P0002, not a foreign key error.
    select * into v_parent from public.comments as c where c.id = p_parent_id for key share;
    if not found
       or (v_parent.room_id is not null and v_parent.room_id is distinct from v_room.room_id) then
      raise exception 'p_parent_id % is not a comment you can reply to here', p_parent_id
        using errcode = 'P0002';
    end if;
    if v_parent.anime_id <> v_anime_id or v_parent.episode_number <> v_episode then
      raise exception 'p_parent_id must be a comment of the same thread (anime % episode %)',
        v_anime_id, v_episode
        using errcode = '22023';
    end if;
  end if;

  insert into public.comments
    (anime_id, room_id, episode_number, parent_id, user_id, username, avatar_url, message, video_timestamp)
  values (v_anime_id, v_room.room_id, v_episode, p_parent_id, v_user_id, v_username, v_avatar_url,
          v_message, v_timestamp)
  returning * into v_comment;

  if v_room.room_id is not null then
    update public.rooms as r set last_activity = pg_catalog.now()
    where r.room_id = v_room.room_id and r.last_activity is distinct from pg_catalog.now();
    perform watchium_private.emit_room_event(v_room.room_id, 'comment_added', pg_catalog.to_jsonb(v_comment));
  end if;
  return pg_catalog.to_jsonb(v_comment);
end;
$$;
comment on function watchium_rpc.post_comment(text, integer, text, text, text, text, bigint, numeric) is
  'Body of public.post_comment (same arguments, result and errors; documented there). Security definer: inserts into comments, which no client may write directly. Callers reach it through public.post_comment, a security invoker entry point; schema watchium_rpc is not exposed by the Data API.';

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

drop function public.kick_member(text, text, integer);
drop function watchium_rpc.kick_member(text, text, integer);
create function watchium_rpc.kick_member(p_room_id text, p_user_id text)
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
comment on function watchium_rpc.kick_member(text, text) is
  'Body of public.kick_member (same arguments, result and errors; documented there). Security definer: deletes from room_members, which no client may write. Callers reach it through public.kick_member, a security invoker entry point; schema watchium_rpc is not exposed by the Data API.';
revoke all on function watchium_rpc.kick_member(text, text) from public;
grant execute on function watchium_rpc.kick_member(text, text) to authenticated, service_role;

-- -----------------------------------------------------------------------------
-- public.kick_member: the Data API entry point; its body is
-- watchium_rpc.kick_member above. Security invoker: it runs with the caller's
-- rights and only passes the arguments on; the body checks them and the
-- caller's identity itself.
-- -----------------------------------------------------------------------------
create function public.kick_member(p_room_id text, p_user_id text)
returns jsonb
language plpgsql
volatile
security invoker  -- the body is the security definer function
set search_path = pg_catalog, pg_temp
set lock_timeout = '2s'  -- bounded lock waits; tuned by the rpc_lock_timeout setting
as $$
begin
  return watchium_rpc.kick_member(p_room_id, p_user_id);
end;
$$;
comment on function public.kick_member(text, text) is
  'Host only: removes member p_user_id from the room (event member_kicked). 42501 for non-hosts, P0002 when not a member.';
revoke all on function public.kick_member(text, text) from public, anon;
grant execute on function public.kick_member(text, text) to authenticated, service_role;

comment on function public.kick_member(text, text) is
  'Removes member p_user_id from the room (event member_kicked). Needs the kick permission (default: co_host) and a member of a lower role than the caller''s. 42501 otherwise, P0002 when not a member.';

drop function public.get_room_moderation(text);
drop function watchium_rpc.get_room_moderation(text);
drop function public.hide_member_comments(text, text);
drop function watchium_rpc.hide_member_comments(text, text);
drop function public.unmute_member(text, text);
drop function watchium_rpc.unmute_member(text, text);
drop function public.mute_member(text, text, integer, boolean, text);
drop function watchium_rpc.mute_member(text, text, integer, boolean, text);
drop function public.unban_member(text, text);
drop function watchium_rpc.unban_member(text, text);
drop function public.ban_member(text, text, integer, text);
drop function watchium_rpc.ban_member(text, text, integer, text);
drop function watchium_private.ban_user(public.rooms, text, text, timestamptz, text);
