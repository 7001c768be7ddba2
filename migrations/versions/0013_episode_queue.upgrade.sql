-- =============================================================================
-- 0013 episode queue
--
-- An ordered queue of episodes per room (public.room_queue), edited through
--   add_to_queue        add_to_queue permission (members by default), capped
--                       per user and per room
--   move_queue_item     edit_queue (host and co-hosts by default)
--   remove_queue_item   edit_queue; removing the current item advances past it
--   advance_queue       edit_queue; guarded by the current item: refused (WD409)
--                       unless p_from_item is the room's current item, so two
--                       clicks never skip two episodes
--   get_queue           anyone who may see the room
-- and advanced automatically once the room's expected position passes the
-- current item's duration plus queue_advance_grace (2 s): by the queue
-- functions, by maintenance (public.maintain(), job "queues") and, from a
-- later revision, by heartbeats. The check is one comparison with
-- rooms.queue_advance_after, kept on the room row that every one of them
-- reads anyway.
--
-- Positions: the current item has position 0, the items after it 1..n, dense
-- and unique per room (room_queue_position_key, checked at the end of each
-- statement). Every write locks the room row first (lock order of
-- docs/architecture.md), so concurrent edits of one room apply one after the
-- other and positions never collide or leave gaps. An advance deletes the
-- item at position 0 and moves every other item up by one: the item at 1
-- becomes current.
--
-- An advance (watchium_private.advance_room_queue) resets the playback
-- reference (position 0 at the moment of the advance, still playing if the
-- room was), puts the item's anime, episode and video URL on the room, opens
-- the episode's anchor comment and emits queue_advanced and the playback
-- event with action 'episode' (as update_room's episode change does). When
-- the queue runs out, the room keeps its episode and pauses where it is
-- (playback action 'pause').
-- =============================================================================

-- =============================================================================
-- Settings and rate limits
-- =============================================================================
insert into watchium_private.settings (key, value, description) values
  ('queue_advance_grace', '"2 seconds"',
   'A room advances to its next queued item once its expected position passes the current item''s duration plus this grace.'),
  ('max_queue_items_per_user', '10',
   'Items one user may have in one room''s queue at once (the current item included); past it add_to_queue raises WD409.'),
  ('max_queue_items_per_room', '100',
   'Items a room''s queue may hold at once (the current item included); past it add_to_queue raises WD409.');

insert into watchium_private.rate_limit_rules (action, max_requests, window_minutes, description) values
  ('queue_edit', 30, 1, 'add_to_queue, move_queue_item and remove_queue_item calls per user per minute.');

-- =============================================================================
-- The room's current queue item and when it is over
-- =============================================================================
-- Nullable columns without a default: no table rewrite. Their CHECKs are
-- validated by one scan in the same statement (every row has nulls there);
-- public.rooms holds one row per open room, so the scan is short.
alter table public.rooms
  add column queue_item_id bigint,
  add column queue_advance_after numeric(10,2),
  -- squawk-ignore constraint-missing-not-valid
  add constraint rooms_queue_advance_after_check check (queue_advance_after between 0 and 86400),
  -- squawk-ignore constraint-missing-not-valid
  add constraint rooms_queue_consistent_check
    check ((queue_item_id is null) = (queue_advance_after is null));
comment on column public.rooms.queue_item_id is
  'The queue item playing (public.room_queue, position 0), or null when the room plays an episode that did not come from its queue. advance_queue''s guard.';
comment on column public.rooms.queue_advance_after is
  'The current queue item''s duration plus queue_advance_grace: once the expected position passes it, the next call on the room (or maintenance) advances the queue. Null without a current item.';

-- Maintenance finds the rooms playing a queue item through this index. A
-- plain build: public.rooms holds one row per open room (empty rooms are
-- deleted an hour after they empty) and the new column is null everywhere, so
-- the build is one short scan; writers wait for it at most the migration's
-- lock_timeout before the revision gives up.
-- squawk-ignore require-concurrent-index-creation
create index rooms_queue_advance_idx on public.rooms (room_id) where queue_advance_after is not null;

-- =============================================================================
-- public.room_queue
-- =============================================================================
create table public.room_queue (
  item_id          bigint        generated always as identity,
  room_id          text          not null,
  -- bounded by room_queue_position_check (0..1000)
  -- squawk-ignore prefer-bigint-over-int
  position         integer       not null,
  anime_id         text          not null,
  anime_title      text          not null,
  -- bounded by room_queue_episode_number_check (1..100000)
  -- squawk-ignore prefer-bigint-over-int
  episode_number   integer       not null,
  video_url        text          not null,
  duration         numeric(10,2) not null,
  added_by         text,
  added_by_username text         not null,
  added_at         timestamptz   not null default now(),
  constraint room_queue_pkey primary key (item_id),
  constraint room_queue_room_id_fkey foreign key (room_id)
    references public.rooms (room_id) on delete cascade,
  -- Checked at the end of each statement: moving an item renumbers its
  -- neighbours in one UPDATE.
  constraint room_queue_position_key unique (room_id, position) deferrable initially immediate,
  constraint room_queue_position_check check (position between 0 and 1000),
  constraint room_queue_anime_id_length_check check (char_length(anime_id) between 1 and 100),
  constraint room_queue_anime_title_length_check check (char_length(anime_title) between 1 and 300),
  constraint room_queue_episode_number_check check (episode_number between 1 and 100000),
  constraint room_queue_video_url_check check (char_length(video_url) between 1 and 2048 and video_url ~* '^https?://'),
  constraint room_queue_duration_check check (duration between 1 and 86400),
  constraint room_queue_added_by_length_check check (char_length(added_by) between 1 and 100),
  constraint room_queue_added_by_username_length_check check (char_length(added_by_username) between 1 and 50)
);
comment on table public.room_queue is
  'The episode queue of a room: position 0 is the item playing (rooms.queue_item_id), 1..n the items after it, dense. Readable through RLS like room_members (public rooms by everyone, private rooms by their members); written only by the queue RPC functions. Not published: its changes reach clients as room events (queue_item_added, queue_item_moved, queue_item_removed, queue_advanced).';
comment on column public.room_queue.item_id is 'Identity; advance_queue''s p_from_item names the item playing by it.';
comment on column public.room_queue.room_id is 'The room whose queue this is; the item goes with the room.';
comment on column public.room_queue.anime_id is 'The anime, as the app identifies it (1 to 100 characters); the room''s anime_id while the item plays.';
comment on column public.room_queue.anime_title is 'Display title of the anime, 1 to 300 characters.';
comment on column public.room_queue.episode_number is 'The episode, 1 to 100000.';
comment on column public.room_queue.video_url is 'http(s) URL of the video, at most 2048 characters.';
comment on column public.room_queue.added_at is 'When the item was queued.';
comment on column public.room_queue.position is '0 for the item playing, 1..n for the items after it; unique and dense per room.';
comment on column public.room_queue.duration is 'Length of the video in seconds (1 to 86400): the room advances once its expected position passes it plus queue_advance_grace.';
comment on column public.room_queue.added_by is 'The user who queued the item (null once that account is forgotten).';
comment on column public.room_queue.added_by_username is 'Display name of that user when the item was queued.';

-- The caps count a user's items in a room.
create index room_queue_room_id_added_by_idx on public.room_queue (room_id, added_by);

revoke all on table public.room_queue from anon, authenticated, service_role;
revoke all on sequence public.room_queue_item_id_seq from anon, authenticated, service_role;
grant select on table public.room_queue to anon, authenticated, service_role;

alter table public.room_queue enable row level security;

create policy room_queue_select_anon on public.room_queue
  for select to anon
  using (exists (
    select from public.rooms as r where r.room_id = room_queue.room_id and r.is_public
  ));
comment on policy room_queue_select_anon on public.room_queue is
  'Anonymous callers see the queues of public rooms.';

create policy room_queue_select_authenticated on public.room_queue
  for select to authenticated
  using (
    room_id in (select watchium_private.my_room_ids())
    or exists (
      select from public.rooms as r where r.room_id = room_queue.room_id and r.is_public
    )
  );
comment on policy room_queue_select_authenticated on public.room_queue is
  'Signed-in callers see the queues of their rooms and of public rooms; a private room''s queue only its members.';

-- -----------------------------------------------------------------------------
-- tg_rooms__leave_queue_item: a room that plays a queue item and gets another
-- episode or video by any other way (update_room, a DBA) no longer plays the
-- item: the item is deleted, queue_item_id and queue_advance_after are
-- cleared (so no automatic advance follows from the old item's duration) and
-- queue_item_removed is emitted. The items after it stay where they are; the
-- next advance_queue(room, null) plays the first of them. The WHEN clause
-- keeps every other update of the room (host controls) from calling it.
-- -----------------------------------------------------------------------------
create function watchium_private.tg_rooms__leave_queue_item()
returns trigger
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
begin
  delete from public.room_queue as q where q.room_id = old.room_id and q.position = 0;
  perform watchium_private.emit_room_event(old.room_id, 'queue_item_removed',
    pg_catalog.jsonb_build_object('item_id', old.queue_item_id, 'position', 0,
                                  'removed_by', watchium_private.current_user_id()));
  new.queue_item_id := null;
  new.queue_advance_after := null;
  return new;
end;
$$;
comment on function watchium_private.tg_rooms__leave_queue_item() is
  'Trigger function: a room playing a queue item whose episode or video changes other than by an advance leaves the item (deleted, queue columns cleared, queue_item_removed emitted).';
revoke all on function watchium_private.tg_rooms__leave_queue_item() from public;

create trigger _150_leave_queue_item
  before update of episode_number, video_url, anime_id on public.rooms
  for each row
  when (old.queue_item_id is not null
        and new.queue_item_id is not distinct from old.queue_item_id
        and (new.episode_number is distinct from old.episode_number
             or new.video_url is distinct from old.video_url
             or new.anime_id is distinct from old.anime_id))
  execute function watchium_private.tg_rooms__leave_queue_item();

-- =============================================================================
-- Helpers (internal)
-- =============================================================================

-- -----------------------------------------------------------------------------
-- watchium_private.require_queue_permission(room, user_id, action): 42501
-- unless the room's permission map (revision 0009) lets the user do the
-- action:
--   add      permission add_to_queue (default: member)
--   edit     permission edit_queue (default: co_host): move and remove items
--   advance  permission edit_queue
-- The one place the queue asks who may do what.
-- -----------------------------------------------------------------------------
create function watchium_private.require_queue_permission(
  p_room public.rooms,
  p_user_id text,
  p_action text
)
returns void
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
begin
  perform watchium_private.require_room_permission(
    p_room.room_id,
    p_user_id,
    case p_action
      when 'add' then 'add_to_queue'
      when 'edit' then 'edit_queue'
      when 'advance' then 'edit_queue'
    end
  );
end;
$$;
comment on function watchium_private.require_queue_permission(public.rooms, text, text) is
  'Raises 42501 unless p_user_id may do p_action in the room: add (permission add_to_queue), edit and advance (permission edit_queue), by the room''s permission map. Internal.';
revoke all on function watchium_private.require_queue_permission(public.rooms, text, text) from public;

-- -----------------------------------------------------------------------------
-- watchium_private.queue_item_json(item): an item as clients see it.
-- -----------------------------------------------------------------------------
create function watchium_private.queue_item_json(p_item public.room_queue)
returns jsonb
language plpgsql
immutable
set search_path = pg_catalog, pg_temp
as $$
begin
  if p_item.item_id is null then
    return null;
  end if;
  return pg_catalog.jsonb_build_object(
    'item_id', p_item.item_id,
    'position', p_item.position,
    'anime_id', p_item.anime_id,
    'anime_title', p_item.anime_title,
    'episode_number', p_item.episode_number,
    'video_url', p_item.video_url,
    'duration', p_item.duration,
    'added_by', p_item.added_by,
    'added_by_username', p_item.added_by_username,
    'added_at', p_item.added_at
  );
end;
$$;
comment on function watchium_private.queue_item_json(public.room_queue) is
  'A queue item as the RPCs and events return it (null for a null item). Internal.';
revoke all on function watchium_private.queue_item_json(public.room_queue) from public;

-- -----------------------------------------------------------------------------
-- watchium_private.queue_json(room_id): the room's queue, in position order.
-- -----------------------------------------------------------------------------
create function watchium_private.queue_json(p_room public.rooms)
returns jsonb
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
begin
  return pg_catalog.jsonb_build_object(
    'room_id', p_room.room_id,
    'current_item_id', p_room.queue_item_id,
    'advance_after', p_room.queue_advance_after,
    'items', coalesce((
      select pg_catalog.jsonb_agg(watchium_private.queue_item_json(q) order by q.position)
      from public.room_queue as q
      where q.room_id = p_room.room_id
    ), '[]'::jsonb)
  );
end;
$$;
comment on function watchium_private.queue_json(public.rooms) is
  'The room''s queue: {room_id, current_item_id, advance_after, items in position order}. Internal.';
revoke all on function watchium_private.queue_json(public.rooms) from public;

-- -----------------------------------------------------------------------------
-- watchium_private.advance_room_queue(room, user_id, reason): the advance.
-- The caller holds the room row lock and passes the row it read under it.
--   1. the item at position 0 (the current one, if any) is deleted and every
--      other item moves up one place: the item at 1 becomes current;
--   2. with a next item: the room plays it from 0 (a new playback reference
--      at the moment of the advance; still playing if the room was), with its
--      anime, episode and video URL (source_id cleared: it named the old
--      video), and the episode's anchor comment exists;
--      without one (the queue ran out): the room keeps its episode, paused at
--      its expected position;
--   3. events queue_advanced and playback (action 'episode', or 'pause' when
--      the queue ran out).
-- p_reason: 'advance' (advance_queue), 'auto' (the duration passed),
-- 'removed' (the current item was removed). p_user_id: who did it, null for
-- an automatic advance. Returns {from_item_id, item (null when the queue ran
-- out), reason, playback}.
-- -----------------------------------------------------------------------------
create function watchium_private.advance_room_queue(
  p_room public.rooms,
  p_user_id text,
  p_reason text
)
returns jsonb
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
declare
  v_room     public.rooms := p_room;
  v_next     public.room_queue;
  v_at       timestamptz := pg_catalog.clock_timestamp();
  v_grace    numeric := extract(epoch from coalesce(
                 watchium_private.setting_interval('queue_advance_grace'), interval '2 seconds'));
  v_playback jsonb;
  v_result   jsonb;
begin
  delete from public.room_queue as q where q.room_id = v_room.room_id and q.position = 0;
  update public.room_queue as q set position = q.position - 1 where q.room_id = v_room.room_id;
  select * into v_next from public.room_queue as q
  where q.room_id = v_room.room_id and q.position = 0;

  if v_next.item_id is not null then
    update public.rooms as r
    set anime_id = v_next.anime_id,
        anime_title = v_next.anime_title,
        episode_number = v_next.episode_number,
        video_url = v_next.video_url,
        source_id = null,
        current_playback_time = 0,
        playback_updated_at = v_at,
        queue_item_id = v_next.item_id,
        -- The expected position stops at 86400: an item that long ends when
        -- the position reaches the cap.
        queue_advance_after = least(v_next.duration + v_grace, 86399.99),
        last_activity = pg_catalog.now()
    where r.room_id = v_room.room_id
    returning * into v_room;
    perform watchium_private.ensure_anchor(v_room.anime_id, v_room.episode_number);
  else
    update public.rooms as r
    set current_playback_time = watchium_private.room_expected_position(r, v_at),
        is_playing = false,
        playback_updated_at = v_at,
        queue_item_id = null,
        queue_advance_after = null,
        last_activity = pg_catalog.now()
    where r.room_id = v_room.room_id
    returning * into v_room;
  end if;

  v_result := pg_catalog.jsonb_build_object(
    'from_item_id', p_room.queue_item_id,
    'item', watchium_private.queue_item_json(v_next),
    'reason', p_reason,
    'advanced_by', p_user_id
  );
  perform watchium_private.emit_room_event(v_room.room_id, 'queue_advanced', v_result);
  v_playback := pg_catalog.jsonb_build_object(
    'room_id', v_room.room_id,
    'action', case when v_next.item_id is not null then 'episode' else 'pause' end,
    'is_playing', v_room.is_playing,
    'current_time', v_room.current_playback_time,
    'playback_speed', v_room.playback_speed,
    'playback_updated_at', v_room.playback_updated_at,
    'episode_number', v_room.episode_number,
    'host_user_id', v_room.host_user_id
  );
  perform watchium_private.emit_room_event(v_room.room_id, 'playback', v_playback);
  return v_result || pg_catalog.jsonb_build_object('playback', v_playback);
end;
$$;
comment on function watchium_private.advance_room_queue(public.rooms, text, text) is
  'Advances a locked room''s queue: deletes the current item, moves the others up, plays the next from 0 (new playback reference, its anime, episode and URL, its anchor) or pauses when the queue ran out; emits queue_advanced and playback. Internal.';
revoke all on function watchium_private.advance_room_queue(public.rooms, text, text) from public;

-- -----------------------------------------------------------------------------
-- watchium_private.queue_advance_due(room): whether the room's expected
-- position has passed its current item's duration plus the grace. One
-- comparison; the hot paths inline it.
-- -----------------------------------------------------------------------------
create function watchium_private.queue_advance_due(p_room public.rooms)
returns boolean
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
begin
  return p_room.queue_advance_after is not null
     and watchium_private.room_expected_position(p_room) > p_room.queue_advance_after;
end;
$$;
comment on function watchium_private.queue_advance_due(public.rooms) is
  'True when the room plays a queue item and its expected position has passed queue_advance_after (duration + grace). Internal.';
revoke all on function watchium_private.queue_advance_due(public.rooms) from public;

-- -----------------------------------------------------------------------------
-- watchium_private.auto_advance_queue(room_id): applies a due automatic
-- advance without waiting: the room row is taken with SKIP LOCKED (a caller
-- holding it will apply the advance itself, or the next call will), and the
-- advance is checked again under the lock. Returns the advance, or null.
-- For callers that hold no room lock (heartbeats); callers holding it check
-- queue_advance_due and call advance_room_queue themselves.
-- -----------------------------------------------------------------------------
create function watchium_private.auto_advance_queue(p_room_id text)
returns jsonb
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
declare
  v_room public.rooms;
begin
  select * into v_room from public.rooms as r where r.room_id = p_room_id
  for update skip locked;
  if v_room.room_id is null or not watchium_private.queue_advance_due(v_room) then
    return null;
  end if;
  return watchium_private.advance_room_queue(v_room, null, 'auto');
end;
$$;
comment on function watchium_private.auto_advance_queue(text) is
  'Advances the room''s queue when its current item is over (duration + grace), taking the room row with SKIP LOCKED; returns the advance or null. Internal.';
revoke all on function watchium_private.auto_advance_queue(text) from public;

-- -----------------------------------------------------------------------------
-- watchium_private.maintain_queues(): the automatic advances nobody's call
-- applied (a room whose members all stopped sending heartbeats). Rooms are
-- taken in room_id order with SKIP LOCKED: a busy room is left to its callers
-- or the next run. Returns {queues_advanced, queues_skipped_busy}.
-- -----------------------------------------------------------------------------
create function watchium_private.maintain_queues()
returns jsonb
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
declare
  v_room     public.rooms;
  v_advanced integer := 0;
  v_due      integer;
begin
  select pg_catalog.count(*) into v_due
  from public.rooms as r
  where r.queue_advance_after is not null and watchium_private.queue_advance_due(r);
  for v_room in
    select * from public.rooms as r
    where r.queue_advance_after is not null and watchium_private.queue_advance_due(r)
    order by r.room_id
    for update skip locked
  loop
    perform watchium_private.advance_room_queue(v_room, null, 'auto');
    v_advanced := v_advanced + 1;
  end loop;
  return pg_catalog.jsonb_build_object(
    'queues_advanced', v_advanced,
    'queues_skipped_busy', greatest(v_due - v_advanced, 0)
  );
end;
$$;
comment on function watchium_private.maintain_queues() is
  'Applies the automatic queue advances that are due (SKIP LOCKED, room_id order); returns {queues_advanced, queues_skipped_busy}. Internal; run by public.maintain().';
revoke all on function watchium_private.maintain_queues() from public;

-- -----------------------------------------------------------------------------
-- watchium_private.lock_queue_room(room_id, user_id): the room row, locked
-- (lock_room), visible to the caller (hide_private_room), with any due
-- automatic advance applied first. The start of every queue write.
-- -----------------------------------------------------------------------------
create function watchium_private.lock_queue_room(p_room_id text, p_user_id text)
returns public.rooms
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
declare
  v_room public.rooms;
begin
  if p_room_id is null or p_room_id !~ '^[a-z0-9]{10}$' then
    raise exception 'p_room_id must be a room id: 10 characters of [a-z0-9]'
      using errcode = '22023';
  end if;
  select * into v_room from public.rooms as r where r.room_id = p_room_id for update;
  perform watchium_private.hide_private_room(v_room, p_room_id, p_user_id);
  if watchium_private.queue_advance_due(v_room) then
    perform watchium_private.advance_room_queue(v_room, null, 'auto');
    select * into v_room from public.rooms as r where r.room_id = p_room_id;
  end if;
  return v_room;
end;
$$;
comment on function watchium_private.lock_queue_room(text, text) is
  'Locks the room row (22023 malformed id, P0002 missing or private to a non-member) and applies a due automatic advance first; returns the room. Internal.';
revoke all on function watchium_private.lock_queue_room(text, text) from public;

-- -----------------------------------------------------------------------------
-- watchium_private.require_queue_item(room_id, item_id, argument): the item
-- of this room, or P0002 naming the argument.
-- -----------------------------------------------------------------------------
create function watchium_private.require_queue_item(p_room_id text, p_item_id bigint, p_argument text)
returns public.room_queue
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
declare
  v_item public.room_queue;
begin
  select * into v_item from public.room_queue as q
  where q.item_id = p_item_id and q.room_id = p_room_id;
  if v_item.item_id is null then
    raise exception '%: item % is not in the queue of room %', p_argument,
      coalesce(p_item_id::text, 'null'), p_room_id
      using errcode = 'P0002', hint = 'Read the queue again (get_queue): it may have advanced.';
  end if;
  return v_item;
end;
$$;
comment on function watchium_private.require_queue_item(text, bigint, text) is
  'The queue item p_item_id of the room, or P0002 naming p_argument. Internal.';
revoke all on function watchium_private.require_queue_item(text, bigint, text) from public;

-- =============================================================================
-- RPCs
-- =============================================================================

-- -----------------------------------------------------------------------------
-- public.add_to_queue(room_id, anime_id, anime_title, episode_number,
-- video_url, duration): a member appends an episode to the room's queue.
-- Caps: max_queue_items_per_user per user and room, max_queue_items_per_room
-- per room (WD409), counted under the room row lock: exact under concurrency.
-- Emits queue_item_added. Security definer: writes room_queue.
-- -----------------------------------------------------------------------------
create function watchium_rpc.add_to_queue(
  p_room_id text,
  p_anime_id text,
  p_anime_title text,
  p_episode_number integer,
  p_video_url text,
  p_duration numeric
)
returns jsonb
language plpgsql
volatile
security definer  -- writes public.room_queue, which no client may write
set search_path = pg_catalog, pg_temp
as $$
declare
  v_user_id     text;
  v_anime_id    text;
  v_anime_title text;
  v_video_url   text;
  v_room        public.rooms;
  v_username    text;
  v_count       integer;
  v_mine        integer;
  v_user_cap    integer := watchium_private.setting_integer('max_queue_items_per_user');
  v_room_cap    integer := watchium_private.setting_integer('max_queue_items_per_room');
  v_item        public.room_queue;
begin
  -- Sizes first (22001), before any other work.
  perform watchium_private.check_size('p_room_id', pg_catalog.octet_length(p_room_id), 40);
  perform watchium_private.check_size('p_anime_id', pg_catalog.octet_length(p_anime_id), 400);
  perform watchium_private.check_size('p_anime_title', pg_catalog.octet_length(p_anime_title), 1200);
  perform watchium_private.check_size('p_video_url', pg_catalog.octet_length(p_video_url), 8192);
  v_user_id := watchium_private.require_user_id();
  v_anime_id := watchium_private.check_text('p_anime_id', p_anime_id, 1, 100);
  v_anime_title := watchium_private.check_text('p_anime_title', p_anime_title, 1, 300);
  v_video_url := watchium_private.check_url('p_video_url', p_video_url);
  if v_anime_id is null or v_anime_title is null or v_video_url is null then
    raise exception '% is required',
      case when v_anime_id is null then 'p_anime_id'
           when v_anime_title is null then 'p_anime_title' else 'p_video_url' end
      using errcode = '22023';
  end if;
  perform watchium_private.check_episode('p_episode_number', p_episode_number);
  if p_duration is null or p_duration = 'NaN'::numeric or p_duration not between 1 and 86400 then
    raise exception 'p_duration must be the video''s length in seconds, 1 to 86400 (got %)',
      coalesce(p_duration::text, 'null')
      using errcode = '22023';
  end if;
  if p_duration <> pg_catalog.round(p_duration, 2) then
    raise exception 'p_duration must have at most 2 decimals (got %)', p_duration
      using errcode = '22023';
  end if;

  perform watchium_private.enforce_rate_limit(v_user_id, 'queue_edit');
  v_room := watchium_private.lock_queue_room(p_room_id, v_user_id);
  perform watchium_private.require_queue_permission(v_room, v_user_id, 'add');

  select pg_catalog.count(*), pg_catalog.count(*) filter (where q.added_by = v_user_id)
  into v_count, v_mine
  from public.room_queue as q
  where q.room_id = v_room.room_id;
  if v_mine >= v_user_cap then
    raise exception 'you already have % items in the queue of room %, the most one user may have (max_queue_items_per_user = %)',
      v_mine, v_room.room_id, v_user_cap
      using errcode = 'WD409', hint = 'Wait until one of yours has played, or ask the host to remove one.';
  end if;
  if v_count >= v_room_cap then
    raise exception 'the queue of room % is full (max_queue_items_per_room = %)', v_room.room_id, v_room_cap
      using errcode = 'WD409', hint = 'Wait until an item has played, or ask the host to remove one.';
  end if;

  select m.username into v_username from public.room_members as m
  where m.room_id = v_room.room_id and m.user_id = v_user_id;

  -- Appended after the last item (position 1 when the queue is empty: the
  -- room's own episode stays current until an advance).
  insert into public.room_queue as q
    (room_id, position, anime_id, anime_title, episode_number, video_url, duration,
     added_by, added_by_username)
  values (v_room.room_id,
          coalesce((select pg_catalog.max(x.position) from public.room_queue as x
                    where x.room_id = v_room.room_id), 0) + 1,
          v_anime_id, v_anime_title, p_episode_number, v_video_url, p_duration,
          v_user_id, coalesce(v_username, 'member'))
  returning * into v_item;

  perform watchium_private.emit_room_event(v_room.room_id, 'queue_item_added',
                                           watchium_private.queue_item_json(v_item));
  return watchium_private.queue_item_json(v_item);
end;
$$;
comment on function watchium_rpc.add_to_queue(text, text, text, integer, text, numeric) is
  'Body of public.add_to_queue (same arguments, result and errors; documented there). Security definer: writes public.room_queue, which no client may write. Callers reach it through public.add_to_queue, a security invoker entry point; schema watchium_rpc is not exposed by the Data API.';
revoke all on function watchium_rpc.add_to_queue(text, text, text, integer, text, numeric) from public;
grant execute on function watchium_rpc.add_to_queue(text, text, text, integer, text, numeric)
  to authenticated, service_role;

create function public.add_to_queue(
  p_room_id text,
  p_anime_id text,
  p_anime_title text,
  p_episode_number integer,
  p_video_url text,
  p_duration numeric
)
returns jsonb
language plpgsql
volatile
security invoker  -- the body is the security definer function
set search_path = pg_catalog, pg_temp
set lock_timeout = '2s'  -- bounded lock waits; tuned by the rpc_lock_timeout setting
as $$
begin
  return watchium_rpc.add_to_queue(p_room_id, p_anime_id, p_anime_title, p_episode_number,
    p_video_url, p_duration);
end;
$$;
comment on function public.add_to_queue(text, text, text, integer, text, numeric) is
  'Members: appends an episode (anime, episode, http(s) video URL, duration in seconds) to the room''s queue. WD409 past max_queue_items_per_user or max_queue_items_per_room. Emits queue_item_added; returns the item.';
revoke all on function public.add_to_queue(text, text, text, integer, text, numeric) from public, anon;
grant execute on function public.add_to_queue(text, text, text, integer, text, numeric)
  to authenticated, service_role;

-- -----------------------------------------------------------------------------
-- public.move_queue_item(room_id, item_id, position): edit_queue moves an item
-- after the current one to another place after it (1..n); the items between
-- shift by one. The current item (position 0) does not move: advance instead.
-- Emits queue_item_moved. Returns the queue. Security definer: writes
-- room_queue.
-- -----------------------------------------------------------------------------
create function watchium_rpc.move_queue_item(p_room_id text, p_item_id bigint, p_position integer)
returns jsonb
language plpgsql
volatile
security definer  -- writes public.room_queue, which no client may write
set search_path = pg_catalog, pg_temp
as $$
declare
  v_user_id text;
  v_room    public.rooms;
  v_item    public.room_queue;
  v_last    integer;
begin
  -- Sizes first (22001), before any other work.
  perform watchium_private.check_size('p_room_id', pg_catalog.octet_length(p_room_id), 40);
  v_user_id := watchium_private.require_user_id();
  if p_item_id is null then
    raise exception 'p_item_id must be a queue item id, not null' using errcode = '22023';
  end if;
  if p_position is null or p_position not between 1 and 1000 then
    raise exception 'p_position must be a place after the current item, 1 to the queue''s length (got %)',
      coalesce(p_position::text, 'null')
      using errcode = '22023';
  end if;
  perform watchium_private.enforce_rate_limit(v_user_id, 'queue_edit');
  v_room := watchium_private.lock_queue_room(p_room_id, v_user_id);
  perform watchium_private.require_queue_permission(v_room, v_user_id, 'edit');
  v_item := watchium_private.require_queue_item(v_room.room_id, p_item_id, 'p_item_id');
  if v_item.position = 0 then
    raise exception 'p_item_id: item % is playing; it cannot be moved', p_item_id
      using errcode = '22023', hint = 'Advance the queue (advance_queue) or remove the item instead.';
  end if;
  select pg_catalog.max(q.position) into v_last from public.room_queue as q
  where q.room_id = v_room.room_id;
  if p_position > v_last then
    raise exception 'p_position must be a place after the current item, 1 to % (got %)', v_last, p_position
      using errcode = '22023';
  end if;

  if p_position <> v_item.position then
    -- One statement: room_queue_position_key is checked at its end.
    update public.room_queue as q
    set position = case
          when q.item_id = v_item.item_id then p_position
          when p_position < v_item.position then q.position + 1
          else q.position - 1
        end
    where q.room_id = v_room.room_id
      and q.position between least(p_position, v_item.position) and greatest(p_position, v_item.position);
    perform watchium_private.emit_room_event(v_room.room_id, 'queue_item_moved',
      pg_catalog.jsonb_build_object('item_id', v_item.item_id, 'from_position', v_item.position,
                                    'to_position', p_position, 'moved_by', v_user_id));
  end if;
  return watchium_private.queue_json(v_room);
end;
$$;
comment on function watchium_rpc.move_queue_item(text, bigint, integer) is
  'Body of public.move_queue_item (same arguments, result and errors; documented there). Security definer: writes public.room_queue, which no client may write. Callers reach it through public.move_queue_item, a security invoker entry point; schema watchium_rpc is not exposed by the Data API.';
revoke all on function watchium_rpc.move_queue_item(text, bigint, integer) from public;
grant execute on function watchium_rpc.move_queue_item(text, bigint, integer) to authenticated, service_role;

create function public.move_queue_item(p_room_id text, p_item_id bigint, p_position integer)
returns jsonb
language plpgsql
volatile
security invoker  -- the body is the security definer function
set search_path = pg_catalog, pg_temp
set lock_timeout = '2s'  -- bounded lock waits; tuned by the rpc_lock_timeout setting
as $$
begin
  return watchium_rpc.move_queue_item(p_room_id, p_item_id, p_position);
end;
$$;
comment on function public.move_queue_item(text, bigint, integer) is
  'Host and co-hosts (permission edit_queue): moves a queued item (not the one playing) to p_position (1 = next); the items between shift by one. Emits queue_item_moved; returns the queue.';
revoke all on function public.move_queue_item(text, bigint, integer) from public, anon;
grant execute on function public.move_queue_item(text, bigint, integer) to authenticated, service_role;

-- -----------------------------------------------------------------------------
-- public.remove_queue_item(room_id, item_id): the host removes an item; the
-- items after it move up. Removing the item playing advances past it (as
-- advance_queue would, reason 'removed'). Emits queue_item_removed (and the
-- advance's events). Returns the queue. Security definer: writes room_queue.
-- -----------------------------------------------------------------------------
create function watchium_rpc.remove_queue_item(p_room_id text, p_item_id bigint)
returns jsonb
language plpgsql
volatile
security definer  -- writes public.room_queue, which no client may write
set search_path = pg_catalog, pg_temp
as $$
declare
  v_user_id text;
  v_room    public.rooms;
  v_item    public.room_queue;
begin
  -- Sizes first (22001), before any other work.
  perform watchium_private.check_size('p_room_id', pg_catalog.octet_length(p_room_id), 40);
  v_user_id := watchium_private.require_user_id();
  if p_item_id is null then
    raise exception 'p_item_id must be a queue item id, not null' using errcode = '22023';
  end if;
  perform watchium_private.enforce_rate_limit(v_user_id, 'queue_edit');
  v_room := watchium_private.lock_queue_room(p_room_id, v_user_id);
  perform watchium_private.require_queue_permission(v_room, v_user_id, 'edit');
  v_item := watchium_private.require_queue_item(v_room.room_id, p_item_id, 'p_item_id');

  perform watchium_private.emit_room_event(v_room.room_id, 'queue_item_removed',
    pg_catalog.jsonb_build_object('item_id', v_item.item_id, 'position', v_item.position,
                                  'removed_by', v_user_id));
  if v_item.position = 0 then
    perform watchium_private.advance_room_queue(v_room, v_user_id, 'removed');
  else
    delete from public.room_queue as q where q.item_id = v_item.item_id;
    update public.room_queue as q set position = q.position - 1
    where q.room_id = v_room.room_id and q.position > v_item.position;
  end if;
  select * into v_room from public.rooms as r where r.room_id = v_room.room_id;
  return watchium_private.queue_json(v_room);
end;
$$;
comment on function watchium_rpc.remove_queue_item(text, bigint) is
  'Body of public.remove_queue_item (same arguments, result and errors; documented there). Security definer: writes public.room_queue, which no client may write. Callers reach it through public.remove_queue_item, a security invoker entry point; schema watchium_rpc is not exposed by the Data API.';
revoke all on function watchium_rpc.remove_queue_item(text, bigint) from public;
grant execute on function watchium_rpc.remove_queue_item(text, bigint) to authenticated, service_role;

create function public.remove_queue_item(p_room_id text, p_item_id bigint)
returns jsonb
language plpgsql
volatile
security invoker  -- the body is the security definer function
set search_path = pg_catalog, pg_temp
set lock_timeout = '2s'  -- bounded lock waits; tuned by the rpc_lock_timeout setting
as $$
begin
  return watchium_rpc.remove_queue_item(p_room_id, p_item_id);
end;
$$;
comment on function public.remove_queue_item(text, bigint) is
  'Host and co-hosts (permission edit_queue): removes a queued item; removing the item playing advances to the next (reason removed). Emits queue_item_removed; returns the queue.';
revoke all on function public.remove_queue_item(text, bigint) from public, anon;
grant execute on function public.remove_queue_item(text, bigint) to authenticated, service_role;

-- -----------------------------------------------------------------------------
-- public.advance_queue(room_id, from_item): the host plays the next item.
-- Guarded: p_from_item must be the room's current item (rooms.queue_item_id;
-- null when the room plays an episode that did not come from the queue),
-- checked under the room row lock, so of two clicks on "next" the second is
-- refused (WD409) instead of skipping a second episode. An automatic advance
-- that was due counts as the click (the guard then refuses). Counted against
-- sync_control, as the other host controls. Returns the advance.
-- Security definer: writes rooms and room_queue.
-- -----------------------------------------------------------------------------
create function watchium_rpc.advance_queue(p_room_id text, p_from_item bigint)
returns jsonb
language plpgsql
volatile
security definer  -- writes public.rooms and public.room_queue, which no client may write
set search_path = pg_catalog, pg_temp
as $$
declare
  v_user_id text;
  v_room    public.rooms;
begin
  -- Sizes first (22001), before any other work.
  perform watchium_private.check_size('p_room_id', pg_catalog.octet_length(p_room_id), 40);
  v_user_id := watchium_private.require_user_id();
  perform watchium_private.enforce_rate_limit(v_user_id, 'sync_control');
  v_room := watchium_private.lock_queue_room(p_room_id, v_user_id);
  perform watchium_private.require_queue_permission(v_room, v_user_id, 'advance');
  if v_room.queue_item_id is distinct from p_from_item then
    raise exception 'the queue of room % has moved on: the current item is %, not %', v_room.room_id,
      coalesce(v_room.queue_item_id::text, 'none'), coalesce(p_from_item::text, 'none')
      using errcode = 'WD409',
            hint = 'Someone advanced it already; read the queue again (get_queue).';
  end if;
  if v_room.queue_item_id is null
     and not exists (select from public.room_queue as q where q.room_id = v_room.room_id) then
    raise exception 'the queue of room % is empty', v_room.room_id
      using errcode = 'P0002', hint = 'Add an episode first (add_to_queue).';
  end if;
  return watchium_private.advance_room_queue(v_room, v_user_id, 'advance');
end;
$$;
comment on function watchium_rpc.advance_queue(text, bigint) is
  'Body of public.advance_queue (same arguments, result and errors; documented there). Security definer: writes public.rooms and public.room_queue, which no client may write. Callers reach it through public.advance_queue, a security invoker entry point; schema watchium_rpc is not exposed by the Data API.';
revoke all on function watchium_rpc.advance_queue(text, bigint) from public;
grant execute on function watchium_rpc.advance_queue(text, bigint) to authenticated, service_role;

create function public.advance_queue(p_room_id text, p_from_item bigint)
returns jsonb
language plpgsql
volatile
security invoker  -- the body is the security definer function
set search_path = pg_catalog, pg_temp
set lock_timeout = '2s'  -- bounded lock waits; tuned by the rpc_lock_timeout setting
as $$
begin
  return watchium_rpc.advance_queue(p_room_id, p_from_item);
end;
$$;
comment on function public.advance_queue(text, bigint) is
  'Host and co-hosts (permission edit_queue): plays the next queued item from 0, if p_from_item is still the current item (null: the room''s own episode); WD409 otherwise, so two clicks never skip two episodes. Resets the playback reference, opens the episode''s anchor, emits queue_advanced and playback (action episode). Returns {from_item_id, item, reason, advanced_by, playback}.';
revoke all on function public.advance_queue(text, bigint) from public, anon;
grant execute on function public.advance_queue(text, bigint) to authenticated, service_role;

-- -----------------------------------------------------------------------------
-- public.get_queue(room_id): the room's queue, for anyone who may see the
-- room (members; everyone signed in for a public room). Read only.
-- Security definer: checks visibility itself (hide_private_room).
-- -----------------------------------------------------------------------------
create function watchium_rpc.get_queue(p_room_id text)
returns jsonb
language plpgsql
stable
security definer  -- reads rooms and room_queue; visibility is checked here
set search_path = pg_catalog, pg_temp
as $$
declare
  v_user_id text;
  v_room    public.rooms;
begin
  -- Sizes first (22001), before any other work.
  perform watchium_private.check_size('p_room_id', pg_catalog.octet_length(p_room_id), 40);
  v_user_id := watchium_private.require_user_id();
  if p_room_id is null or p_room_id !~ '^[a-z0-9]{10}$' then
    raise exception 'p_room_id must be a room id: 10 characters of [a-z0-9]' using errcode = '22023';
  end if;
  select * into v_room from public.rooms as r where r.room_id = p_room_id;
  perform watchium_private.hide_private_room(v_room, p_room_id, v_user_id);
  return watchium_private.queue_json(v_room);
end;
$$;
comment on function watchium_rpc.get_queue(text) is
  'Body of public.get_queue (same arguments, result and errors; documented there). Security definer: reads rooms and room_queue; visibility is checked here. Callers reach it through public.get_queue, a security invoker entry point; schema watchium_rpc is not exposed by the Data API.';
revoke all on function watchium_rpc.get_queue(text) from public;
grant execute on function watchium_rpc.get_queue(text) to authenticated, service_role;

create function public.get_queue(p_room_id text)
returns jsonb
language plpgsql
stable
security invoker  -- the body is the security definer function
set search_path = pg_catalog, pg_temp
set lock_timeout = '2s'  -- bounded lock waits; tuned by the rpc_lock_timeout setting
as $$
begin
  return watchium_rpc.get_queue(p_room_id);
end;
$$;
comment on function public.get_queue(text) is
  'The room''s queue as the caller may see it: {room_id, current_item_id, advance_after, items (position 0: playing)}. P0002 for a missing or invisible room. Read only.';
revoke all on function public.get_queue(text) from public, anon;
grant execute on function public.get_queue(text) to authenticated, service_role;

-- =============================================================================
-- Maintenance: the queues job (watchium_private.maintain_queues) after the
-- rooms job. Otherwise the definition of 0008.
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
    'skipped', v_skipped,
    'ran_at', pg_catalog.now()
  );
end;
$$;
comment on function watchium_rpc.maintain() is
  'Body of public.maintain (same arguments, result and errors; documented there). Security definer: removes members, rooms, partitions and log rows owned by the package. Callers reach it through public.maintain, a security invoker entry point; schema watchium_rpc is not exposed by the Data API.';
