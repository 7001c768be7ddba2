-- =============================================================================
-- 0019 bans and mutes: the functions
--
-- The RPCs over 0018's tables and helpers (ban_member, unban_member,
-- mute_member, unmute_member, hide_member_comments, get_room_moderation, kick
-- with a ban) and the functions that now check them (join_room, post_comment,
-- broadcast_to_room, get_comments, own_comment, maintain_rooms). See 0018's
-- header for the rules.
--
-- A revision of its own: its downgrade puts back the functions that do not
-- call 0018's helpers and commits before 0018's downgrade drops them, so a
-- call that started on these functions during a downgrade still finds them.
-- =============================================================================

-- -----------------------------------------------------------------------------
-- public.ban_member(room_id, user_id, duration_seconds default null, reason
-- default null): bans a user from the room for p_duration_seconds, or for
-- good (null). Needs ban (default co_host); a member must rank below the
-- caller (the host is never banned) and is removed at once (member_banned,
-- then member_kicked). A user who is not a member can be banned too. Banning
-- again replaces the ban. Returns {room_id, user_id, ends_at, removed}.
-- Security definer: writes room_bans and room_members.
-- -----------------------------------------------------------------------------
create function watchium_rpc.ban_member(
  p_room_id text,
  p_user_id text,
  p_duration_seconds integer default null,
  p_reason text default null
)
returns jsonb
language plpgsql
volatile
security definer  -- writes room_bans and room_members, which no client may write
set search_path = pg_catalog, pg_temp
as $$
declare
  v_user_id text := watchium_private.require_user_id();
  v_room    public.rooms;
  v_reason  text;
  v_ends_at timestamptz;
  v_removed boolean;
begin
  -- Sizes first (22001), before any other work.
  perform watchium_private.check_size('p_room_id', pg_catalog.octet_length(p_room_id), 40);
  perform watchium_private.check_size('p_user_id', pg_catalog.octet_length(p_user_id), 400);
  perform watchium_private.check_size('p_reason', pg_catalog.octet_length(p_reason), 2000);
  if p_user_id is null or pg_catalog.char_length(p_user_id) not between 1 and 100 then
    raise exception 'p_user_id must be a user id of 1 to 100 characters' using errcode = '22023';
  end if;
  v_reason := watchium_private.check_text('p_reason', p_reason, 1, 500);
  v_ends_at := watchium_private.check_duration('p_duration_seconds', p_duration_seconds);
  perform watchium_private.enforce_rate_limit(v_user_id, 'ban_member');
  v_room := watchium_private.lock_room(p_room_id);
  perform watchium_private.hide_private_room(v_room, p_room_id, v_user_id);
  v_removed := watchium_private.ban_user(v_room, v_user_id, p_user_id, v_ends_at, v_reason);
  return pg_catalog.jsonb_build_object('room_id', v_room.room_id, 'user_id', p_user_id,
                                       'ends_at', v_ends_at, 'removed', v_removed);
end;
$$;
comment on function watchium_rpc.ban_member(text, text, integer, text) is
  'Body of public.ban_member (same arguments, result and errors; documented there). Security definer: writes room_bans and room_members, which no client may write. Callers reach it through public.ban_member, a security invoker entry point; schema watchium_rpc is not exposed by the Data API.';
revoke all on function watchium_rpc.ban_member(text, text, integer, text) from public;
grant execute on function watchium_rpc.ban_member(text, text, integer, text) to authenticated, service_role;

create function public.ban_member(
  p_room_id text,
  p_user_id text,
  p_duration_seconds integer default null,
  p_reason text default null
)
returns jsonb
language plpgsql
volatile
security invoker  -- the body is the security definer function
set search_path = pg_catalog, pg_temp
set lock_timeout = '2s'  -- bounded lock waits; tuned by the rpc_lock_timeout setting
as $$
begin
  return watchium_rpc.ban_member(p_room_id, p_user_id, p_duration_seconds, p_reason);
end;
$$;
comment on function public.ban_member(text, text, integer, text) is
  'Bans p_user_id from the room for p_duration_seconds (1 s to 10 years) or for good (null), with an optional reason. Needs the ban permission (default: co_host) and, for a member, a lower role than the caller''s; a member is removed at once. join_room refuses the user whatever the key. Events member_banned (and member_kicked). Returns {room_id, user_id, ends_at, removed}.';
revoke all on function public.ban_member(text, text, integer, text) from public, anon;
grant execute on function public.ban_member(text, text, integer, text) to authenticated, service_role;

-- -----------------------------------------------------------------------------
-- watchium_private.ban_user(room, actor, user, ends_at, reason): the shared
-- part of ban_member and kick_member's ban: checks ban and rank, writes the
-- ban, emits member_banned, removes a member (member_kicked). The caller
-- holds the room lock. Returns whether a member was removed.
-- -----------------------------------------------------------------------------
create function watchium_private.ban_user(
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
  perform watchium_private.emit_room_event(p_room.room_id, 'member_banned',
    pg_catalog.jsonb_build_object('user_id', p_user_id, 'banned_by', p_actor, 'ends_at', p_ends_at));
  return watchium_private.remove_member(p_room, p_user_id, 'member_kicked',
    pg_catalog.jsonb_build_object('user_id', p_user_id, 'kicked_by', p_actor));
end;
$$;
comment on function watchium_private.ban_user(public.rooms, text, text, timestamptz, text) is
  'Bans p_user_id from the room until p_ends_at (null: for good): checks the ban permission and, for a member, its lower role; emits member_banned and removes a member (member_kicked). Caller holds the room lock. Internal.';
revoke all on function watchium_private.ban_user(public.rooms, text, text, timestamptz, text) from public;

-- -----------------------------------------------------------------------------
-- public.unban_member(room_id, user_id): lifts a ban (ban permission).
-- {room_id, user_id, status: unbanned | not_banned}; member_unbanned when a
-- ban in force was lifted.
-- -----------------------------------------------------------------------------
create function watchium_rpc.unban_member(p_room_id text, p_user_id text)
returns jsonb
language plpgsql
volatile
security definer  -- deletes from room_bans, which no client may write
set search_path = pg_catalog, pg_temp
as $$
declare
  v_user_id text := watchium_private.require_user_id();
  v_room    public.rooms;
  v_ban     watchium_private.room_bans;
begin
  -- Sizes first (22001), before any other work.
  perform watchium_private.check_size('p_room_id', pg_catalog.octet_length(p_room_id), 40);
  perform watchium_private.check_size('p_user_id', pg_catalog.octet_length(p_user_id), 400);
  if p_user_id is null or pg_catalog.char_length(p_user_id) not between 1 and 100 then
    raise exception 'p_user_id must be a user id of 1 to 100 characters' using errcode = '22023';
  end if;
  perform watchium_private.enforce_rate_limit(v_user_id, 'ban_member');
  v_room := watchium_private.lock_room(p_room_id);
  perform watchium_private.hide_private_room(v_room, p_room_id, v_user_id);
  perform watchium_private.require_room_permission(v_room.room_id, v_user_id, 'ban');
  delete from watchium_private.room_bans as b
  where b.room_id = v_room.room_id and b.user_id = p_user_id
  returning * into v_ban;
  if v_ban.user_id is not null and (v_ban.ends_at is null or v_ban.ends_at > pg_catalog.now()) then
    perform watchium_private.emit_room_event(v_room.room_id, 'member_unbanned',
      pg_catalog.jsonb_build_object('user_id', p_user_id, 'unbanned_by', v_user_id));
    return pg_catalog.jsonb_build_object('room_id', v_room.room_id, 'user_id', p_user_id, 'status', 'unbanned');
  end if;
  return pg_catalog.jsonb_build_object('room_id', v_room.room_id, 'user_id', p_user_id, 'status', 'not_banned');
end;
$$;
comment on function watchium_rpc.unban_member(text, text) is
  'Body of public.unban_member (same arguments, result and errors; documented there). Security definer: deletes from room_bans, which no client may write. Callers reach it through public.unban_member, a security invoker entry point; schema watchium_rpc is not exposed by the Data API.';
revoke all on function watchium_rpc.unban_member(text, text) from public;
grant execute on function watchium_rpc.unban_member(text, text) to authenticated, service_role;

create function public.unban_member(p_room_id text, p_user_id text)
returns jsonb
language plpgsql
volatile
security invoker  -- the body is the security definer function
set search_path = pg_catalog, pg_temp
set lock_timeout = '2s'  -- bounded lock waits; tuned by the rpc_lock_timeout setting
as $$
begin
  return watchium_rpc.unban_member(p_room_id, p_user_id);
end;
$$;
comment on function public.unban_member(text, text) is
  'Lifts the ban of p_user_id in the room (ban permission, default co_host). Returns {room_id, user_id, status: unbanned | not_banned}; event member_unbanned.';
revoke all on function public.unban_member(text, text) from public, anon;
grant execute on function public.unban_member(text, text) to authenticated, service_role;

-- -----------------------------------------------------------------------------
-- public.mute_member(room_id, user_id, duration_seconds default null, shadow
-- default false, reason default null): mutes a member of a lower role (mute
-- permission, default co_host) for p_duration_seconds or until unmuted.
-- member_muted for a mute that is not shadow; a shadow mute emits nothing.
-- Returns {room_id, user_id, ends_at, shadow}.
-- -----------------------------------------------------------------------------
create function watchium_rpc.mute_member(
  p_room_id text,
  p_user_id text,
  p_duration_seconds integer default null,
  p_shadow boolean default false,
  p_reason text default null
)
returns jsonb
language plpgsql
volatile
security definer  -- writes room_mutes, which no client may write
set search_path = pg_catalog, pg_temp
as $$
declare
  v_user_id text := watchium_private.require_user_id();
  v_room    public.rooms;
  v_reason  text;
  v_ends_at timestamptz;
begin
  -- Sizes first (22001), before any other work.
  perform watchium_private.check_size('p_room_id', pg_catalog.octet_length(p_room_id), 40);
  perform watchium_private.check_size('p_user_id', pg_catalog.octet_length(p_user_id), 400);
  perform watchium_private.check_size('p_reason', pg_catalog.octet_length(p_reason), 2000);
  if p_user_id is null or pg_catalog.char_length(p_user_id) not between 1 and 100 then
    raise exception 'p_user_id must be a user id of 1 to 100 characters' using errcode = '22023';
  end if;
  if p_shadow is null then
    raise exception 'p_shadow must be true or false' using errcode = '22023';
  end if;
  v_reason := watchium_private.check_text('p_reason', p_reason, 1, 500);
  v_ends_at := watchium_private.check_duration('p_duration_seconds', p_duration_seconds);
  perform watchium_private.enforce_rate_limit(v_user_id, 'mute_member');
  v_room := watchium_private.lock_room(p_room_id);
  perform watchium_private.hide_private_room(v_room, p_room_id, v_user_id);
  perform watchium_private.require_room_permission(v_room.room_id, v_user_id, 'mute');
  if p_user_id = v_user_id then
    raise exception 'p_user_id must be another member: you cannot mute yourself' using errcode = '22023';
  end if;
  perform watchium_private.require_outranks(v_room.room_id, v_user_id, p_user_id, 'mute');
  insert into watchium_private.room_mutes as m (room_id, user_id, muted_by, reason, shadow, ends_at)
  values (v_room.room_id, p_user_id, v_user_id, v_reason, p_shadow, v_ends_at)
  on conflict (room_id, user_id) do update
    set muted_by = excluded.muted_by, reason = excluded.reason, shadow = excluded.shadow,
        created_at = pg_catalog.now(), ends_at = excluded.ends_at;
  if not p_shadow then
    perform watchium_private.emit_room_event(v_room.room_id, 'member_muted',
      pg_catalog.jsonb_build_object('user_id', p_user_id, 'muted_by', v_user_id, 'ends_at', v_ends_at));
  end if;
  return pg_catalog.jsonb_build_object('room_id', v_room.room_id, 'user_id', p_user_id,
                                       'ends_at', v_ends_at, 'shadow', p_shadow);
end;
$$;
comment on function watchium_rpc.mute_member(text, text, integer, boolean, text) is
  'Body of public.mute_member (same arguments, result and errors; documented there). Security definer: writes room_mutes, which no client may write. Callers reach it through public.mute_member, a security invoker entry point; schema watchium_rpc is not exposed by the Data API.';
revoke all on function watchium_rpc.mute_member(text, text, integer, boolean, text) from public;
grant execute on function watchium_rpc.mute_member(text, text, integer, boolean, text) to authenticated, service_role;

create function public.mute_member(
  p_room_id text,
  p_user_id text,
  p_duration_seconds integer default null,
  p_shadow boolean default false,
  p_reason text default null
)
returns jsonb
language plpgsql
volatile
security invoker  -- the body is the security definer function
set search_path = pg_catalog, pg_temp
set lock_timeout = '2s'  -- bounded lock waits; tuned by the rpc_lock_timeout setting
as $$
begin
  return watchium_rpc.mute_member(p_room_id, p_user_id, p_duration_seconds, p_shadow, p_reason);
end;
$$;
comment on function public.mute_member(text, text, integer, boolean, text) is
  'Mutes member p_user_id (of a lower role; mute permission, default co_host) for p_duration_seconds or until unmuted (null). post_comment and broadcast_to_room refuse a muted member; a shadow mute accepts and delivers only to the author, and emits nothing (member_muted otherwise). Returns {room_id, user_id, ends_at, shadow}.';
revoke all on function public.mute_member(text, text, integer, boolean, text) from public, anon;
grant execute on function public.mute_member(text, text, integer, boolean, text) to authenticated, service_role;

-- -----------------------------------------------------------------------------
-- public.unmute_member(room_id, user_id): lifts a mute (mute permission).
-- member_unmuted when a mute in force that was not shadow was lifted.
-- -----------------------------------------------------------------------------
create function watchium_rpc.unmute_member(p_room_id text, p_user_id text)
returns jsonb
language plpgsql
volatile
security definer  -- deletes from room_mutes, which no client may write
set search_path = pg_catalog, pg_temp
as $$
declare
  v_user_id text := watchium_private.require_user_id();
  v_room    public.rooms;
  v_mute    watchium_private.room_mutes;
  v_active  boolean;
begin
  -- Sizes first (22001), before any other work.
  perform watchium_private.check_size('p_room_id', pg_catalog.octet_length(p_room_id), 40);
  perform watchium_private.check_size('p_user_id', pg_catalog.octet_length(p_user_id), 400);
  if p_user_id is null or pg_catalog.char_length(p_user_id) not between 1 and 100 then
    raise exception 'p_user_id must be a user id of 1 to 100 characters' using errcode = '22023';
  end if;
  perform watchium_private.enforce_rate_limit(v_user_id, 'mute_member');
  v_room := watchium_private.lock_room(p_room_id);
  perform watchium_private.hide_private_room(v_room, p_room_id, v_user_id);
  perform watchium_private.require_room_permission(v_room.room_id, v_user_id, 'mute');
  delete from watchium_private.room_mutes as m
  where m.room_id = v_room.room_id and m.user_id = p_user_id
  returning * into v_mute;
  v_active := v_mute.user_id is not null and (v_mute.ends_at is null or v_mute.ends_at > pg_catalog.now());
  if v_active and not v_mute.shadow then
    perform watchium_private.emit_room_event(v_room.room_id, 'member_unmuted',
      pg_catalog.jsonb_build_object('user_id', p_user_id, 'unmuted_by', v_user_id));
  end if;
  return pg_catalog.jsonb_build_object('room_id', v_room.room_id, 'user_id', p_user_id,
    'status', case when v_active then 'unmuted' else 'not_muted' end);
end;
$$;
comment on function watchium_rpc.unmute_member(text, text) is
  'Body of public.unmute_member (same arguments, result and errors; documented there). Security definer: deletes from room_mutes, which no client may write. Callers reach it through public.unmute_member, a security invoker entry point; schema watchium_rpc is not exposed by the Data API.';
revoke all on function watchium_rpc.unmute_member(text, text) from public;
grant execute on function watchium_rpc.unmute_member(text, text) to authenticated, service_role;

create function public.unmute_member(p_room_id text, p_user_id text)
returns jsonb
language plpgsql
volatile
security invoker  -- the body is the security definer function
set search_path = pg_catalog, pg_temp
set lock_timeout = '2s'  -- bounded lock waits; tuned by the rpc_lock_timeout setting
as $$
begin
  return watchium_rpc.unmute_member(p_room_id, p_user_id);
end;
$$;
comment on function public.unmute_member(text, text) is
  'Lifts the mute of p_user_id in the room (mute permission, default co_host). Returns {room_id, user_id, status: unmuted | not_muted}; event member_unmuted (not for a shadow mute).';
revoke all on function public.unmute_member(text, text) from public, anon;
grant execute on function public.unmute_member(text, text) to authenticated, service_role;

-- -----------------------------------------------------------------------------
-- public.hide_member_comments(room_id, user_id): hides the room comments of a
-- user who is no longer a member (kicked, banned or gone) from everyone but
-- the author. moderate_comments permission (default co_host). Comments
-- already hidden stay as they are. Event comments_hidden {user_id,
-- hidden_by, count}. Returns {room_id, user_id, hidden}.
-- -----------------------------------------------------------------------------
create function watchium_rpc.hide_member_comments(p_room_id text, p_user_id text)
returns jsonb
language plpgsql
volatile
security definer  -- updates comments, which no client may write
set search_path = pg_catalog, pg_temp
as $$
declare
  v_user_id text := watchium_private.require_user_id();
  v_room    public.rooms;
  v_count   integer;
begin
  -- Sizes first (22001), before any other work.
  perform watchium_private.check_size('p_room_id', pg_catalog.octet_length(p_room_id), 40);
  perform watchium_private.check_size('p_user_id', pg_catalog.octet_length(p_user_id), 400);
  if p_user_id is null or pg_catalog.char_length(p_user_id) not between 1 and 100 then
    raise exception 'p_user_id must be a user id of 1 to 100 characters' using errcode = '22023';
  end if;
  perform watchium_private.enforce_rate_limit(v_user_id, 'hide_member_comments');
  v_room := watchium_private.lock_room(p_room_id);
  perform watchium_private.hide_private_room(v_room, p_room_id, v_user_id);
  perform watchium_private.require_room_permission(v_room.room_id, v_user_id, 'moderate_comments');
  if exists (select from public.room_members as m
             where m.room_id = v_room.room_id and m.user_id = p_user_id) then
    raise exception 'p_user_id % is a member of room %: kick or ban them first', p_user_id, v_room.room_id
      using errcode = 'WD409',
            hint = 'Only the comments of kicked, banned or departed users are hidden.';
  end if;
  update public.comments as c
  set hidden_at = pg_catalog.now(), hidden_reason = 'moderated'
  where c.room_id = v_room.room_id and c.user_id = p_user_id
    and c.hidden_at is null and not c.is_system_message and not c.is_anchor;
  get diagnostics v_count = row_count;
  if v_count > 0 then
    perform watchium_private.emit_room_event(v_room.room_id, 'comments_hidden',
      pg_catalog.jsonb_build_object('user_id', p_user_id, 'hidden_by', v_user_id, 'count', v_count));
  end if;
  return pg_catalog.jsonb_build_object('room_id', v_room.room_id, 'user_id', p_user_id, 'hidden', v_count);
end;
$$;
comment on function watchium_rpc.hide_member_comments(text, text) is
  'Body of public.hide_member_comments (same arguments, result and errors; documented there). Security definer: updates comments, which no client may write. Callers reach it through public.hide_member_comments, a security invoker entry point; schema watchium_rpc is not exposed by the Data API.';
revoke all on function watchium_rpc.hide_member_comments(text, text) from public;
grant execute on function watchium_rpc.hide_member_comments(text, text) to authenticated, service_role;

create function public.hide_member_comments(p_room_id text, p_user_id text)
returns jsonb
language plpgsql
volatile
security invoker  -- the body is the security definer function
set search_path = pg_catalog, pg_temp
set lock_timeout = '2s'  -- bounded lock waits; tuned by the rpc_lock_timeout setting
as $$
begin
  return watchium_rpc.hide_member_comments(p_room_id, p_user_id);
end;
$$;
comment on function public.hide_member_comments(text, text) is
  'Hides the room comments of p_user_id, who is no longer a member (kicked, banned or gone), from everyone but their author. moderate_comments permission (default co_host); WD409 while p_user_id is a member. Event comments_hidden. Returns {room_id, user_id, hidden}.';
revoke all on function public.hide_member_comments(text, text) from public, anon;
grant execute on function public.hide_member_comments(text, text) to authenticated, service_role;

-- -----------------------------------------------------------------------------
-- public.get_room_moderation(room_id): the bans (ban permission) and mutes
-- (mute permission) in force, with reasons and who set them. 42501 for a
-- caller with neither permission. {room_id, bans, mutes} (a list the caller
-- may not read is null).
-- -----------------------------------------------------------------------------
create function watchium_rpc.get_room_moderation(p_room_id text)
returns jsonb
language plpgsql
stable
security definer  -- reads room_bans and room_mutes, which no client may read
set search_path = pg_catalog, pg_temp
as $$
declare
  v_user_id  text := watchium_private.require_user_id();
  v_room     public.rooms;
  v_bans     boolean;
  v_mutes    boolean;
begin
  -- Sizes first (22001), before any other work.
  perform watchium_private.check_size('p_room_id', pg_catalog.octet_length(p_room_id), 40);
  if p_room_id is null or p_room_id !~ '^[a-z0-9]{10}$' then
    raise exception 'p_room_id must be a room id: 10 characters of [a-z0-9]' using errcode = '22023';
  end if;
  select * into v_room from public.rooms as r where r.room_id = p_room_id;
  perform watchium_private.hide_private_room(v_room, p_room_id, v_user_id);
  v_bans := watchium_private.has_room_permission(p_room_id, v_user_id, 'ban');
  v_mutes := watchium_private.has_room_permission(p_room_id, v_user_id, 'mute');
  if not (v_bans or v_mutes) then
    perform watchium_private.require_room_permission(p_room_id, v_user_id, 'ban');
  end if;
  return pg_catalog.jsonb_build_object(
    'room_id', p_room_id,
    'bans', case when v_bans then (
      select coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
               'user_id', b.user_id, 'banned_by', b.banned_by, 'reason', b.reason,
               'created_at', b.created_at, 'ends_at', b.ends_at) order by b.created_at, b.user_id), '[]'::jsonb)
      from watchium_private.room_bans as b
      where b.room_id = p_room_id and (b.ends_at is null or b.ends_at > pg_catalog.now())) end,
    'mutes', case when v_mutes then (
      select coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
               'user_id', m.user_id, 'muted_by', m.muted_by, 'reason', m.reason, 'shadow', m.shadow,
               'created_at', m.created_at, 'ends_at', m.ends_at) order by m.created_at, m.user_id), '[]'::jsonb)
      from watchium_private.room_mutes as m
      where m.room_id = p_room_id and (m.ends_at is null or m.ends_at > pg_catalog.now())) end
  );
end;
$$;
comment on function watchium_rpc.get_room_moderation(text) is
  'Body of public.get_room_moderation (same arguments, result and errors; documented there). Security definer: reads room_bans and room_mutes, which no client may read. Callers reach it through public.get_room_moderation, a security invoker entry point; schema watchium_rpc is not exposed by the Data API.';
revoke all on function watchium_rpc.get_room_moderation(text) from public;
grant execute on function watchium_rpc.get_room_moderation(text) to authenticated, service_role;

create function public.get_room_moderation(p_room_id text)
returns jsonb
language plpgsql
stable
security invoker  -- the body is the security definer function
set search_path = pg_catalog, pg_temp
set lock_timeout = '2s'  -- bounded lock waits; tuned by the rpc_lock_timeout setting
as $$
begin
  return watchium_rpc.get_room_moderation(p_room_id);
end;
$$;
comment on function public.get_room_moderation(text) is
  'The bans (ban permission) and mutes (mute permission, shadow ones included) in force in the room: {room_id, bans: [{user_id, banned_by, reason, created_at, ends_at}] | null, mutes: [{..., shadow}] | null}. 42501 without either permission.';
revoke all on function public.get_room_moderation(text) from public, anon;
grant execute on function public.get_room_moderation(text) to authenticated, service_role;

-- -----------------------------------------------------------------------------
-- public.kick_member(room_id, user_id, ban_seconds default null): as before
-- (kick permission, a member of a lower role), and with p_ban_seconds a ban
-- of that length as well (needs the ban permission too). The two-argument
-- function is replaced: calls with two arguments keep working.
-- -----------------------------------------------------------------------------
-- Replaced by the three-argument function below (p_ban_seconds defaults to
-- null): every two-argument call, positional or named, resolves to it.
-- squawk-ignore ban-drop-function
drop function public.kick_member(text, text);
-- squawk-ignore ban-drop-function
drop function watchium_rpc.kick_member(text, text);

create function watchium_rpc.kick_member(p_room_id text, p_user_id text, p_ban_seconds integer default null)
returns jsonb
language plpgsql
volatile
security definer  -- deletes from room_members and writes room_bans, which no client may write
set search_path = pg_catalog, pg_temp
as $$
declare
  v_user_id text := watchium_private.require_user_id();
  v_room    public.rooms;
  v_ends_at timestamptz;
begin
  -- Sizes first (22001), before any other work.
  perform watchium_private.check_size('p_room_id', pg_catalog.octet_length(p_room_id), 40);
  perform watchium_private.check_size('p_user_id', pg_catalog.octet_length(p_user_id), 400);
  if p_user_id is null or pg_catalog.char_length(p_user_id) not between 1 and 100 then
    raise exception 'p_user_id must be a user id of 1 to 100 characters' using errcode = '22023';
  end if;
  v_ends_at := watchium_private.check_duration('p_ban_seconds', p_ban_seconds);
  perform watchium_private.enforce_rate_limit(v_user_id, 'kick_member');
  v_room := watchium_private.lock_room(p_room_id);
  perform watchium_private.hide_private_room(v_room, p_room_id, v_user_id);
  perform watchium_private.require_room_permission(v_room.room_id, v_user_id, 'kick');
  if p_user_id = v_user_id then
    raise exception 'p_user_id must be another member: you cannot kick yourself'
      using errcode = '22023', hint = 'Use leave_room.';
  end if;
  perform watchium_private.require_outranks(v_room.room_id, v_user_id, p_user_id, 'kick');
  if p_ban_seconds is not null then
    perform watchium_private.ban_user(v_room, v_user_id, p_user_id, v_ends_at, null);
  else
    perform watchium_private.remove_member(v_room, p_user_id, 'member_kicked',
      pg_catalog.jsonb_build_object('user_id', p_user_id, 'kicked_by', v_user_id));
  end if;
  return pg_catalog.jsonb_build_object('status', 'kicked', 'room_id', v_room.room_id, 'user_id', p_user_id,
                                       'banned_until', v_ends_at);
end;
$$;
comment on function watchium_rpc.kick_member(text, text, integer) is
  'Body of public.kick_member (same arguments, result and errors; documented there). Security definer: deletes from room_members and writes room_bans, which no client may write. Callers reach it through public.kick_member, a security invoker entry point; schema watchium_rpc is not exposed by the Data API.';
revoke all on function watchium_rpc.kick_member(text, text, integer) from public;
grant execute on function watchium_rpc.kick_member(text, text, integer) to authenticated, service_role;

create function public.kick_member(p_room_id text, p_user_id text, p_ban_seconds integer default null)
returns jsonb
language plpgsql
volatile
security invoker  -- the body is the security definer function
set search_path = pg_catalog, pg_temp
set lock_timeout = '2s'  -- bounded lock waits; tuned by the rpc_lock_timeout setting
as $$
begin
  return watchium_rpc.kick_member(p_room_id, p_user_id, p_ban_seconds);
end;
$$;
comment on function public.kick_member(text, text, integer) is
  'Removes member p_user_id from the room (event member_kicked). Needs the kick permission (default: co_host) and a member of a lower role than the caller''s. With p_ban_seconds, also bans them that long (ban permission; event member_banned). 42501 otherwise, P0002 when not a member. Returns {status, room_id, user_id, banned_until}.';
revoke all on function public.kick_member(text, text, integer) from public, anon;
grant execute on function public.kick_member(text, text, integer) to authenticated, service_role;

-- =============================================================================
-- Latest definitions, with the bans and mutes checked
-- =============================================================================

-- join_room (0005): a ban in force refuses the join, whatever the key.
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
  v_ban        watchium_private.room_bans;
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

  -- A ban in force refuses the join whatever the key: bans name users, so a
  -- rotated key changes nothing. Checked after the key, so that a private
  -- room is not revealed to someone without it.
  v_ban := watchium_private.active_ban(v_room.room_id, v_user_id);
  if v_ban.user_id is not null then
    raise exception 'you are banned from room % %', v_room.room_id,
      case when v_ban.ends_at is null then 'for good'
           else 'until ' || pg_catalog.to_char(v_ban.ends_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') end
      using errcode = '42501',
            hint = coalesce('Reason: ' || v_ban.reason, 'Ask a moderator of the room.');
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

-- post_comment (0005): the comment permission; a mute refuses, a shadow mute hides.
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
  v_shadow     boolean := false;
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
    perform watchium_private.require_room_permission(v_room.room_id, v_user_id, 'comment');
    -- 42501 for a mute; a shadow mute stores the comment hidden (its author
    -- alone sees it) and sends nothing.
    v_shadow := watchium_private.require_not_muted(v_room.room_id, v_user_id);
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
    (anime_id, room_id, episode_number, parent_id, user_id, username, avatar_url, message, video_timestamp,
     hidden_at, hidden_reason)
  values (v_anime_id, v_room.room_id, v_episode, p_parent_id, v_user_id, v_username, v_avatar_url,
          v_message, v_timestamp,
          case when v_shadow then pg_catalog.now() end, case when v_shadow then 'shadow_muted' end)
  returning * into v_comment;

  if v_room.room_id is not null then
    update public.rooms as r set last_activity = pg_catalog.now()
    where r.room_id = v_room.room_id and r.last_activity is distinct from pg_catalog.now();
    if not v_shadow then
      perform watchium_private.emit_room_event(v_room.room_id, 'comment_added', pg_catalog.to_jsonb(v_comment));
    end if;
  end if;
  -- A shadow-muted author gets its comment back as if it were visible.
  return pg_catalog.to_jsonb(v_comment) - 'hidden_at' - 'hidden_reason'
         || pg_catalog.jsonb_build_object('hidden_at', null, 'hidden_reason', null);
end;
$$;
comment on function watchium_rpc.post_comment(text, integer, text, text, text, text, bigint, numeric) is
  'Body of public.post_comment (same arguments, result and errors; documented there). Security definer: inserts into comments, which no client may write directly. Callers reach it through public.post_comment, a security invoker entry point; schema watchium_rpc is not exposed by the Data API.';

-- broadcast_to_room (0006): chat (or control_playback for play/pause/seek); mutes.
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
  v_shadow   boolean;
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
  if p_event_type in ('play', 'pause', 'seek') then
    if not v_is_host
       and not watchium_private.has_room_permission(p_room_id, v_user_id, 'control_playback') then
      raise exception '% events may only be sent by the host of room % (or members its control_playback permission allows)',
        p_event_type, p_room_id
        using errcode = '42501';
    end if;
  else
    perform watchium_private.require_room_permission(p_room_id, v_user_id, 'chat');
  end if;
  -- 42501 for a mute; a shadow mute is answered as a sent broadcast (an
  -- event id is drawn) and nothing is sent.
  v_shadow := watchium_private.require_not_muted(p_room_id, v_user_id);

  perform watchium_private.enforce_rate_limit(v_user_id, 'broadcast');
  if v_shadow then
    return pg_catalog.nextval('watchium_private.room_events_event_id_seq');
  end if;

  return watchium_private.emit_room_event(
    p_room_id,
    p_event_type,
    v_fields || pg_catalog.jsonb_build_object('user_id', v_user_id, 'username', v_username)
  );
end;
$$;
comment on function watchium_rpc.broadcast_to_room(text, text, jsonb) is
  'Body of public.broadcast_to_room (same arguments, result and errors; documented there). Security definer: reads membership and writes watchium_private.room_events for the caller. Callers reach it through public.broadcast_to_room, a security invoker entry point; schema watchium_rpc is not exposed by the Data API.';

-- get_comments (0005): hidden comments for their author only.
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
  v_viewer  text := watchium_private.current_user_id();
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
      and (c.hidden_at is null or c.user_id = v_viewer)
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

-- own_comment (0005): moderation by moderate_comments; no edits while muted.
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
    if p_action = 'edit' and v_comment.room_id is not null then
      -- Editing is speaking: a mute refuses it (a shadow mute too: an edit
      -- of a visible comment could not be delivered to its author alone).
      if watchium_private.require_not_muted(v_comment.room_id, p_user_id) then
        raise exception 'comment % cannot be edited now', p_comment_id
          using errcode = '42501';
      end if;
    end if;
    return v_comment;
  end if;
  if p_action = 'delete' and v_comment.room_id is not null and v_is_member
     and watchium_private.has_room_permission(v_comment.room_id, p_user_id, 'moderate_comments')
     and watchium_private.role_rank((select m.role from public.room_members as m
                                     where m.room_id = v_comment.room_id and m.user_id = p_user_id))
         > watchium_private.role_rank((select m.role from public.room_members as m
                                       where m.room_id = v_comment.room_id and m.user_id = v_comment.user_id)) then
    return v_comment;  -- moderators of the room (the host by default), over lower roles and non-members
  end if;
  raise exception 'comment % is not yours: only its author may change it%', p_comment_id,
    case when p_action = 'delete' then ' (or a moderator of its room delete it)' else '' end
    using errcode = '42501';
end;
$$;
comment on function watchium_private.own_comment(bigint, text, text) is
  'Locks and returns a comment p_user_id may p_action (edit: own comment, room comments only while a member; delete: own comment, or in a room where p_user_id has moderate_comments, a comment of a lower role or a non-member). P0002 when missing, in a private room p_user_id is not a member of, or deleted; 42501 otherwise (system messages and anchors always). Internal.';

-- maintain_rooms (0015): expired bans and mutes deleted.
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
  v_moderation   jsonb;
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

  -- Bans and mutes whose end passed (expiry itself is a comparison).
  v_moderation := watchium_private.expire_room_moderation();

  return v_moderation || pg_catalog.jsonb_build_object(
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
  'Maintenance: removes members without a heartbeat for member_stale_after (host handed to the longest-present co-host, else the longest-present member) and deletes rooms empty for longer than empty_room_grace (with their comments). Never waits for a lock: rooms, members and presence rows held by callers (lock order, SKIP LOCKED) are left for the next run and counted in rooms_skipped_busy / members_skipped_busy; staleness is re-checked under the presence row lock. Deletes bans and mutes whose end passed. Returns a jsonb summary.';
