-- =============================================================================
-- 0026 a room's join policy: open, access key, or approval
--
--   rooms.join_policy   null (by visibility: public rooms are open, private
--                       rooms need their key, as before), 'open' (public
--                       rooms), 'key' (private rooms) or 'approval'.
--   room_join_requests  requests to join an approval room: pending, accepted
--                       (good for one join_room within join_approval_valid_for)
--                       or refused (the requester learns it when it asks
--                       again; it may ask anew after join_request_retry_after).
--   set_room_join_policy  permission update_room (default host).
--   request_to_join     anyone signed in; a private room also needs its key,
--                       so that a non-member learns nothing more than
--                       join_room tells it.
--   get_join_requests, answer_join_request  permission approve_joins (default
--                       co_host; the catalogue row exists since 0010).
--   join_room           an approval room admits only an accepted requester,
--                       whatever key it holds (42501 naming request_to_join);
--                       the join consumes the acceptance.
--   ban_user            a ban deletes the user's request in the room.
--   forget_user         deletes the user's requests.
--
-- This revision changes public.rooms alone among the busy tables (a column,
-- its check, a trigger, and the foreign key of the new table).
-- =============================================================================

insert into watchium_private.rate_limit_rules (action, max_requests, window_minutes, description) values
  ('request_to_join',      20, 1, 'request_to_join calls per user per minute (asking again reads the status).'),
  ('answer_join_request',  60, 1, 'answer_join_request calls per user per minute.'),
  ('set_room_join_policy', 30, 1, 'set_room_join_policy calls per user per minute.');

insert into watchium_private.settings (key, value, description) values
  ('max_join_requests_per_room', '200',
   'Pending and accepted (not yet used) join requests one room holds; past it request_to_join raises WD409.'),
  ('join_approval_valid_for', '"1 day"',
   'How long an accepted join request admits its requester (one join_room); after it the user asks again.'),
  ('join_request_retry_after', '"1 hour"',
   'After a refusal, how long request_to_join answers refused before the user may ask again.');

-- -----------------------------------------------------------------------------
-- public.rooms.join_policy
--
-- Nullable without a default: the ALTER changes the catalog only (no table
-- rewrite, no scan), and null means the rule every existing room follows
-- today: public rooms are joined freely, private rooms with their key. A
-- constant default could not say that (it would have to be 'open' for some
-- rows and 'key' for others), and a backfill would write every room row.
--
-- Visibility decides who sees a room; the key is what lets a non-member
-- reach a private one (every function answers it as a missing room
-- otherwise). So 'open' is for public rooms and 'key' for private ones
-- (rooms_join_policy_check); 'approval' for either: a moderator accepts each
-- newcomer, and a private room still asks the requester for its key.
-- -----------------------------------------------------------------------------
alter table public.rooms add column join_policy text;

-- NOT VALID: every existing row has join_policy null and satisfies the
-- check; validating would scan the table under the lock of this ALTER. New and
-- updated rows are checked.
alter table public.rooms
  add constraint rooms_join_policy_check check (
    join_policy in ('approval', 'open', 'key')
    and (join_policy = 'approval' or (join_policy = 'open') = is_public)
  ) not valid;

comment on column public.rooms.join_policy is
  'How non-members get in: null follows visibility (public: open, private: key); open (public rooms: join_room admits anyone), key (private rooms: join_room with the access key), approval (request_to_join, a member with approve_joins accepts, then join_room; a private room asks the requester for its key too). Set with set_room_join_policy.';

-- -----------------------------------------------------------------------------
-- tg_rooms__align_join_policy: a room made public or private by any writer
-- (update_room, a DBA) keeps a consistent policy: an explicit open or key
-- follows the new visibility (approval and null stay).
-- -----------------------------------------------------------------------------
create function watchium_private.tg_rooms__align_join_policy()
returns trigger
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
begin
  new.join_policy := case when new.is_public then 'open' else 'key' end;
  return new;
end;
$$;
comment on function watchium_private.tg_rooms__align_join_policy() is
  'Trigger function: a room whose visibility changes while its join policy is open or key gets the policy of its new visibility (public: open, private: key).';
revoke all on function watchium_private.tg_rooms__align_join_policy() from public;

create trigger _060_align_join_policy
  before update of is_public on public.rooms
  for each row
  when (new.is_public is distinct from old.is_public and new.join_policy in ('open', 'key'))
  execute function watchium_private.tg_rooms__align_join_policy();

-- -----------------------------------------------------------------------------
-- watchium_private.room_join_requests
-- -----------------------------------------------------------------------------
create table watchium_private.room_join_requests (
  room_id     text        not null,
  user_id     text        not null,
  username    text        not null,
  message     text,
  status      text        not null default 'pending',
  created_at  timestamptz not null default now(),
  answered_by text,
  answered_at timestamptz,
  constraint room_join_requests_pkey primary key (room_id, user_id),
  constraint room_join_requests_room_id_fkey foreign key (room_id)
    references public.rooms (room_id) on delete cascade,
  constraint room_join_requests_user_id_length_check check (char_length(user_id) between 1 and 100),
  constraint room_join_requests_username_length_check check (char_length(username) between 1 and 50),
  constraint room_join_requests_message_length_check check (char_length(message) between 1 and 200),
  constraint room_join_requests_status_check check (status in ('pending', 'approved', 'refused')),
  constraint room_join_requests_answer_check check (
    (status = 'pending') = (answered_at is null)
    and (answered_by is null or answered_at is not null)
    and (status = 'pending' or message is null)),
  constraint room_join_requests_answered_by_length_check check (char_length(answered_by) between 1 and 100)
);
comment on table watchium_private.room_join_requests is
  'Requests to join rooms whose join policy is approval, one per room and user: pending, approved (admits the user once through join_room, within join_approval_valid_for) or refused (told to the requester when it asks again). Read by members with approve_joins through get_join_requests. Deleted with the room, by a ban, by the join, and by forget_user.';
comment on column watchium_private.room_join_requests.room_id is 'The room.';
comment on column watchium_private.room_join_requests.user_id is 'The requester (from its token).';
comment on column watchium_private.room_join_requests.username is 'The name the requester gave (check_username).';
comment on column watchium_private.room_join_requests.message is 'A short note to the moderators (1 to 200 characters), erased once answered.';
comment on column watchium_private.room_join_requests.status is 'pending, approved or refused.';
comment on column watchium_private.room_join_requests.created_at is 'When the request was made (or made anew).';
comment on column watchium_private.room_join_requests.answered_by is 'Who answered (null: pending, or a trusted caller without a user).';
comment on column watchium_private.room_join_requests.answered_at is 'When it was answered; null while pending.';
alter table watchium_private.room_join_requests enable row level security;
revoke all on table watchium_private.room_join_requests from public;

-- =============================================================================
-- Helpers (internal)
-- =============================================================================

-- watchium_private.room_join_policy(room): the policy in force: the column,
-- or for null the rule of the room's visibility.
create function watchium_private.room_join_policy(p_room public.rooms)
returns text
language sql
immutable
set search_path = pg_catalog, pg_temp
as $$
  select coalesce(p_room.join_policy, case when p_room.is_public then 'open' else 'key' end)
$$;
comment on function watchium_private.room_join_policy(public.rooms) is
  'The join policy in force in the room: rooms.join_policy, or for null open (public rooms) or key (private rooms). Internal.';
revoke all on function watchium_private.room_join_policy(public.rooms) from public;

-- -----------------------------------------------------------------------------
-- watchium_private.check_access_key(room, user_id, access_key): join_room's
-- access key check (0005), shared with request_to_join. 22023 for a missing or
-- malformed key, WD429 when the user's or the key's budget is spent; a wrong
-- key is counted (per user and per key) and answered
-- {status: invalid_access_key, room_id, attempts_left}; a right key returns
-- null (the user's count refunded). The caller holds the room row lock (or
-- passes a room that does not exist, as a private room without a secret).
-- -----------------------------------------------------------------------------
create function watchium_private.check_access_key(p_room public.rooms, p_user_id text, p_access_key text)
returns jsonb
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
declare
  v_secret    watchium_private.room_secrets;
  v_budget    integer;
  v_user_left integer;
begin
  if p_access_key is null or p_access_key !~ '^[0-9]{6}$' then
    raise exception 'p_access_key must be the room''s 6-digit access key'
      using errcode = '22023',
            hint = 'Private rooms need the access key the host shares (a room id that names no room gets the same answer).';
  end if;
  -- Count the user's attempt first (locks the counter), compare, refund if right.
  v_user_left := watchium_private.count_key_attempt(p_user_id, 'join_room_key_user', 1);
  if v_user_left < 0 then
    raise exception 'too many wrong access keys for this user'
      using errcode = 'WD429',
            hint = 'Retry within the hour.';
  end if;
  select * into v_secret
  from watchium_private.room_secrets as s
  where s.room_id = p_room.room_id;
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
    where s.room_id = p_room.room_id;
    return pg_catalog.jsonb_build_object(
      'status', 'invalid_access_key',
      'room_id', p_room.room_id,
      'attempts_left', least(v_user_left, v_budget - v_secret.wrong_attempts - 1)
    );
  end if;
  perform watchium_private.count_key_attempt(p_user_id, 'join_room_key_user', -1);
  return null;
end;
$$;
comment on function watchium_private.check_access_key(public.rooms, text, text) is
  'The access key check of join_room and request_to_join: null for the right key; {status: invalid_access_key, room_id, attempts_left} for a wrong one (counted per user and per key); 22023 without a 6-digit key, WD429 once a budget is spent. Caller holds the room lock. Internal.';
revoke all on function watchium_private.check_access_key(public.rooms, text, text) from public;

-- watchium_private.require_not_banned(room_id, user_id): join_room's refusal
-- of a ban in force (0019), shared with request_to_join: 42501, until when,
-- the reason in the hint.
create function watchium_private.require_not_banned(p_room_id text, p_user_id text)
returns void
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
declare
  v_ban watchium_private.room_bans := watchium_private.active_ban(p_room_id, p_user_id);
begin
  if v_ban.user_id is not null then
    raise exception 'you are banned from room % %', p_room_id,
      case when v_ban.ends_at is null then 'for good'
           else 'until ' || pg_catalog.to_char(v_ban.ends_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') end
      using errcode = '42501',
            hint = coalesce('Reason: ' || v_ban.reason, 'Ask a moderator of the room.');
  end if;
end;
$$;
comment on function watchium_private.require_not_banned(text, text) is
  'Raises 42501 (until when; the reason in the hint) when p_user_id has a ban in force in the room: the answer of join_room and request_to_join. Internal.';
revoke all on function watchium_private.require_not_banned(text, text) from public;

-- watchium_private.live_join_request(room_id, user_id): the user's request in
-- the room that still counts: pending, approved within
-- join_approval_valid_for, or refused within join_request_retry_after; a
-- null row otherwise.
create function watchium_private.live_join_request(p_room_id text, p_user_id text)
returns watchium_private.room_join_requests
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
declare
  v_request watchium_private.room_join_requests;
begin
  select * into v_request
  from watchium_private.room_join_requests as q
  where q.room_id = p_room_id and q.user_id = p_user_id
    and (q.status = 'pending'
         or (q.status = 'approved'
             and q.answered_at > pg_catalog.now() - watchium_private.setting_interval('join_approval_valid_for'))
         or (q.status = 'refused'
             and q.answered_at > pg_catalog.now() - watchium_private.setting_interval('join_request_retry_after')));
  return v_request;
end;
$$;
comment on function watchium_private.live_join_request(text, text) is
  'The join request of p_user_id in the room that still counts (pending; approved within join_approval_valid_for; refused within join_request_retry_after), else a null row. Internal.';
revoke all on function watchium_private.live_join_request(text, text) from public;

