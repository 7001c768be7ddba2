-- =============================================================================
-- 0018 bans and mutes with expiry
--
--   room_bans      a user kept out of a room: until ends_at, or for good (null);
--                  with a reason and who banned. join_room refuses a banned
--                  user whatever key it holds (a ban names the user, not the
--                  key: rotating the key changes nothing).
--   room_mutes     a member kept from speaking: until ends_at (or until
--                  unmuted, null). post_comment and broadcast_to_room refuse
--                  a muted member (42501), or, for a shadow mute, accept and
--                  deliver only to the author: the comment is stored hidden
--                  (comments.hidden_at, visible to its author alone) with no
--                  comment_added event, the broadcast is not sent.
--   expiry         a comparison (ends_at > now()) wherever a ban or mute is
--                  read, never a job; maintain_rooms deletes expired rows.
--   kick_member    may ban for p_ban_seconds at once (needs ban as well).
--   hide_member_comments  hides the room comments of a user who is no
--                  longer a member (kicked, banned, gone) from everyone else.
--   moderation     bans and mutes of members of a lower role only (the
--                  host is never banned or muted); delete_comment's
--                  moderation follows the moderate_comments permission.
-- Both tables live in watchium_private (RLS on, no policy): a banned user
-- learns its ban from join_room's refusal (until and reason), a muted member
-- its mute from post_comment's, and a shadow mute is told to nobody but the
-- moderators (get_room_moderation).
-- =============================================================================

insert into watchium_private.rate_limit_rules (action, max_requests, window_minutes, description) values
  ('ban_member',           30, 1, 'ban_member and unban_member calls per user per minute.'),
  ('mute_member',          30, 1, 'mute_member and unmute_member calls per user per minute.'),
  ('hide_member_comments', 10, 1, 'hide_member_comments calls per user per minute.');

-- -----------------------------------------------------------------------------
-- Tables
-- -----------------------------------------------------------------------------
create table watchium_private.room_bans (
  room_id    text        not null,
  user_id    text        not null,
  banned_by  text,
  reason     text,
  created_at timestamptz not null default now(),
  ends_at    timestamptz,
  constraint room_bans_pkey primary key (room_id, user_id),
  constraint room_bans_room_id_fkey foreign key (room_id)
    references public.rooms (room_id) on delete cascade,
  constraint room_bans_user_id_length_check check (char_length(user_id) between 1 and 100),
  constraint room_bans_banned_by_length_check check (char_length(banned_by) between 1 and 100),
  constraint room_bans_reason_length_check check (char_length(reason) between 1 and 500),
  constraint room_bans_ends_at_check check (ends_at > created_at)
);
comment on table watchium_private.room_bans is
  'Users banned from a room: until ends_at, or for good when null. join_room refuses them whatever the key; expired rows are ignored and deleted by maintain_rooms. Read by moderators through get_room_moderation.';
comment on column watchium_private.room_bans.room_id is 'The room.';
comment on column watchium_private.room_bans.user_id is 'The banned user (need not be a member).';
comment on column watchium_private.room_bans.banned_by is 'Who banned (null: a trusted caller without a user).';
comment on column watchium_private.room_bans.reason is 'Why, as the moderator wrote it; shown to the banned user by join_room.';
comment on column watchium_private.room_bans.created_at is 'When the ban was set (or last changed).';
comment on column watchium_private.room_bans.ends_at is 'When it ends; null: permanent. A ban with ends_at <= now() no longer counts.';
-- Expiry: maintain_rooms deletes the rows whose end passed.
create index room_bans_ends_at_idx on watchium_private.room_bans (ends_at) where ends_at is not null;
alter table watchium_private.room_bans enable row level security;
revoke all on table watchium_private.room_bans from public;

create table watchium_private.room_mutes (
  room_id    text        not null,
  user_id    text        not null,
  muted_by   text,
  reason     text,
  shadow     boolean     not null default false,
  created_at timestamptz not null default now(),
  ends_at    timestamptz,
  constraint room_mutes_pkey primary key (room_id, user_id),
  constraint room_mutes_room_id_fkey foreign key (room_id)
    references public.rooms (room_id) on delete cascade,
  constraint room_mutes_user_id_length_check check (char_length(user_id) between 1 and 100),
  constraint room_mutes_muted_by_length_check check (char_length(muted_by) between 1 and 100),
  constraint room_mutes_reason_length_check check (char_length(reason) between 1 and 500),
  constraint room_mutes_ends_at_check check (ends_at > created_at)
);
comment on table watchium_private.room_mutes is
  'Members muted in a room: until ends_at, or until unmuted when null. Survives leaving and joining again. post_comment and broadcast_to_room refuse them, or for a shadow mute accept and deliver only to the author. Read by moderators through get_room_moderation.';
comment on column watchium_private.room_mutes.room_id is 'The room.';
comment on column watchium_private.room_mutes.user_id is 'The muted user.';
comment on column watchium_private.room_mutes.muted_by is 'Who muted (null: a trusted caller without a user).';
comment on column watchium_private.room_mutes.reason is 'Why, as the moderator wrote it (shown to the member for a mute that is not shadow).';
comment on column watchium_private.room_mutes.shadow is 'Shadow mute: what the member says is accepted but delivered only to the member; nobody tells the member.';
comment on column watchium_private.room_mutes.created_at is 'When the mute was set (or last changed).';
comment on column watchium_private.room_mutes.ends_at is 'When it ends; null: until unmuted. A mute with ends_at <= now() no longer counts.';
-- Expiry: maintain_rooms deletes the rows whose end passed.
create index room_mutes_ends_at_idx on watchium_private.room_mutes (ends_at) where ends_at is not null;
alter table watchium_private.room_mutes enable row level security;
revoke all on table watchium_private.room_mutes from public;

-- -----------------------------------------------------------------------------
-- Helpers
-- -----------------------------------------------------------------------------

-- watchium_private.check_duration(argument, seconds): now() + seconds, null
-- for null; 22023 naming the argument outside 1 s .. 10 years.
create function watchium_private.check_duration(p_argument text, p_seconds integer)
returns timestamptz
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
begin
  if p_seconds is null then
    return null;
  end if;
  if p_seconds not between 1 and 315360000 then
    raise exception '% must be 1 to 315360000 seconds (10 years), or null (got %)', p_argument, p_seconds
      using errcode = '22023';
  end if;
  return pg_catalog.now() + pg_catalog.make_interval(secs => p_seconds);
end;
$$;
comment on function watchium_private.check_duration(text, integer) is
  'now() + p_seconds (null for null); 22023 naming p_argument outside 1 .. 315360000 seconds. Internal.';
revoke all on function watchium_private.check_duration(text, integer) from public;

-- watchium_private.active_ban(room_id, user_id): the ban in force, or null.
create function watchium_private.active_ban(p_room_id text, p_user_id text)
returns watchium_private.room_bans
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
declare
  v_ban watchium_private.room_bans;
begin
  select * into v_ban
  from watchium_private.room_bans as b
  where b.room_id = p_room_id and b.user_id = p_user_id
    and (b.ends_at is null or b.ends_at > pg_catalog.now());
  return v_ban;
end;
$$;
comment on function watchium_private.active_ban(text, text) is
  'The ban of p_user_id in room p_room_id in force now (ends_at null or in the future), else a null row. Internal.';
revoke all on function watchium_private.active_ban(text, text) from public;

-- watchium_private.active_mute(room_id, user_id): the mute in force, or null.
create function watchium_private.active_mute(p_room_id text, p_user_id text)
returns watchium_private.room_mutes
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
declare
  v_mute watchium_private.room_mutes;
begin
  select * into v_mute
  from watchium_private.room_mutes as m
  where m.room_id = p_room_id and m.user_id = p_user_id
    and (m.ends_at is null or m.ends_at > pg_catalog.now());
  return v_mute;
end;
$$;
comment on function watchium_private.active_mute(text, text) is
  'The mute of p_user_id in room p_room_id in force now (ends_at null or in the future), else a null row. Internal.';
revoke all on function watchium_private.active_mute(text, text) from public;

-- watchium_private.require_not_muted(room_id, user_id): 42501 for a mute in
-- force that is not shadow; true for a shadow mute; false when not muted.
create function watchium_private.require_not_muted(p_room_id text, p_user_id text)
returns boolean
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
declare
  v_mute watchium_private.room_mutes := watchium_private.active_mute(p_room_id, p_user_id);
begin
  if v_mute.user_id is null then
    return false;
  end if;
  if v_mute.shadow then
    return true;
  end if;
  raise exception 'you are muted in room % %', p_room_id,
    case when v_mute.ends_at is null then 'until a moderator unmutes you'
         else 'until ' || pg_catalog.to_char(v_mute.ends_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') end
    using errcode = '42501',
          hint = coalesce('Reason: ' || v_mute.reason, 'Ask a moderator of the room.');
end;
$$;
comment on function watchium_private.require_not_muted(text, text) is
  'Raises 42501 (until when, and the reason) when p_user_id is muted in the room and the mute is not shadow; returns true for a shadow mute in force, false when not muted. Internal.';
revoke all on function watchium_private.require_not_muted(text, text) from public;

-- watchium_private.expire_room_moderation(): deletes bans and mutes whose end
-- passed (rows a caller holds are left for the next run). Called by
-- maintain_rooms. Expiry itself never waits for this: every reader compares.
create function watchium_private.expire_room_moderation()
returns jsonb
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
declare
  v_bans  integer;
  v_mutes integer;
begin
  delete from watchium_private.room_bans as b
  where (b.room_id, b.user_id) in (
    select x.room_id, x.user_id from watchium_private.room_bans as x
    where x.ends_at <= pg_catalog.now()
    for update skip locked);
  get diagnostics v_bans = row_count;
  delete from watchium_private.room_mutes as m
  where (m.room_id, m.user_id) in (
    select x.room_id, x.user_id from watchium_private.room_mutes as x
    where x.ends_at <= pg_catalog.now()
    for update skip locked);
  get diagnostics v_mutes = row_count;
  return pg_catalog.jsonb_build_object('expired_bans_deleted', v_bans, 'expired_mutes_deleted', v_mutes);
end;
$$;
comment on function watchium_private.expire_room_moderation() is
  'Maintenance: deletes bans and mutes whose ends_at passed (SKIP LOCKED); returns {expired_bans_deleted, expired_mutes_deleted}. Internal.';
revoke all on function watchium_private.expire_room_moderation() from public;

-- watchium_private.check_reason(reason): check_text 1..500 (newlines not allowed).
-- (check_text itself, applied in each function.)

