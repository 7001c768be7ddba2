-- =============================================================================
-- 0002 core tables
--
-- rooms          one watch party and its playback state (published)
-- room_members   who is in a room; the host flag (published)
-- comments       threaded episode discussion, optionally tied to a room (published)
-- sync_states    history of sync measurements, partitioned by hour (published)
-- watchium_private.room_secrets   the access key of a private room (never published)
--
-- Times of the video are seconds with two decimals, 0 <= t <= 86400 (24 h).
-- Every numeric CHECK has an upper bound: 'NaN' sorts above every number in
-- PostgreSQL, so `x >= 0` alone would accept it; `x <= bound` rejects NaN and
-- Infinity as well.
-- =============================================================================

-- -----------------------------------------------------------------------------
-- tg__touch_updated_at: keeps updated_at current on every UPDATE.
-- Trigger names carry a numeric prefix that fixes their firing order
-- (triggers of one event fire in name order): _100_ runs before later ones.
-- -----------------------------------------------------------------------------
create function watchium_private.tg__touch_updated_at()
returns trigger
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
begin
  new.updated_at := pg_catalog.now();
  return new;
end;
$$;
comment on function watchium_private.tg__touch_updated_at() is
  'Trigger function: sets updated_at to the transaction time on UPDATE.';
revoke all on function watchium_private.tg__touch_updated_at() from public;

-- -----------------------------------------------------------------------------
-- rooms
-- -----------------------------------------------------------------------------
create table public.rooms (
  room_id               text          not null,
  title                 text          not null,
  anime_id              text          not null,
  anime_title           text          not null,
  episode_number        integer       not null,
  video_url             text          not null,
  source_id             text,
  host_user_id          text,
  host_username         text,
  is_public             boolean       not null default true,
  current_playback_time numeric(10,2) not null default 0,
  is_playing            boolean       not null default false,
  playback_speed        numeric(4,2)  not null default 1.00,
  playback_updated_at   timestamptz   not null default now(),
  last_activity         timestamptz   not null default now(),
  created_at            timestamptz   not null default now(),
  updated_at            timestamptz   not null default now(),
  replica_key           uuid          not null default gen_random_uuid(),
  constraint rooms_pkey primary key (room_id),
  constraint rooms_room_id_format_check check (room_id ~ '^[a-z0-9]{10}$'),
  constraint rooms_title_length_check check (char_length(title) between 1 and 200),
  constraint rooms_anime_id_length_check check (char_length(anime_id) between 1 and 100),
  constraint rooms_anime_title_length_check check (char_length(anime_title) between 1 and 300),
  constraint rooms_episode_number_check check (episode_number between 1 and 100000),
  constraint rooms_video_url_check check (char_length(video_url) between 1 and 2048 and video_url ~* '^https?://'),
  constraint rooms_source_id_length_check check (char_length(source_id) between 1 and 100),
  constraint rooms_host_user_id_length_check check (char_length(host_user_id) between 1 and 100),
  constraint rooms_host_consistent_check check ((host_user_id is null) = (host_username is null)),
  constraint rooms_current_playback_time_check check (current_playback_time between 0 and 86400),
  constraint rooms_playback_speed_check check (playback_speed between 0.25 and 4.00)
);

comment on table public.rooms is
  'One watch party and its playback state. The host is the single authority over playback. Readable through RLS (public rooms by everyone, private rooms by their members); written only by the room RPC functions. Published for realtime.';
comment on column public.rooms.room_id is '10 characters from [a-z0-9], drawn at random.';
comment on column public.rooms.host_user_id is 'The current host; equals the user_id of the one member flagged is_host. Null only while the room is empty.';
comment on column public.rooms.is_public is 'Public rooms are listed and joinable without a key; private rooms need the access key kept in watchium_private.room_secrets.';
comment on column public.rooms.current_playback_time is 'Host position in seconds at playback_updated_at. While playing, the expected position now is current_playback_time + (now - playback_updated_at) * playback_speed.';
comment on column public.rooms.playback_updated_at is 'The reference instant of current_playback_time: when the host last played, paused, seeked or changed speed.';
comment on column public.rooms.playback_speed is 'Playback rate, 0.25 to 4.00.';
comment on column public.rooms.last_activity is 'Last join, leave, control or comment in the room.';
comment on column public.rooms.replica_key is 'Random, never changed: the replica identity (rooms_replica_key_idx), so the old record of a published DELETE says nothing about the room.';

create trigger _100_touch_updated_at
  before update on public.rooms
  for each row execute function watchium_private.tg__touch_updated_at();

-- list_public_rooms: newest activity first, keyset on (last_activity, room_id).
create index rooms_public_last_activity_idx
  on public.rooms (last_activity desc, room_id desc) where is_public;
-- Rooms of one anime, for the same listing filtered by anime.
create index rooms_anime_id_last_activity_idx
  on public.rooms (anime_id, last_activity desc, room_id desc) where is_public;
-- The replica identity (0006): what a published DELETE carries.
create unique index rooms_replica_key_idx on public.rooms (replica_key);

-- -----------------------------------------------------------------------------
-- watchium_private.room_secrets: the 6-digit access key of a private room.
-- Kept out of public.rooms so that no select *, view or realtime change
-- payload can carry it.
-- -----------------------------------------------------------------------------
create table watchium_private.room_secrets (
  room_id    text        not null,
  access_key text        not null,
  created_at timestamptz not null default now(),
  wrong_attempts integer not null default 0,
  constraint room_secrets_pkey primary key (room_id),
  constraint room_secrets_room_id_fkey foreign key (room_id)
    references public.rooms (room_id) on delete cascade,
  constraint room_secrets_access_key_format_check check (access_key ~ '^[0-9]{6}$'),
  constraint room_secrets_wrong_attempts_check check (wrong_attempts >= 0)
);
comment on table watchium_private.room_secrets is
  'Access keys of private rooms (exactly 6 digits). Readable by nobody but the room''s host, through the room RPC functions.';
revoke all on table watchium_private.room_secrets from public;

-- -----------------------------------------------------------------------------
-- room_members
-- -----------------------------------------------------------------------------
create table public.room_members (
  room_id               text          not null,
  user_id               text          not null,
  username              text          not null,
  avatar_url            text,
  is_host               boolean       not null default false,
  is_synced             boolean       not null default true,
  current_playback_time numeric(10,2) not null default 0,
  last_heartbeat        timestamptz   not null default now(),
  joined_at             timestamptz   not null default clock_timestamp(),
  updated_at            timestamptz   not null default now(),
  replica_key           uuid          not null default gen_random_uuid(),
  constraint room_members_pkey primary key (room_id, user_id),
  constraint room_members_room_id_fkey foreign key (room_id)
    references public.rooms (room_id) on delete cascade,
  constraint room_members_user_id_length_check check (char_length(user_id) between 1 and 100),
  constraint room_members_username_length_check check (char_length(username) between 1 and 50),
  constraint room_members_avatar_url_check check (char_length(avatar_url) between 1 and 2048 and avatar_url ~* '^https?://'),
  constraint room_members_current_playback_time_check check (current_playback_time between 0 and 86400)
);

comment on table public.room_members is
  'Who is in a room. Exactly one member of a non-empty room is the host. Readable by the room''s members (and by anyone for public rooms); written only by the room and sync RPC functions. Published for realtime.';
comment on column public.room_members.is_host is 'At most one member per room is host (room_members_one_host_idx); rooms.host_user_id names the same member.';
comment on column public.room_members.replica_key is 'Random, never changed: the replica identity (room_members_replica_key_idx), so the old record of a published DELETE names neither the room nor the user.';
comment on column public.room_members.joined_at is 'When the member joined; the longest-present member (earliest joined_at, then user_id) becomes host when the host leaves.';

create trigger _100_touch_updated_at
  before update on public.room_members
  for each row execute function watchium_private.tg__touch_updated_at();

-- The database enforces the single host: a second is_host row in a room fails.
create unique index room_members_one_host_idx
  on public.room_members (room_id) where is_host;
-- Host succession: the longest-present member of a room.
create index room_members_room_id_joined_at_idx
  on public.room_members (room_id, joined_at, user_id);
-- "My rooms" and membership look-ups by user.
create index room_members_user_id_idx
  on public.room_members (user_id, room_id);
-- The replica identity (0006): what a published DELETE carries.
create unique index room_members_replica_key_idx on public.room_members (replica_key);

-- -----------------------------------------------------------------------------
-- watchium_private.member_presence: the hot presence row of each member.
--
-- Heartbeats (every 3 s per member) write here, not to public.room_members:
-- this table is not published, so a heartbeat makes no realtime change
-- event; its only index is the primary key, so a heartbeat that changes no
-- key can be a HOT update (fillfactor leaves room on the page); and it has
-- no foreign key to rooms, so a heartbeat never locks the room row. The
-- foreign key to room_members is checked only when the row is created (on
-- join) and removes the row when the member leaves.
-- -----------------------------------------------------------------------------
create table watchium_private.member_presence (
  room_id         text          not null,
  user_id         text          not null,
  last_heartbeat  timestamptz   not null default now(),
  reported_time   numeric(10,2) not null default 0,
  is_playing      boolean       not null default false,
  time_difference numeric(10,2),
  sync_level      text,
  previous_sync_level text,
  last_sample_at  timestamptz,
  constraint member_presence_pkey primary key (room_id, user_id),
  constraint member_presence_room_id_user_id_fkey foreign key (room_id, user_id)
    references public.room_members (room_id, user_id) on delete cascade,
  constraint member_presence_reported_time_check check (reported_time between 0 and 86400),
  constraint member_presence_time_difference_check check (time_difference between 0 and 86400),
  -- One constraint for both levels: a heartbeat checks every constraint of the
  -- row it writes, and each costs a little on the hottest statement.
  constraint member_presence_sync_level_check check (
    sync_level in ('perfect', 'good', 'minor_drift', 'out_of_sync')
    and previous_sync_level in ('perfect', 'good', 'minor_drift', 'out_of_sync')
  )
) with (fillfactor = 70);
comment on table watchium_private.member_presence is
  'Presence of each member, written by every heartbeat: last heartbeat, reported position, drift to the expected host position and sync level. Not published; no index but the primary key, so heartbeats are HOT updates.';
comment on column watchium_private.member_presence.reported_time is 'The member''s position in seconds at last_heartbeat.';
comment on column watchium_private.member_presence.time_difference is 'Absolute drift to the expected host position at the last heartbeat, in seconds.';
comment on column watchium_private.member_presence.previous_sync_level is 'Sync level of the heartbeat before the last one: the last heartbeat changed level when it differs from sync_level.';
comment on column watchium_private.member_presence.last_sample_at is 'When a heartbeat of this member was last sampled into public.sync_states.';
revoke all on table watchium_private.member_presence from public;

-- -----------------------------------------------------------------------------
-- tg_room_members__create_presence: every member has a presence row from the
-- moment it joins (its last heartbeat starts at the join).
-- -----------------------------------------------------------------------------
create function watchium_private.tg_room_members__create_presence()
returns trigger
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
begin
  insert into watchium_private.member_presence (room_id, user_id, last_heartbeat, reported_time)
  values (new.room_id, new.user_id, pg_catalog.now(), new.current_playback_time)
  on conflict (room_id, user_id) do nothing;
  return null;
end;
$$;
comment on function watchium_private.tg_room_members__create_presence() is
  'Trigger function: creates the member''s presence row when it joins a room.';
revoke all on function watchium_private.tg_room_members__create_presence() from public;

create trigger _100_create_presence
  after insert on public.room_members
  for each row execute function watchium_private.tg_room_members__create_presence();

-- -----------------------------------------------------------------------------
-- comments
-- -----------------------------------------------------------------------------
create table public.comments (
  id                bigint        generated always as identity,
  anime_id          text          not null,
  room_id           text,
  episode_number    integer       not null,
  parent_id         bigint,
  user_id           text,
  username          text          not null,
  avatar_url        text,
  message           text          not null,
  video_timestamp   numeric(10,2),
  is_anchor         boolean       not null default false,
  is_system_message boolean       not null default false,
  created_at        timestamptz   not null default now(),
  updated_at        timestamptz   not null default now(),
  deleted_at        timestamptz,
  replica_key       uuid          not null default gen_random_uuid(),
  constraint comments_pkey primary key (id),
  -- Cascade: a room's comments are deleted with it. Kept with a null room_id
  -- they would become episode comments that anyone reads, which for a
  -- private room's chat is a leak.
  constraint comments_room_id_fkey foreign key (room_id)
    references public.rooms (room_id) on delete cascade,
  -- Restrict: a comment with replies is never deleted, it becomes a tombstone
  -- (deleted_at set, message emptied) so other people's replies stay.
  constraint comments_parent_id_fkey foreign key (parent_id)
    references public.comments (id) on delete restrict,
  constraint comments_anime_id_length_check check (char_length(anime_id) between 1 and 100),
  constraint comments_episode_number_check check (episode_number between 1 and 100000),
  constraint comments_user_id_length_check check (char_length(user_id) between 1 and 100),
  constraint comments_username_length_check check (char_length(username) between 1 and 50),
  constraint comments_avatar_url_check check (char_length(avatar_url) between 1 and 2048 and avatar_url ~* '^https?://'),
  constraint comments_message_length_check check (
    case when deleted_at is null then char_length(message) between 1 and 2000 else message = '' end
  ),
  -- A tombstone keeps only its place in the thread: no avatar, no video time.
  constraint comments_tombstone_check check (
    deleted_at is null or (avatar_url is null and video_timestamp is null)
  ),
  constraint comments_video_timestamp_check check (video_timestamp between 0 and 86400),
  -- Anchors have no author; a system message names the member it is about
  -- (user_id; its text is fixed, never a username); every other comment has
  -- an author, except a tombstone whose author was forgotten (forget_user).
  constraint comments_author_check check (
    case when is_anchor then user_id is null
         when is_system_message then true
         else user_id is not null or deleted_at is not null end
  ),
  constraint comments_anchor_root_check check (not is_anchor or (parent_id is null and room_id is null))
);

comment on table public.comments is
  'Threaded discussion per anime episode, optionally tied to a room and a video time. Room comments are visible to whoever can see the room; episode comments without a room are public. Written only through the comment RPC functions. Published for realtime.';
comment on column public.comments.room_id is 'The room the comment was posted in (null: an episode comment). A room''s comments are deleted with the room.';
comment on column public.comments.replica_key is 'Random, never changed: the replica identity (comments_replica_key_idx), so the old record of a published DELETE says nothing about the comment.';
comment on column public.comments.is_anchor is 'The one "Discussion for Episode N" root of an episode thread (comments_one_anchor_idx).';
comment on column public.comments.is_system_message is 'Written by the database, in fixed text ("joined the room", "became the new host"; user_id is the member it is about, username is system); never by a client.';
comment on column public.comments.video_timestamp is 'Seconds into the episode the comment refers to, 0 to 86400.';

create trigger _100_touch_updated_at
  before update on public.comments
  for each row execute function watchium_private.tg__touch_updated_at();

-- One anchor per episode thread; get_or_create_anchor relies on it (on conflict).
create unique index comments_one_anchor_idx
  on public.comments (anime_id, episode_number) where is_anchor;
-- get_comments: an episode thread, newest first, keyset on (created_at, id).
create index comments_anime_id_episode_number_created_at_idx
  on public.comments (anime_id, episode_number, created_at desc, id desc);
-- get_comments for one room, and ON DELETE CASCADE when a room is deleted.
create index comments_room_id_created_at_idx
  on public.comments (room_id, created_at desc, id desc) where room_id is not null;
-- Replies of a comment: delete_comment checks for them, and the foreign key
-- check when a comment is deleted (on delete restrict).
create index comments_parent_id_idx
  on public.comments (parent_id) where parent_id is not null;
-- The replica identity (0006): what a published DELETE carries.
create unique index comments_replica_key_idx on public.comments (replica_key);

-- -----------------------------------------------------------------------------
-- sync_states: history of sync measurements.
--
-- Partitioned by hour on created_at so that expiring old history drops whole
-- partitions instead of deleting rows. The maintenance job creates partitions
-- ahead of time; the default partition only catches rows when it has not run.
-- No foreign key to rooms: history outlives its room until it expires, and an
-- insert must not lock the room row (FOR KEY SHARE from many writers at once
-- creates MultiXacts on the hottest row of the room).
-- No identity column and no primary key: the table is append-only history
-- (never updated, no row is addressed on its own, expiry drops partitions)
-- written on hot paths, so every per-row cost counts: an identity is a
-- sequence call and a primary key a second index insert per row, for nothing
-- a reader needs. Without a key Realtime cannot deliver it (it applies RLS by
-- primary key), so it is not published; see 0006.
-- -----------------------------------------------------------------------------
-- Two shapes of row, told apart by member_ids:
--   * one member's record (a join, a leave, a sampled heartbeat): user_id,
--     member_time, time_difference and is_synced; no arrays;
--   * a room snapshot (a host control, bulk_sync_update): every member's
--     position in member_ids / member_times, element by element, against the
--     row's host_time; the per-member columns are null.
-- A host control in a room of 1,000 members writes one row (and one index
-- entry) instead of 1,000: the per-row insert and index work was most of a
-- control's cost. public.sync_records shows both shapes as one record per
-- member.
create table public.sync_states (
  room_id         text          not null,
  user_id         text,
  host_time       numeric(10,2) not null,
  member_time     numeric(10,2),
  time_difference numeric(10,2),
  is_synced       boolean,
  sync_event_type text          not null,
  created_at      timestamptz   not null default now(),
  member_ids      text[],
  member_times    numeric(10,2)[],
  constraint sync_states_user_id_length_check check (char_length(user_id) between 1 and 100),
  constraint sync_states_host_time_check check (host_time between 0 and 86400),
  constraint sync_states_member_time_check check (member_time between 0 and 86400),
  constraint sync_states_time_difference_check check (time_difference between 0 and 86400),
  constraint sync_states_sync_event_type_check check (
    sync_event_type in ('heartbeat', 'seek', 'play_pause', 'speed', 'episode', 'join', 'leave')
  ),
  constraint sync_states_shape_check check (
    case
      when member_ids is null then
        user_id is not null and member_time is not null and time_difference is not null
        and is_synced is not null and member_times is null
      else
        user_id is null and member_time is null and time_difference is null and is_synced is null
        and array_ndims(member_ids) = 1 and array_ndims(member_times) = 1
        and cardinality(member_ids) = cardinality(member_times)
        and array_position(member_ids, null) is null
        and array_position(member_times, null) is null
        and 0 <= all (member_times) and 86400 >= all (member_times)
    end
  )
) partition by range (created_at);

comment on table public.sync_states is
  'Sync history: one row per member for joins, leaves and sampled heartbeats, one snapshot row (every member''s position in arrays) per host control. Read one record per member through public.sync_records. Partitioned by hour; expired by dropping partitions. Visible to the room''s members. Not published for realtime (no primary key; follow sync_status events).';
comment on column public.sync_states.user_id is 'The member of a one-member record; null in a snapshot row (see member_ids).';
comment on column public.sync_states.member_time is 'The member''s position in seconds (one-member record); null in a snapshot row.';
comment on column public.sync_states.time_difference is 'Absolute difference in seconds between the member and the expected host position (one-member record); null in a snapshot row.';
comment on column public.sync_states.is_synced is 'time_difference <= 2 (one-member record); null in a snapshot row.';
comment on column public.sync_states.sync_event_type is 'heartbeat, seek, play_pause, speed, episode, join or leave.';
comment on column public.sync_states.member_ids is 'Snapshot row (host control, bulk_sync_update): every member of the room, in no particular order; element i goes with member_times[i]. Null in a one-member record.';
comment on column public.sync_states.member_times is 'Snapshot row: each member''s estimated position in seconds when the row was written, against host_time. Null in a one-member record.';

-- Snapshot arrays are compressed with lz4 where the server has it (built with
-- lz4, as Debian's and Supabase's PostgreSQL are): a 1,000-member snapshot row
-- compresses in about a third of pglz's time (measured: 65 against 220 us), for
-- a little more space. Partitions inherit the setting (maintenance creates
-- them LIKE the parent, including compression).
do $compression$
begin
  alter table public.sync_states
    alter column member_ids set compression lz4,
    alter column member_times set compression lz4;
exception when feature_not_supported then
  raise notice 'this PostgreSQL has no lz4: public.sync_states snapshot arrays use the default compression';
end;
$compression$;

create table public.sync_states_default
  partition of public.sync_states default;
comment on table public.sync_states_default is
  'Catches sync history outside the hourly partitions (only when maintenance has not created them). Kept empty by maintenance.';

-- The only index, chosen by the readers: get_room_sync_metrics (one room's
-- last minute) and members reading their rooms' history through RLS (by
-- room_id, newest first). A BRIN index on created_at alone would be cheaper
-- to write but makes a one-room read scan every room's rows of the window.
create index sync_states_room_id_created_at_idx
  on public.sync_states (room_id, created_at desc);

-- -----------------------------------------------------------------------------
-- public.sync_records: the history as one record per member, whatever the
-- row's shape: a snapshot row is unnested into its members' records (drift
-- and is_synced computed against its host_time, as for any record).
-- security_invoker: the caller's privileges and sync_states' row level
-- security apply, so a member sees its rooms' records only.
-- -----------------------------------------------------------------------------
create view public.sync_records with (security_invoker = true) as
select s.room_id, s.user_id, s.host_time, s.member_time, s.time_difference, s.is_synced,
       s.sync_event_type, s.created_at
from public.sync_states as s
where s.member_ids is null
union all
select s.room_id, m.user_id, s.host_time, m.member_time,
       abs(s.host_time - m.member_time)::numeric(10,2),
       abs(s.host_time - m.member_time) <= 2,
       s.sync_event_type, s.created_at
from public.sync_states as s
cross join lateral unnest(s.member_ids, s.member_times) as m(user_id, member_time)
where s.member_ids is not null;
comment on view public.sync_records is
  'Sync history as one record per member: one-member rows of public.sync_states as they are, snapshot rows unnested. Same visibility as sync_states (security invoker: its row level security applies).';
comment on column public.sync_records.room_id is 'The room.';
comment on column public.sync_records.user_id is 'The member.';
comment on column public.sync_records.host_time is 'The expected host position in seconds the member was compared with.';
comment on column public.sync_records.member_time is 'The member''s position in seconds.';
comment on column public.sync_records.time_difference is 'Absolute difference in seconds between member_time and host_time.';
comment on column public.sync_records.is_synced is 'time_difference <= 2.';
comment on column public.sync_records.sync_event_type is 'heartbeat, seek, play_pause, speed, episode, join or leave.';
comment on column public.sync_records.created_at is 'When the record was written.';

-- -----------------------------------------------------------------------------
-- Column descriptions (shown by \d+ and in docs/schema.md)
-- -----------------------------------------------------------------------------
comment on column public.rooms.title is 'Title of the watch party, 1 to 200 characters.';
comment on column public.rooms.anime_id is 'The anime watched, as the app identifies it (1 to 100 characters).';
comment on column public.rooms.anime_title is 'Display title of the anime, 1 to 300 characters.';
comment on column public.rooms.episode_number is 'The episode playing, 1 to 100000.';
comment on column public.rooms.video_url is 'http(s) URL of the video the room plays.';
comment on column public.rooms.source_id is 'The app''s id of the video source, if any.';
comment on column public.rooms.host_username is 'Display name of the host; agrees with the host member''s username.';
comment on column public.rooms.is_playing is 'Whether the host is playing (the expected position advances) or paused.';
comment on column public.rooms.created_at is 'When the room was created.';
comment on column public.rooms.updated_at is 'When the room row last changed (set by trigger _100_touch_updated_at).';

comment on column watchium_private.room_secrets.room_id is 'The private room.';
comment on column watchium_private.room_secrets.access_key is 'Six digits, drawn uniformly from 000000-999999 with a cryptographic source.';
comment on column watchium_private.room_secrets.created_at is 'When the key was drawn (a new key replaces the row).';
comment on column watchium_private.room_secrets.wrong_attempts is 'Wrong keys tried against this key, by all users; reset to 0 when a new key is drawn. join_room refuses to compare once it reaches the key''s guess budget (access_key_guess_budget + access_key_guess_budget_per_hour per full hour since created_at).';

comment on column public.room_members.room_id is 'The room.';
comment on column public.room_members.user_id is 'The member: a JWT sub or the app''s own user id, 1 to 100 characters.';
comment on column public.room_members.username is 'Display name in this room, 1 to 50 characters.';
comment on column public.room_members.avatar_url is 'http(s) URL of the member''s avatar, if any.';
comment on column public.room_members.is_synced is 'Published sync snapshot: within 2 s of the expected host position. Refreshed when the member''s sync status changes, not on every heartbeat.';
comment on column public.room_members.current_playback_time is 'Published sync snapshot: the member''s position when its sync status last changed.';
comment on column public.room_members.last_heartbeat is 'Published sync snapshot: the heartbeat that last changed the member''s sync status (live presence is in watchium_private.member_presence).';
comment on column public.room_members.updated_at is 'When the member row last changed.';

comment on column watchium_private.member_presence.room_id is 'The room.';
comment on column watchium_private.member_presence.user_id is 'The member.';
comment on column watchium_private.member_presence.last_heartbeat is 'When the member last reported (or joined); stale after the member_stale_after setting.';
comment on column watchium_private.member_presence.is_playing is 'Whether the member''s player was playing at its last heartbeat.';
comment on column watchium_private.member_presence.sync_level is 'perfect (<= 0.5 s), good (<= 1 s), minor_drift (<= 2 s) or out_of_sync at the last heartbeat.';

comment on column public.comments.id is 'Comment id; also the keyset of get_comments with created_at.';
comment on column public.comments.anime_id is 'The anime of the episode thread.';
comment on column public.comments.episode_number is 'The episode of the thread, 1 to 100000.';
comment on column public.comments.parent_id is 'The comment this one replies to, in the same thread. A comment with replies is never deleted (on delete restrict): delete_comment leaves a tombstone.';
comment on column public.comments.user_id is 'The author; null for system messages and anchors.';
comment on column public.comments.username is 'Display name of the author (''system'' for anchors and system messages).';
comment on column public.comments.avatar_url is 'http(s) URL of the author''s avatar, if any.';
comment on column public.comments.message is 'The text: trimmed, 1 to 2000 characters, no control characters but line feeds; empty once deleted.';
comment on column public.comments.created_at is 'When the comment was posted.';
comment on column public.comments.updated_at is 'When the comment was last edited.';
comment on column public.comments.deleted_at is 'Set when the author deleted a comment that has replies: the row stays as a tombstone (empty message, no avatar or video time) so the replies keep their thread. Comments without replies are deleted outright.';

comment on column public.sync_states.room_id is 'The room measured (no foreign key: history outlives its room until it expires).';
comment on column public.sync_states.host_time is 'The expected host position at the measurement, in seconds.';
comment on column public.sync_states.created_at is 'When the measurement was taken; the partition key (hourly partitions).';
