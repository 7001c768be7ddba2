-- =============================================================================
-- 0005 rooms, membership, host authority and comments
--
-- The operations clients call to run a watch party:
--   rooms      create_room, join_room, leave_room, kick_member, transfer_host,
--              update_room, delete_room, get_room, get_room_access_key,
--              list_public_rooms
--   comments   post_comment, edit_comment, delete_comment, get_comments,
--              get_or_create_anchor
--   internal   watchium_private.maintain_rooms() (stale members, empty rooms)
--
-- Host authority lives in triggers on public.room_members, so that every
-- writer (these functions, maintenance, a DBA) keeps the invariants:
--   * at most one host per room: room_members_one_host_idx (0002);
--   * rooms.host_user_id / host_username mirror the member flagged is_host
--     (_200_sync_room_host);
--   * when the host is removed, the longest-present member (earliest
--     joined_at, then user_id) becomes host (_300_member_left), so a
--     non-empty room always has exactly one host.
--
-- Lock order (docs/architecture.md): the room row first (select ... for
-- update), then member rows. Every function here that changes membership or
-- the host takes the room row lock before touching room_members, so the
-- operations of one room serialize on one row and never deadlock.
--
-- An empty room keeps host_user_id null and its last_activity marks when it
-- became empty; maintain_rooms deletes it once that is older than the
-- empty_room_grace setting. Its comments are deleted with it (cascade).
-- =============================================================================

-- =============================================================================
-- Settings and rate limits
-- =============================================================================
insert into watchium_private.settings (key, value, description) values
  ('member_stale_after', '"30 seconds"',
   'A member whose last heartbeat is older than this is removed by maintenance (with host transfer).'),
  ('empty_room_grace', '"1 hour"',
   'An empty room (no members) is deleted by maintenance once its last activity is older than this.'),
  ('empty_anchor_grace', '"1 day"',
   'An anchor whose thread has no comment and whose episode has no room is deleted by maintenance once older than this.'),
  ('max_memberships_per_user', '50',
   'Rooms a user may be a member of at once; past it create_room and join_room raise WD409.'),
  ('access_key_guess_budget', '50',
   'Wrong keys (all users together) a new access key absorbs before join_room stops comparing it.'),
  ('access_key_guess_budget_per_hour', '20',
   'Wrong keys the budget of an access key grows by per full hour of the key''s age.');

-- Access keys are 6 digits (10^6 possibilities). Wrong keys are counted per
-- user (rule join_room_key_user, one-hour windows) and per key
-- (room_secrets.wrong_attempts, all users together). A key absorbs at most
-- 50 + 20 per full hour of its age wrong guesses, whatever the number of
-- accounts: finding it takes on average 500,000 guesses, i.e. about 25,000
-- hours (~2.8 years) of the key's life, and a day of guessing succeeds with
-- p <= 0.053 %. A new key (rotation) starts a new budget: guesses against the
-- old key are worthless. docs/security.md has the arithmetic.
insert into watchium_private.rate_limit_rules (action, max_requests, window_minutes, description) values
  ('create_room',          20,  60, 'Rooms a user may create per hour.'),
  ('join_room',            60,   1, 'join_room calls per user per minute.'),
  ('join_room_key_user',    5,  60, 'Wrong access keys a user may try per hour (all rooms).'),
  ('leave_room',           60,   1, 'leave_room calls per user per minute.'),
  ('kick_member',          30,   1, 'kick_member calls per user per minute.'),
  ('transfer_host',        30,   1, 'transfer_host calls per user per minute.'),
  ('update_room',          30,   1, 'update_room calls per user per minute.'),
  ('delete_room',          10,   1, 'delete_room calls per user per minute.'),
  ('post_comment',         20,   1, 'Comments a user may post per minute.'),
  ('edit_comment',         20,   1, 'Comment edits per user per minute.'),
  ('delete_comment',       20,   1, 'Comment deletions per user per minute.'),
  ('get_or_create_anchor', 60,   1, 'get_or_create_anchor calls per user per minute.'),
  ('create_anchor',        30,  60, 'New episode threads (anchors) a user may open per hour through get_or_create_anchor: anime ids are free text, so any made-up id opens one.');

-- =============================================================================
-- Random identifiers
-- =============================================================================

-- -----------------------------------------------------------------------------
-- watchium_private.random_bytes(n): n bytes from a cryptographic source.
--
-- Core gen_random_uuid() draws from pg_strong_random() (the CSPRNG the server
-- was built with) and needs no extension: pgcrypto lives in schema extensions
-- on Supabase and in public elsewhere, so depending on it would make the
-- schema-qualified name differ between installations. A version-4 uuid has
-- fixed bits in bytes 6 (version) and 8 (variant); only the other 14 bytes of
-- each uuid are used.
-- -----------------------------------------------------------------------------
create function watchium_private.random_bytes(p_count integer)
returns bytea
language sql
volatile
set search_path = pg_catalog, pg_temp
as $$
  select pg_catalog.substr(
    pg_catalog.string_agg(
      pg_catalog.substr(u.b, 1, 6) || pg_catalog.substr(u.b, 8, 1) || pg_catalog.substr(u.b, 10, 7),
      ''::bytea),
    1, p_count)
  from (
    select pg_catalog.decode(pg_catalog.replace(pg_catalog.gen_random_uuid()::text, '-', ''), 'hex') as b
    from pg_catalog.generate_series(1, (p_count + 13) / 14)
  ) as u
$$;
comment on function watchium_private.random_bytes(integer) is
  'p_count cryptographically random bytes (the 14 fully random bytes of each gen_random_uuid()). Internal.';
revoke all on function watchium_private.random_bytes(integer) from public;

-- -----------------------------------------------------------------------------
-- watchium_private.generate_room_id(): 10 characters of [a-z0-9], each
-- uniform: a random byte b is used only when b < 252 (= 7 * 36), as b % 36.
-- 28 bytes give 10 accepted ones except with negligible probability; the
-- loop draws again then.
-- -----------------------------------------------------------------------------
create function watchium_private.generate_room_id()
returns text
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
declare
  v_bytes bytea;
  v_id    text;
begin
  -- 28 bytes hold 10 usable ones (< 252) except with probability below 1e-20;
  -- the bound only keeps the loop finite.
  for v_attempt in 1 .. 16 loop
    v_bytes := watchium_private.random_bytes(28);
    select pg_catalog.string_agg(
             pg_catalog.substr('abcdefghijklmnopqrstuvwxyz0123456789',
                               pg_catalog.get_byte(v_bytes, a.i) % 36 + 1, 1),
             '' order by a.i)
      into v_id
    from (
      select i
      from pg_catalog.generate_series(0, 27) as i
      where pg_catalog.get_byte(v_bytes, i) < 252
      order by i
      limit 10
    ) as a;
    if pg_catalog.char_length(v_id) = 10 then
      return v_id;
    end if;
  end loop;
  raise exception 'could not draw a room id from the random source'
    using errcode = 'XX000';
end;
$$;
comment on function watchium_private.generate_room_id() is
  'A random room id: 10 characters from [a-z0-9], each uniformly distributed (rejection sampling on CSPRNG bytes). Internal.';
revoke all on function watchium_private.generate_room_id() from public;

-- -----------------------------------------------------------------------------
-- watchium_private.generate_access_key(): 6 digits, uniform on 000000-999999.
-- 32 random bits v are used only when v < 4,294,000,000 (a multiple of 10^6),
-- as v % 10^6, zero-padded to 6 digits.
-- -----------------------------------------------------------------------------
create function watchium_private.generate_access_key()
returns text
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
declare
  v_bytes bytea;
  v_value bigint;
begin
  -- A draw is rejected with probability 0.00022; the bound only keeps the loop finite.
  for v_attempt in 1 .. 16 loop
    v_bytes := watchium_private.random_bytes(4);
    v_value := (pg_catalog.get_byte(v_bytes, 0)::bigint << 24)
             | (pg_catalog.get_byte(v_bytes, 1)::bigint << 16)
             | (pg_catalog.get_byte(v_bytes, 2)::bigint << 8)
             |  pg_catalog.get_byte(v_bytes, 3)::bigint;
    if v_value < 4294000000 then
      return pg_catalog.lpad((v_value % 1000000)::text, 6, '0');
    end if;
  end loop;
  raise exception 'could not draw an access key from the random source'
    using errcode = 'XX000';
end;
$$;
comment on function watchium_private.generate_access_key() is
  'A random 6-digit access key, uniform on 000000-999999 (rejection sampling on 32 CSPRNG bits). Internal.';
revoke all on function watchium_private.generate_access_key() from public;

-- =============================================================================
-- Validation helpers: each raises 22023 naming the argument, never clamps.
-- =============================================================================

-- -----------------------------------------------------------------------------
-- watchium_private.check_text(argument, value, min, max, allow_newlines)
-- Refuses more than 4 * max bytes (22001, before reading the text), trims
-- white space, then requires min..max characters, no control characters
-- (line feeds allowed only when p_allow_newlines), no bidirectional
-- controls, and something visible (not blank). Returns the trimmed text;
-- null stays null (callers decide whether null is allowed).
-- -----------------------------------------------------------------------------
create function watchium_private.check_text(
  p_argument text,
  p_value text,
  p_min integer,
  p_max integer,
  p_allow_newlines boolean default false
)
returns text
language plpgsql
immutable
set search_path = pg_catalog, pg_temp
as $$
declare
  v_text text;
begin
  if p_value is null then
    return null;
  end if;
  -- A character is at most 4 bytes: anything longer is refused before it is read.
  if pg_catalog.octet_length(p_value) > 4 * p_max then
    perform watchium_private.check_size(p_argument, pg_catalog.octet_length(p_value), 4 * p_max);
  end if;
  v_text := pg_catalog.btrim(p_value, E' \t\n\r\f\x0b');
  if pg_catalog.char_length(v_text) not between p_min and p_max then
    raise exception '% must be % to % characters (got %)',
      p_argument, p_min, p_max, pg_catalog.char_length(v_text)
      using errcode = '22023',
            hint = 'Leading and trailing white space does not count.';
  end if;
  if (p_allow_newlines and v_text ~ '[\x01-\x09\x0b-\x1f\x7f-\x9f]')
     or (not p_allow_newlines and v_text ~ '[\x01-\x1f\x7f-\x9f]') then
    raise exception '% must not contain control characters', p_argument
      using errcode = '22023',
            hint = case when p_allow_newlines then 'Only line feeds are allowed.'
                        else 'Remove tabs, line breaks and other control characters.' end;
  end if;
  -- Bidirectional controls reorder what follows them on screen (a message
  -- or name could display as something else).
  if v_text ~ '[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]' then
    raise exception '% must not contain bidirectional control characters', p_argument
      using errcode = '22023',
            hint = 'Remove U+200E, U+200F, U+202A to U+202E, U+2066 to U+2069 and U+061C.';
  end if;
  -- Blank: nothing but white space and invisible characters.
  if v_text !~ '[^[:space:]\u00a0\u00ad\u034f\u115f\u1160\u180e\u2000-\u200f\u2028-\u202f\u205f-\u206f\u3000\u3164\ufeff]' then
    raise exception '% must not be blank', p_argument
      using errcode = '22023',
            hint = 'White space and invisible characters alone are not text.';
  end if;
  return v_text;
end;
$$;
comment on function watchium_private.check_text(text, text, integer, integer, boolean) is
  'Refuses p_value over 4 * p_max bytes (22001, before reading it), trims it and checks its length, that it has no control or bidirectional control characters and is not blank; raises 22023 naming p_argument. The one text rule of the API (comments, chat broadcasts, names, titles). Internal.';
revoke all on function watchium_private.check_text(text, text, integer, integer, boolean) from public;

-- -----------------------------------------------------------------------------
-- watchium_private.check_username(argument, value): check_text (1..50
-- characters), and not a name the database speaks with: "system" (system
-- messages) and "deleted" (comments of forgotten accounts) are reserved, and
-- so are their lookalikes. The comparison key folds compatibility forms
-- (NFKC: fullwidth and mathematical letters), case, white space, punctuation
-- and invisible format characters, and the digits and Cyrillic / Greek
-- letters that look like the Latin ones (5 $ ѕ -> s, 0 о ο -> o, 3 е ε -> e...).
-- -----------------------------------------------------------------------------
create function watchium_private.check_username(p_argument text, p_value text)
returns text
language plpgsql
stable  -- reads the database encoding
set search_path = pg_catalog, pg_temp
as $$
declare
  v_name text := watchium_private.check_text(p_argument, p_value, 1, 50);
  v_key  text;
begin
  if v_name is null then
    return null;
  end if;
  v_key := v_name;
  if pg_catalog.getdatabaseencoding() = 'UTF8' then
    v_key := pg_catalog.normalize(v_key, 'NFKC');
  end if;
  v_key := pg_catalog.lower(v_key);
  v_key := pg_catalog.translate(v_key,
    '0135$7@ѕЅуУүтТеЕмМсСоОаАԁіІӏϲοΟυγΥτΤεΕΜμΒıɩ',
    'olesstassyyytteemmccooaadiilcooyyytteemmbii');
  v_key := pg_catalog.regexp_replace(v_key,
    '[[:space:][:punct:]\u00ad\u034f\u180e\u200b-\u200f\u2028-\u202f\u205f-\u206f\u3000\ufeff]', '', 'g');
  if v_key in ('system', 'deleted') then
    raise exception '% "%" is reserved: the database uses it for its own messages', p_argument, v_name
      using errcode = '22023',
            hint = 'Choose another display name.';
  end if;
  return v_name;
end;
$$;
comment on function watchium_private.check_username(text, text) is
  'check_text for a display name (1 to 50 characters), refusing the reserved names system and deleted and their lookalikes (case, width, spacing, punctuation, invisible characters, digit and Cyrillic/Greek confusables); raises 22023 naming p_argument. Internal.';
revoke all on function watchium_private.check_username(text, text) from public;

-- -----------------------------------------------------------------------------
-- watchium_private.check_url(argument, value): an http(s) URL of at most
-- 2048 characters, or null.
-- -----------------------------------------------------------------------------
create function watchium_private.check_url(p_argument text, p_value text)
returns text
language plpgsql
immutable
set search_path = pg_catalog, pg_temp
as $$
declare
  v_url text := watchium_private.check_text(p_argument, p_value, 1, 2048);
begin
  if v_url is not null and (v_url !~* '^https?://[^[:space:]]+$') then
    raise exception '% must be an http:// or https:// URL', p_argument
      using errcode = '22023';
  end if;
  return v_url;
end;
$$;
comment on function watchium_private.check_url(text, text) is
  'Checks that p_value is an http(s) URL without white space, at most 2048 characters; raises 22023 naming p_argument. Internal.';
revoke all on function watchium_private.check_url(text, text) from public;

-- -----------------------------------------------------------------------------
-- watchium_private.check_episode(argument, value): 1..100000.
-- -----------------------------------------------------------------------------
create function watchium_private.check_episode(p_argument text, p_value integer)
returns integer
language plpgsql
immutable
set search_path = pg_catalog, pg_temp
as $$
begin
  if p_value is null or p_value not between 1 and 100000 then
    raise exception '% must be an episode number between 1 and 100000 (got %)',
      p_argument, coalesce(p_value::text, 'null')
      using errcode = '22023';
  end if;
  return p_value;
end;
$$;
comment on function watchium_private.check_episode(text, integer) is
  'Checks an episode number (1 to 100000); raises 22023 naming p_argument. Internal.';
revoke all on function watchium_private.check_episode(text, integer) from public;

-- -----------------------------------------------------------------------------
-- watchium_private.check_video_time(argument, value): seconds 0..86400.
-- Explicit about NaN: 'NaN'::numeric >= 0 is true in PostgreSQL.
-- -----------------------------------------------------------------------------
create function watchium_private.check_video_time(p_argument text, p_value numeric)
returns numeric
language plpgsql
immutable
set search_path = pg_catalog, pg_temp
as $$
begin
  if p_value is not null
     and (p_value = 'NaN'::numeric or p_value < 0 or p_value > 86400) then
    raise exception '% must be a number of seconds between 0 and 86400 (got %)', p_argument, p_value
      using errcode = '22023',
            hint = 'NaN and infinities are not times.';
  end if;
  return p_value;
end;
$$;
comment on function watchium_private.check_video_time(text, numeric) is
  'Checks a video time in seconds (0 to 86400; not NaN or infinite); raises 22023 naming p_argument. Internal.';
revoke all on function watchium_private.check_video_time(text, numeric) from public;

-- -----------------------------------------------------------------------------
-- watchium_private.check_limit(argument, value): page sizes 1..100.
-- -----------------------------------------------------------------------------
create function watchium_private.check_limit(p_argument text, p_value integer)
returns integer
language plpgsql
immutable
set search_path = pg_catalog, pg_temp
as $$
begin
  if p_value is null or p_value not between 1 and 100 then
    raise exception '% must be between 1 and 100 (got %)', p_argument, coalesce(p_value::text, 'null')
      using errcode = '22023';
  end if;
  return p_value;
end;
$$;
comment on function watchium_private.check_limit(text, integer) is
  'Checks a page size (1 to 100); raises 22023 naming p_argument. Internal.';
revoke all on function watchium_private.check_limit(text, integer) from public;

-- =============================================================================
-- Keyset cursors: "<microseconds since epoch>.<key>", returned by the listing
-- functions and passed back verbatim. Exact to the microsecond (a client's own
-- rendering of a timestamp, e.g. a JavaScript Date, would lose precision).
-- =============================================================================
create function watchium_private.make_cursor(p_at timestamptz, p_key text)
returns text
language sql
immutable
set search_path = pg_catalog, pg_temp
as $$
  select (extract(epoch from p_at) * 1000000)::bigint::text || '.' || p_key
$$;
comment on function watchium_private.make_cursor(timestamptz, text) is
  'Encodes a keyset position (timestamp, key) as an opaque cursor. Internal.';
revoke all on function watchium_private.make_cursor(timestamptz, text) from public;

create function watchium_private.parse_cursor(p_cursor text, out at timestamptz, out key text)
language plpgsql
immutable
set search_path = pg_catalog, pg_temp
as $$
declare
  v_parts text[] := pg_catalog.regexp_match(p_cursor, '^(-?[0-9]{1,18})\.([a-z0-9]{1,19})$');
begin
  if v_parts is null then
    raise exception 'p_cursor must be a cursor returned by a previous call'
      using errcode = '22023',
            hint = 'Pass next_cursor from the previous page, or null for the first page.';
  end if;
  -- Years 1 to 9999 only: a made-up extreme (e.g. -999999999999999999) would
  -- otherwise overflow the timestamp arithmetic below (22008).
  if v_parts[1]::bigint not between -62135596800000000 and 253402300799999999 then
    raise exception 'p_cursor must be a cursor returned by a previous call'
      using errcode = '22023',
            hint = 'Pass next_cursor from the previous page, or null for the first page.';
  end if;
  at := 'epoch'::timestamptz
        + (v_parts[1]::bigint / 1000000) * interval '1 second'
        + (v_parts[1]::bigint % 1000000) * interval '1 microsecond';
  key := v_parts[2];
end;
$$;
comment on function watchium_private.parse_cursor(text) is
  'Decodes a cursor made by make_cursor; raises 22023 naming p_cursor when malformed or out of the years 1 to 9999. Internal.';
revoke all on function watchium_private.parse_cursor(text) from public;

-- =============================================================================
-- Room helpers
-- =============================================================================

-- -----------------------------------------------------------------------------
-- watchium_private.room_expected_position(room, at): where the host is at
-- `at` (by default the transaction's time).
-- current_playback_time + (now - playback_updated_at) * playback_speed while
-- playing (never above 86400, a clock going backwards counts as no time),
-- the stored position while paused. Rounded to 2 decimals.
-- -----------------------------------------------------------------------------
create function watchium_private.room_expected_position(
  p_room public.rooms,
  p_at timestamptz default pg_catalog.now()
)
returns numeric
language plpgsql  -- not sql: a SQL function with SET is planned again on every call
stable
set search_path = pg_catalog, pg_temp
as $$
begin
  if p_room.is_playing then
    return pg_catalog.round(least(
      86400::numeric,
      p_room.current_playback_time
        + extract(epoch from greatest(p_at - p_room.playback_updated_at, interval '0'))
          * p_room.playback_speed
    ), 2);
  end if;
  return p_room.current_playback_time;
end;
$$;
comment on function watchium_private.room_expected_position(public.rooms, timestamptz) is
  'The expected host position at p_at (default: now): current_playback_time + elapsed since playback_updated_at * playback_speed while playing (at most 86400), else current_playback_time. Internal.';
revoke all on function watchium_private.room_expected_position(public.rooms, timestamptz) from public;

-- -----------------------------------------------------------------------------
-- watchium_private.lock_room(room_id): the room row, locked FOR UPDATE (the
-- first lock of every membership change), or P0002 when there is no room.
-- -----------------------------------------------------------------------------
create function watchium_private.lock_room(p_room_id text)
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
  if not found then
    raise exception 'room % not found', p_room_id
      using errcode = 'P0002';
  end if;
  return v_room;
end;
$$;
comment on function watchium_private.lock_room(text) is
  'Locks and returns the room row (the first lock of the lock order); raises 22023 for a malformed id and P0002 when absent. Internal.';
revoke all on function watchium_private.lock_room(text) from public;

-- -----------------------------------------------------------------------------
-- watchium_private.require_host(room, user_id): 42501 unless the user hosts
-- the room. Reads rooms.host_user_id, which mirrors the is_host member.
-- -----------------------------------------------------------------------------
create function watchium_private.require_host(p_room public.rooms, p_user_id text)
returns void
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
begin
  if p_room.host_user_id is distinct from p_user_id then
    raise exception 'only the host of room % may do this', p_room.room_id
      using errcode = '42501',
            hint = 'Ask the host to transfer host to you.';
  end if;
end;
$$;
comment on function watchium_private.require_host(public.rooms, text) is
  'Raises 42501 unless p_user_id is the host of the room. Internal.';
revoke all on function watchium_private.require_host(public.rooms, text) from public;

-- -----------------------------------------------------------------------------
-- watchium_private.hide_private_room(room, room_id, user_id): raises P0002
-- 'room <id> not found' (lock_room's answer for a missing room, word for
-- word) when the room is missing (p_room null) or private and p_user_id is not
-- a member; trusted callers see every room. Every function that takes a room
-- id calls it before any other check, so that a non-member cannot tell a
-- private room from a missing one by SQLSTATE, message or timing of a check.
-- -----------------------------------------------------------------------------
create function watchium_private.hide_private_room(p_room public.rooms, p_room_id text, p_user_id text)
returns void
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
begin
  if p_room.room_id is null
     or not (p_room.is_public
             or watchium_private.caller_is_trusted()
             or exists (select from public.room_members as m
                        where m.room_id = p_room.room_id and m.user_id = p_user_id)) then
    raise exception 'room % not found', p_room_id
      using errcode = 'P0002';
  end if;
end;
$$;
comment on function watchium_private.hide_private_room(public.rooms, text, text) is
  'Raises P0002 "room <id> not found" when the room is missing or private and p_user_id is not a member (trusted callers see all): private rooms answer non-members as missing ones do. Internal.';
revoke all on function watchium_private.hide_private_room(public.rooms, text, text) from public;

-- -----------------------------------------------------------------------------
-- watchium_private.count_key_attempt(subject, action, delta): adds delta to
-- the subject's counter of the action in the current window of its rule and
-- returns the attempts left (max - count; negative when over). The upsert
-- locks the counter row until commit, so concurrent attempts serialize and
-- the count is exact. join_room uses +1 before comparing a key and -1 when
-- the key was right, so only wrong keys stay counted.
-- -----------------------------------------------------------------------------
create function watchium_private.count_key_attempt(p_subject text, p_action text, p_delta integer)
returns integer
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
declare
  v_rule         watchium_private.rate_limit_rules;
  v_window_start timestamptz;
  v_count        integer;
begin
  select * into strict v_rule from watchium_private.rate_limit_rules as r where r.action = p_action;
  v_window_start := pg_catalog.to_timestamp(
    pg_catalog.floor(extract(epoch from pg_catalog.now()) / (v_rule.window_minutes * 60))
      * (v_rule.window_minutes * 60)
  );
  insert into watchium_private.rate_limit_counters as c
    (subject, action, window_minutes, window_start, request_count)
  values (p_subject, p_action, v_rule.window_minutes, v_window_start, greatest(p_delta, 0))
  on conflict (subject, action, window_minutes, window_start)
    do update set request_count = greatest(c.request_count + p_delta, 0)
  returning c.request_count into v_count;
  return v_rule.max_requests - v_count;
end;
$$;
comment on function watchium_private.count_key_attempt(text, text, integer) is
  'Adds p_delta to p_subject''s counter of p_action in the current window of its rule and returns the requests left. Internal (access key attempts).';
revoke all on function watchium_private.count_key_attempt(text, text, integer) from public;

-- -----------------------------------------------------------------------------
-- watchium_private.check_membership_cap(user_id): WD409 when the user is
-- already a member of max_memberships_per_user rooms. Takes a transaction
-- advisory lock per user first, so concurrent joins of one user cannot pass
-- the cap together. Callers (create_room, join_room) take it after any room
-- row lock they hold and take no room lock after it, so it adds no lock cycle.
-- -----------------------------------------------------------------------------
create function watchium_private.check_membership_cap(p_user_id text)
returns void
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
declare
  v_cap   integer := watchium_private.setting_integer('max_memberships_per_user');
  v_count integer;
begin
  perform pg_catalog.pg_advisory_xact_lock(
    pg_catalog.hashtext('watchium_private.room_members:' || p_user_id));
  select pg_catalog.count(*) into v_count
  from public.room_members as m
  where m.user_id = p_user_id;
  if v_count >= v_cap then
    raise exception 'you are already a member of % rooms, the most one user may be in (max_memberships_per_user = %)',
      v_count, v_cap
      using errcode = 'WD409',
            hint = 'Leave a room (leave_room) before joining or creating another.';
  end if;
end;
$$;
comment on function watchium_private.check_membership_cap(text) is
  'Raises WD409 when p_user_id is a member of max_memberships_per_user rooms already (serialized per user by an advisory lock). Internal.';
revoke all on function watchium_private.check_membership_cap(text) from public;

-- -----------------------------------------------------------------------------
-- watchium_private.ensure_anchor(anime_id, episode): the id of the episode's
-- anchor comment, created when missing. Race-free: the unique partial index
-- comments_one_anchor_idx plus ON CONFLICT DO NOTHING; a loser of the race
-- waits for the winner's commit and then reads its row.
-- -----------------------------------------------------------------------------
create function watchium_private.ensure_anchor(p_anime_id text, p_episode_number integer)
returns bigint
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
declare
  v_id bigint;
begin
  -- Retried only when the existing anchor is deleted between the two statements.
  for v_attempt in 1 .. 3 loop
    insert into public.comments (anime_id, episode_number, username, message, is_anchor)
    values (p_anime_id, p_episode_number, 'system',
            'Discussion for Episode ' || p_episode_number, true)
    on conflict (anime_id, episode_number) where is_anchor do nothing
    returning id into v_id;
    if v_id is null then
      select c.id into v_id
      from public.comments as c
      where c.anime_id = p_anime_id and c.episode_number = p_episode_number and c.is_anchor;
    end if;
    -- Null only if the existing anchor was deleted between the two statements.
    if v_id is not null then
      return v_id;
    end if;
  end loop;
  raise exception 'the anchor of % episode % keeps disappearing', p_anime_id, p_episode_number
    using errcode = 'WD409', hint = 'Retry the request.';
end;
$$;
comment on function watchium_private.ensure_anchor(text, integer) is
  'Returns the anchor comment of an episode thread, creating it once ("Discussion for Episode N"); race-free. Internal.';
revoke all on function watchium_private.ensure_anchor(text, integer) from public;

-- =============================================================================
-- Host authority triggers on public.room_members
-- =============================================================================

-- -----------------------------------------------------------------------------
-- tg_room_members__sync_room_host: rooms.host_user_id / host_username follow
-- the member flagged is_host. A member losing the flag (or deleted) clears
-- them; a member gaining it sets them, and when the host actually changed,
-- writes the system comment "became the new host" (user_id: the new host) and emits host_changed.
-- Row-level: fires for each flag change, including the promotions made by
-- _300_member_left.
-- A host losing the flag clears rooms.host_user_id before its successor gains
-- it (the one-host index needs that order), so the departing host is kept in
-- the transaction-local setting watchium.previous_hosts ({room_id: user_id})
-- for host_changed.previous_host_user_id, and taken out when it is used.
-- -----------------------------------------------------------------------------
create function watchium_private.tg_room_members__sync_room_host()
returns trigger
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
  v_room     public.rooms;
  v_previous jsonb;
begin
  if tg_op in ('UPDATE', 'DELETE') and old.is_host
     and (tg_op = 'DELETE' or not new.is_host) then
    update public.rooms as r
    set host_user_id = null, host_username = null
    where r.room_id = old.room_id and r.host_user_id = old.user_id;
    v_previous := coalesce(nullif(pg_catalog.current_setting('watchium.previous_hosts', true), ''), '{}')::jsonb;
    perform pg_catalog.set_config('watchium.previous_hosts',
      (v_previous || pg_catalog.jsonb_build_object(old.room_id, old.user_id))::text, true);
  end if;

  if tg_op in ('INSERT', 'UPDATE') and new.is_host then
    select * into v_room from public.rooms as r where r.room_id = new.room_id;
    if not found then
      return null;
    end if;
    if (v_room.host_user_id, v_room.host_username) is distinct from (new.user_id, new.username) then
      update public.rooms as r
      set host_user_id = new.user_id, host_username = new.username
      where r.room_id = new.room_id;
    end if;
    if v_room.host_user_id is distinct from new.user_id then
      v_previous := coalesce(nullif(pg_catalog.current_setting('watchium.previous_hosts', true), ''), '{}')::jsonb;
      if v_previous ? new.room_id then
        perform pg_catalog.set_config('watchium.previous_hosts', (v_previous - new.room_id)::text, true);
      end if;
      -- Our own fixed text; the member it is about is user_id (never their
      -- username in the text: a username must not speak with the system's voice).
      insert into public.comments (anime_id, room_id, episode_number, user_id, username, message, is_system_message)
      values (v_room.anime_id, v_room.room_id, v_room.episode_number, new.user_id, 'system',
              'became the new host', true);
      perform watchium_private.emit_room_event(new.room_id, 'host_changed', pg_catalog.jsonb_build_object(
        'host_user_id', new.user_id,
        'host_username', new.username,
        'previous_host_user_id', coalesce(v_room.host_user_id, v_previous ->> new.room_id)
      ));
    end if;
  end if;
  return null;
end;
$$;
comment on function watchium_private.tg_room_members__sync_room_host() is
  'Trigger function: keeps rooms.host_user_id/host_username equal to the member flagged is_host; on a new host writes the system comment "became the new host" (user_id: the new host) and emits host_changed.';
revoke all on function watchium_private.tg_room_members__sync_room_host() from public;

create trigger _200_sync_room_host
  after insert or delete or update of is_host, username on public.room_members
  for each row execute function watchium_private.tg_room_members__sync_room_host();
comment on trigger _200_sync_room_host on public.room_members is
  'Mirrors the is_host member into rooms.host_user_id/host_username; system comment and host_changed on a new host.';

-- -----------------------------------------------------------------------------
-- tg_room_members__member_joined: for the members inserted by one statement,
-- set-based: room activity, the system comment "joined the room" (user_id:
-- the member), a join
-- record in sync_states at the room's expected position, member_joined, and
-- a host for a room that has none (an emptied room being joined again): its
-- first new member (joined_at, then user_id), flagged after its join comment
-- and event, so "became the new host" and host_changed follow them and
-- member_joined.is_host already says true.
-- -----------------------------------------------------------------------------
create function watchium_private.tg_room_members__member_joined()
returns trigger
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
  v_new_hosts jsonb;
begin
  select coalesce(pg_catalog.jsonb_object_agg(f.room_id, f.user_id), '{}'::jsonb)
  into v_new_hosts
  from (
    select distinct on (n.room_id) n.room_id, n.user_id
    from new_members as n
    join public.rooms as r on r.room_id = n.room_id
    where r.host_user_id is null
      and not exists (select from new_members as h where h.room_id = n.room_id and h.is_host)
    order by n.room_id, n.joined_at, n.user_id
  ) as f;

  update public.rooms as r
  set last_activity = pg_catalog.now()
  where r.room_id in (select n.room_id from new_members as n)
    and r.last_activity is distinct from pg_catalog.now();

  insert into public.comments (anime_id, room_id, episode_number, user_id, username, message, is_system_message)
  select r.anime_id, r.room_id, r.episode_number, n.user_id, 'system', 'joined the room', true
  from new_members as n
  join public.rooms as r on r.room_id = n.room_id
  order by n.joined_at, n.user_id;

  insert into public.sync_states
    (room_id, user_id, host_time, member_time, time_difference, is_synced, sync_event_type)
  select n.room_id, n.user_id, e.position, e.position, 0, true, 'join'
  from new_members as n
  join public.rooms as r on r.room_id = n.room_id
  cross join lateral (select watchium_private.room_expected_position(r) as position) as e;

  perform watchium_private.emit_room_event(n.room_id, 'member_joined', pg_catalog.jsonb_build_object(
    'user_id', n.user_id,
    'username', n.username,
    'avatar_url', n.avatar_url,
    'is_host', n.is_host or v_new_hosts ->> n.room_id is not distinct from n.user_id,
    'joined_at', n.joined_at
  ))
  from new_members as n
  order by n.joined_at, n.user_id;

  if v_new_hosts <> '{}'::jsonb then
    update public.room_members as m
    set is_host = true
    from pg_catalog.jsonb_each_text(v_new_hosts) as h(room_id, user_id)
    where m.room_id = h.room_id and m.user_id = h.user_id;
  end if;

  return null;
end;
$$;
comment on function watchium_private.tg_room_members__member_joined() is
  'Trigger function (statement level): room activity, "joined the room" (user_id: the member), a join sync record and member_joined for each new member; the first new member of a room without host becomes host.';
revoke all on function watchium_private.tg_room_members__member_joined() from public;

create trigger _300_member_joined
  after insert on public.room_members
  referencing new table as new_members
  for each statement execute function watchium_private.tg_room_members__member_joined();
comment on trigger _300_member_joined on public.room_members is
  'Per inserted member: room activity, "joined the room", a join sync record, member_joined; a host for a room without one.';

-- -----------------------------------------------------------------------------
-- tg_room_members__member_left: for the members deleted by one statement
-- whose room still exists (not a room deletion), set-based: a leave record in
-- sync_states, room activity (an emptied room's grace period starts here),
-- and host succession: a room left without host gets its longest-present
-- member (earliest joined_at, then user_id) as host. The promotion is an
-- UPDATE of is_host, so _200_sync_room_host mirrors it into rooms and writes
-- "became the new host". member_left / member_kicked events are emitted by
-- the caller, which knows why the member went.
-- Callers hold the room row lock (lock order); the update of rooms here is
-- then no new lock.
-- -----------------------------------------------------------------------------
create function watchium_private.tg_room_members__member_left()
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
revoke all on function watchium_private.tg_room_members__member_left() from public;

create trigger _300_member_left
  after delete on public.room_members
  referencing old table as old_members
  for each statement execute function watchium_private.tg_room_members__member_left();
comment on trigger _300_member_left on public.room_members is
  'Per deleted member of a surviving room: leave sync record, room activity, host succession.';

-- =============================================================================
-- Rooms
-- =============================================================================

-- -----------------------------------------------------------------------------
-- public.create_room: a new room with the caller as its first member and host.
--
-- The id is drawn at random and inserted with ON CONFLICT DO NOTHING, retried
-- on the (astronomically rare) collision: never check-then-insert. A private
-- room gets a 6-digit access key, kept in watchium_private.room_secrets and
-- returned here to the host only. The episode's anchor comment is created.
-- Returns {room, membership, access_key} (access_key null for public rooms).
-- Security definer: writes rooms, room_members and room_secrets, which
-- clients cannot write.
-- -----------------------------------------------------------------------------
create function watchium_rpc.create_room(
  p_title text,
  p_anime_id text,
  p_anime_title text,
  p_episode_number integer,
  p_video_url text,
  p_username text,
  p_source_id text default null,
  p_is_public boolean default true,
  p_avatar_url text default null
)
returns jsonb
language plpgsql
volatile
security definer  -- writes tables and secrets that no client may write directly
set search_path = pg_catalog, pg_temp
as $$
declare
  v_user_id     text := watchium_private.require_user_id();
  v_title       text := watchium_private.check_text('p_title', p_title, 1, 200);
  v_anime_id    text := watchium_private.check_text('p_anime_id', p_anime_id, 1, 100);
  v_anime_title text := watchium_private.check_text('p_anime_title', p_anime_title, 1, 300);
  v_episode     integer := watchium_private.check_episode('p_episode_number', p_episode_number);
  v_video_url   text := watchium_private.check_url('p_video_url', p_video_url);
  v_username    text := watchium_private.check_username('p_username', p_username);
  v_source_id   text := watchium_private.check_text('p_source_id', p_source_id, 1, 100);
  v_avatar_url  text := watchium_private.check_url('p_avatar_url', p_avatar_url);
  v_room        public.rooms;
  v_member      public.room_members;
  v_access_key  text;
begin
  -- Sizes first (22001), before any other work.
  perform watchium_private.check_size('p_title', pg_catalog.octet_length(p_title), 800);
  perform watchium_private.check_size('p_anime_id', pg_catalog.octet_length(p_anime_id), 400);
  perform watchium_private.check_size('p_anime_title', pg_catalog.octet_length(p_anime_title), 1200);
  perform watchium_private.check_size('p_video_url', pg_catalog.octet_length(p_video_url), 8192);
  perform watchium_private.check_size('p_username', pg_catalog.octet_length(p_username), 200);
  perform watchium_private.check_size('p_source_id', pg_catalog.octet_length(p_source_id), 400);
  perform watchium_private.check_size('p_avatar_url', pg_catalog.octet_length(p_avatar_url), 8192);
  if v_title is null or v_anime_id is null or v_anime_title is null
     or v_video_url is null or v_username is null then
    raise exception '% is required',
      case when v_title is null then 'p_title' when v_anime_id is null then 'p_anime_id'
           when v_anime_title is null then 'p_anime_title' when v_video_url is null then 'p_video_url'
           else 'p_username' end
      using errcode = '22023';
  end if;
  if p_is_public is null then
    raise exception 'p_is_public must be true or false' using errcode = '22023';
  end if;
  perform watchium_private.enforce_rate_limit(v_user_id, 'create_room');
  perform watchium_private.check_membership_cap(v_user_id);

  for attempt in 1..5 loop
    insert into public.rooms as r
      (room_id, title, anime_id, anime_title, episode_number, video_url, source_id,
       host_user_id, host_username, is_public)
    values (watchium_private.generate_room_id(), v_title, v_anime_id, v_anime_title, v_episode,
            v_video_url, v_source_id, v_user_id, v_username, p_is_public)
    on conflict (room_id) do nothing
    returning * into v_room;
    exit when v_room.room_id is not null;
  end loop;
  if v_room.room_id is null then
    raise exception 'could not allocate a room id after 5 attempts'
      using errcode = 'WD409', hint = 'Retry the call.';
  end if;

  if not p_is_public then
    v_access_key := watchium_private.generate_access_key();
    insert into watchium_private.room_secrets (room_id, access_key)
    values (v_room.room_id, v_access_key);
  end if;

  insert into public.room_members (room_id, user_id, username, avatar_url, is_host)
  values (v_room.room_id, v_user_id, v_username, v_avatar_url, true)
  returning * into v_member;

  perform watchium_private.ensure_anchor(v_anime_id, v_episode);

  select * into v_room from public.rooms as r where r.room_id = v_room.room_id;
  return pg_catalog.jsonb_build_object(
    'room', pg_catalog.to_jsonb(v_room),
    'membership', pg_catalog.to_jsonb(v_member),
    'access_key', v_access_key
  );
end;
$$;
comment on function watchium_rpc.create_room(text, text, text, integer, text, text, text, boolean, text) is
  'Body of public.create_room (same arguments, result and errors; documented there). Security definer: writes tables and secrets that no client may write directly. Callers reach it through public.create_room, a security invoker entry point; schema watchium_rpc is not exposed by the Data API.';
revoke all on function watchium_rpc.create_room(text, text, text, integer, text, text, text, boolean, text) from public;
grant execute on function watchium_rpc.create_room(text, text, text, integer, text, text, text, boolean, text)
  to authenticated, service_role;

-- -----------------------------------------------------------------------------
-- public.create_room: the Data API entry point; its body is
-- watchium_rpc.create_room above. Security invoker: it runs with the caller's
-- rights and only passes the arguments on; the body checks them and the
-- caller's identity itself.
-- -----------------------------------------------------------------------------
create function public.create_room(
  p_title text,
  p_anime_id text,
  p_anime_title text,
  p_episode_number integer,
  p_video_url text,
  p_username text,
  p_source_id text default null,
  p_is_public boolean default true,
  p_avatar_url text default null
)
returns jsonb
language plpgsql
volatile
security invoker  -- the body is the security definer function
set search_path = pg_catalog, pg_temp
set lock_timeout = '2s'  -- bounded lock waits; tuned by the rpc_lock_timeout setting
as $$
begin
  return watchium_rpc.create_room(p_title, p_anime_id, p_anime_title, p_episode_number,
    p_video_url, p_username, p_source_id, p_is_public, p_avatar_url);
end;
$$;
comment on function public.create_room(text, text, text, integer, text, text, text, boolean, text) is
  'Creates a room with the caller as first member and host. Private rooms (p_is_public false) get a 6-digit access key, returned only here (and to the host by get_room / get_room_access_key). Returns {room, membership, access_key}.';
revoke all on function public.create_room(text, text, text, integer, text, text, text, boolean, text) from public, anon;
grant execute on function public.create_room(text, text, text, integer, text, text, text, boolean, text)
  to authenticated, service_role;

-- -----------------------------------------------------------------------------
-- public.join_room: the caller joins a room.
--
-- Public rooms need no key. Private rooms need the access key; a wrong key is
-- not an error but a result {status: 'invalid_access_key', attempts_left}, so
-- that the transaction commits and the attempt stays counted (a raised error
-- would roll its own count back). Two budgets, both checked before the key
-- is compared (WD429 when spent, even for the right key):
--   * per user (rule join_room_key_user): wrong keys one user may try per
--     hour, over all rooms; a right key is refunded;
--   * per key (room_secrets.wrong_attempts): wrong keys all users together
--     may try against this key: access_key_guess_budget plus
--     access_key_guess_budget_per_hour per full hour of the key's age.
--     A new key (update_room rotating it) starts from 0, so the host can
--     always let people with the new key in at once, and guesses made
--     against the old key count for nothing.
-- The room row lock serializes attempts on one room, so wrong_attempts is
-- exact. Joining again is idempotent: {status: 'already_member'} and the
-- membership, no key needed. A user in max_memberships_per_user rooms
-- already gets WD409. Joining an empty room makes the caller its host.
-- Returns {status: 'joined' | 'already_member', room, membership} or
-- {status: 'invalid_access_key', attempts_left}.
-- Security definer: writes room_members and reads room_secrets.
-- -----------------------------------------------------------------------------
create function watchium_rpc.join_room(
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
revoke all on function watchium_rpc.join_room(text, text, text, text) from public;
grant execute on function watchium_rpc.join_room(text, text, text, text)
  to authenticated, service_role;

-- -----------------------------------------------------------------------------
-- public.join_room: the Data API entry point; its body is
-- watchium_rpc.join_room above. Security invoker: it runs with the caller's
-- rights and only passes the arguments on; the body checks them and the
-- caller's identity itself.
-- -----------------------------------------------------------------------------
create function public.join_room(
  p_room_id text,
  p_access_key text default null,
  p_username text default null,
  p_avatar_url text default null
)
returns jsonb
language plpgsql
volatile
security invoker  -- the body is the security definer function
set search_path = pg_catalog, pg_temp
set lock_timeout = '2s'  -- bounded lock waits; tuned by the rpc_lock_timeout setting
as $$
begin
  return watchium_rpc.join_room(p_room_id, p_access_key, p_username, p_avatar_url);
end;
$$;
comment on function public.join_room(text, text, text, text) is
  'Joins a room as the caller (idempotent). Private rooms need p_access_key; a wrong key returns {status: invalid_access_key, attempts_left} and is counted per user and per key (WD429 once either budget is spent; a rotated key starts a new budget). WD409 past max_memberships_per_user. Returns {status, room, membership}.';
revoke all on function public.join_room(text, text, text, text) from public, anon;
grant execute on function public.join_room(text, text, text, text) to authenticated, service_role;

-- -----------------------------------------------------------------------------
-- watchium_private.remove_member(room, user_id, event, payload): emits the
-- event, then deletes the membership; the _300_member_left trigger writes the
-- leave record and hands host on. The caller holds the room row lock.
-- -----------------------------------------------------------------------------
create function watchium_private.remove_member(
  p_room public.rooms,
  p_user_id text,
  p_event text,
  p_payload jsonb
)
returns boolean
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
begin
  if not exists (
    select from public.room_members as m where m.room_id = p_room.room_id and m.user_id = p_user_id
  ) then
    return false;
  end if;
  perform watchium_private.emit_room_event(p_room.room_id, p_event, p_payload);
  delete from public.room_members as m where m.room_id = p_room.room_id and m.user_id = p_user_id;
  return true;
end;
$$;
comment on function watchium_private.remove_member(public.rooms, text, text, jsonb) is
  'Emits p_event and deletes the member (triggers hand host on); false when not a member. Caller holds the room lock. Internal.';
revoke all on function watchium_private.remove_member(public.rooms, text, text, jsonb) from public;

-- -----------------------------------------------------------------------------
-- public.leave_room: the caller leaves. Idempotent: {status: 'not_member'}
-- when the caller was not a member of a public room; a private room answers
-- a non-member P0002, as a missing room does (no host id leaks). When the host leaves, the longest-present
-- member becomes host; the last member leaving leaves an empty room that
-- maintenance deletes after empty_room_grace.
-- Security definer: deletes from room_members.
-- -----------------------------------------------------------------------------
create function watchium_rpc.leave_room(p_room_id text)
returns jsonb
language plpgsql
volatile
security definer  -- deletes from room_members, which no client may write
set search_path = pg_catalog, pg_temp
as $$
declare
  v_user_id text := watchium_private.require_user_id();
  v_room    public.rooms;
  v_left    boolean;
begin
  -- Sizes first (22001), before any other work.
  perform watchium_private.check_size('p_room_id', pg_catalog.octet_length(p_room_id), 40);
  perform watchium_private.enforce_rate_limit(v_user_id, 'leave_room');
  v_room := watchium_private.lock_room(p_room_id);
  perform watchium_private.hide_private_room(v_room, p_room_id, v_user_id);
  v_left := watchium_private.remove_member(v_room, v_user_id, 'member_left',
    pg_catalog.jsonb_build_object('user_id', v_user_id, 'reason', 'left'));
  select * into v_room from public.rooms as r where r.room_id = v_room.room_id;
  return pg_catalog.jsonb_build_object(
    'status', case when v_left then 'left' else 'not_member' end,
    'room_id', v_room.room_id,
    'host_user_id', v_room.host_user_id
  );
end;
$$;
comment on function watchium_rpc.leave_room(text) is
  'Body of public.leave_room (same arguments, result and errors; documented there). Security definer: deletes from room_members, which no client may write. Callers reach it through public.leave_room, a security invoker entry point; schema watchium_rpc is not exposed by the Data API.';
revoke all on function watchium_rpc.leave_room(text) from public;
grant execute on function watchium_rpc.leave_room(text) to authenticated, service_role;

-- -----------------------------------------------------------------------------
-- public.leave_room: the Data API entry point; its body is
-- watchium_rpc.leave_room above. Security invoker: it runs with the caller's
-- rights and only passes the arguments on; the body checks them and the
-- caller's identity itself.
-- -----------------------------------------------------------------------------
create function public.leave_room(p_room_id text)
returns jsonb
language plpgsql
volatile
security invoker  -- the body is the security definer function
set search_path = pg_catalog, pg_temp
set lock_timeout = '2s'  -- bounded lock waits; tuned by the rpc_lock_timeout setting
as $$
begin
  return watchium_rpc.leave_room(p_room_id);
end;
$$;
comment on function public.leave_room(text) is
  'The caller leaves the room (idempotent). Host leaving hands host to the longest-present member. Returns {status: left | not_member, room_id, host_user_id}.';
revoke all on function public.leave_room(text) from public, anon;
grant execute on function public.leave_room(text) to authenticated, service_role;

-- -----------------------------------------------------------------------------
-- public.kick_member: the host removes another member (member_kicked).
-- Security definer: deletes from room_members.
-- -----------------------------------------------------------------------------
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

-- -----------------------------------------------------------------------------
-- public.transfer_host: the host hands host to another member. The old flag
-- is cleared before the new one is set (the unique index allows no moment
-- with two); _200_sync_room_host mirrors it and writes the system comment.
-- Security definer: updates room_members.
-- -----------------------------------------------------------------------------
create function watchium_rpc.transfer_host(p_room_id text, p_new_host text)
returns jsonb
language plpgsql
volatile
security definer  -- updates room_members, which no client may write
set search_path = pg_catalog, pg_temp
as $$
declare
  v_user_id text := watchium_private.require_user_id();
  v_room    public.rooms;
begin
  -- Sizes first (22001), before any other work.
  perform watchium_private.check_size('p_room_id', pg_catalog.octet_length(p_room_id), 40);
  perform watchium_private.check_size('p_new_host', pg_catalog.octet_length(p_new_host), 400);
  if p_new_host is null or pg_catalog.char_length(p_new_host) not between 1 and 100 then
    raise exception 'p_new_host must be a user id of 1 to 100 characters' using errcode = '22023';
  end if;
  perform watchium_private.enforce_rate_limit(v_user_id, 'transfer_host');
  v_room := watchium_private.lock_room(p_room_id);
  perform watchium_private.hide_private_room(v_room, p_room_id, v_user_id);
  perform watchium_private.require_host(v_room, v_user_id);
  if not exists (
    select from public.room_members as m where m.room_id = v_room.room_id and m.user_id = p_new_host
  ) then
    raise exception 'p_new_host % is not a member of room %', p_new_host, v_room.room_id
      using errcode = 'P0002';
  end if;
  if p_new_host <> v_user_id then
    update public.room_members as m set is_host = false
    where m.room_id = v_room.room_id and m.user_id = v_user_id;
    update public.room_members as m set is_host = true
    where m.room_id = v_room.room_id and m.user_id = p_new_host;
  end if;
  return pg_catalog.jsonb_build_object('room_id', v_room.room_id, 'host_user_id', p_new_host);
end;
$$;
comment on function watchium_rpc.transfer_host(text, text) is
  'Body of public.transfer_host (same arguments, result and errors; documented there). Security definer: updates room_members, which no client may write. Callers reach it through public.transfer_host, a security invoker entry point; schema watchium_rpc is not exposed by the Data API.';
revoke all on function watchium_rpc.transfer_host(text, text) from public;
grant execute on function watchium_rpc.transfer_host(text, text) to authenticated, service_role;

-- -----------------------------------------------------------------------------
-- public.transfer_host: the Data API entry point; its body is
-- watchium_rpc.transfer_host above. Security invoker: it runs with the caller's
-- rights and only passes the arguments on; the body checks them and the
-- caller's identity itself.
-- -----------------------------------------------------------------------------
create function public.transfer_host(p_room_id text, p_new_host text)
returns jsonb
language plpgsql
volatile
security invoker  -- the body is the security definer function
set search_path = pg_catalog, pg_temp
set lock_timeout = '2s'  -- bounded lock waits; tuned by the rpc_lock_timeout setting
as $$
begin
  return watchium_rpc.transfer_host(p_room_id, p_new_host);
end;
$$;
comment on function public.transfer_host(text, text) is
  'Host only: makes member p_new_host the host (a no-op for yourself). 42501 for non-hosts, P0002 when p_new_host is not a member.';
revoke all on function public.transfer_host(text, text) from public, anon;
grant execute on function public.transfer_host(text, text) to authenticated, service_role;

-- -----------------------------------------------------------------------------
-- public.update_room: the host changes title, episode, video URL or privacy.
--
-- Null arguments are left unchanged; at least one change is required.
-- Changing the episode resets playback to 0, paused, and creates the
-- episode's anchor comment. Making a room private, or p_rotate_access_key on
-- a private room, draws a new access key (returned here); making it public
-- drops the key. Emits room_updated with the changed fields (never the key).
-- Returns {room, access_key} (access_key only when a new one was drawn).
-- Security definer: updates rooms and room_secrets.
-- -----------------------------------------------------------------------------
create function watchium_rpc.update_room(
  p_room_id text,
  p_title text default null,
  p_episode_number integer default null,
  p_video_url text default null,
  p_is_public boolean default null,
  p_rotate_access_key boolean default false
)
returns jsonb
language plpgsql
volatile
security definer  -- updates rooms and room_secrets, which no client may write
set search_path = pg_catalog, pg_temp
as $$
declare
  v_user_id   text := watchium_private.require_user_id();
  v_title     text := watchium_private.check_text('p_title', p_title, 1, 200);
  v_video_url text := watchium_private.check_url('p_video_url', p_video_url);
  v_room      public.rooms;
  v_changes   jsonb := '{}'::jsonb;
  v_new_key   text;
begin
  -- Sizes first (22001), before any other work.
  perform watchium_private.check_size('p_room_id', pg_catalog.octet_length(p_room_id), 40);
  perform watchium_private.check_size('p_title', pg_catalog.octet_length(p_title), 800);
  perform watchium_private.check_size('p_video_url', pg_catalog.octet_length(p_video_url), 8192);
  if p_episode_number is not null then
    perform watchium_private.check_episode('p_episode_number', p_episode_number);
  end if;
  if v_title is null and p_episode_number is null and v_video_url is null
     and p_is_public is null and not coalesce(p_rotate_access_key, false) then
    raise exception 'nothing to update: pass at least one of p_title, p_episode_number, p_video_url, p_is_public, p_rotate_access_key'
      using errcode = '22023';
  end if;
  perform watchium_private.enforce_rate_limit(v_user_id, 'update_room');
  v_room := watchium_private.lock_room(p_room_id);
  perform watchium_private.hide_private_room(v_room, p_room_id, v_user_id);
  perform watchium_private.require_host(v_room, v_user_id);

  if coalesce(p_rotate_access_key, false) and coalesce(p_is_public, v_room.is_public) then
    raise exception 'p_rotate_access_key needs a private room: public rooms have no access key'
      using errcode = '22023';
  end if;

  if v_title is not null and v_title <> v_room.title then
    v_changes := v_changes || pg_catalog.jsonb_build_object('title', v_title);
  end if;
  if p_episode_number is not null and p_episode_number <> v_room.episode_number then
    v_changes := v_changes || pg_catalog.jsonb_build_object('episode_number', p_episode_number);
  end if;
  if v_video_url is not null and v_video_url <> v_room.video_url then
    v_changes := v_changes || pg_catalog.jsonb_build_object('video_url', v_video_url);
  end if;
  if p_is_public is not null and p_is_public <> v_room.is_public then
    v_changes := v_changes || pg_catalog.jsonb_build_object('is_public', p_is_public);
  end if;

  update public.rooms as r
  set title = coalesce(v_title, r.title),
      video_url = coalesce(v_video_url, r.video_url),
      is_public = coalesce(p_is_public, r.is_public),
      episode_number = coalesce(p_episode_number, r.episode_number),
      current_playback_time = case when v_changes ? 'episode_number' then 0 else r.current_playback_time end,
      is_playing = case when v_changes ? 'episode_number' then false else r.is_playing end,
      playback_updated_at = case when v_changes ? 'episode_number' then pg_catalog.now() else r.playback_updated_at end,
      last_activity = pg_catalog.now()
  where r.room_id = v_room.room_id
  returning * into v_room;

  if v_changes ? 'episode_number' then
    perform watchium_private.ensure_anchor(v_room.anime_id, v_room.episode_number);
  end if;

  if v_room.is_public then
    delete from watchium_private.room_secrets as s where s.room_id = v_room.room_id;
  elsif v_changes ? 'is_public' or coalesce(p_rotate_access_key, false) then
    v_new_key := watchium_private.generate_access_key();
    insert into watchium_private.room_secrets as s (room_id, access_key)
    values (v_room.room_id, v_new_key)
    on conflict (room_id) do update
      set access_key = excluded.access_key, created_at = pg_catalog.now(), wrong_attempts = 0;
    v_changes := v_changes || '{"access_key_rotated": true}'::jsonb;
  end if;

  if v_changes <> '{}'::jsonb then
    perform watchium_private.emit_room_event(v_room.room_id, 'room_updated', v_changes);
  end if;
  -- A new episode is a playback change too (paused at 0): the same playback
  -- event as the host controls, so players follow from one event.
  if v_changes ? 'episode_number' then
    perform watchium_private.emit_room_event(v_room.room_id, 'playback', pg_catalog.jsonb_build_object(
      'room_id', v_room.room_id,
      'action', 'episode',
      'is_playing', v_room.is_playing,
      'current_time', v_room.current_playback_time,
      'playback_speed', v_room.playback_speed,
      'playback_updated_at', v_room.playback_updated_at,
      'episode_number', v_room.episode_number,
      'host_user_id', v_room.host_user_id
    ));
  end if;
  return pg_catalog.jsonb_build_object('room', pg_catalog.to_jsonb(v_room), 'access_key', v_new_key);
end;
$$;
comment on function watchium_rpc.update_room(text, text, integer, text, boolean, boolean) is
  'Body of public.update_room (same arguments, result and errors; documented there). Security definer: updates rooms and room_secrets, which no client may write. Callers reach it through public.update_room, a security invoker entry point; schema watchium_rpc is not exposed by the Data API.';
revoke all on function watchium_rpc.update_room(text, text, integer, text, boolean, boolean) from public;
grant execute on function watchium_rpc.update_room(text, text, integer, text, boolean, boolean)
  to authenticated, service_role;

-- -----------------------------------------------------------------------------
-- public.update_room: the Data API entry point; its body is
-- watchium_rpc.update_room above. Security invoker: it runs with the caller's
-- rights and only passes the arguments on; the body checks them and the
-- caller's identity itself.
-- -----------------------------------------------------------------------------
create function public.update_room(
  p_room_id text,
  p_title text default null,
  p_episode_number integer default null,
  p_video_url text default null,
  p_is_public boolean default null,
  p_rotate_access_key boolean default false
)
returns jsonb
language plpgsql
volatile
security invoker  -- the body is the security definer function
set search_path = pg_catalog, pg_temp
set lock_timeout = '2s'  -- bounded lock waits; tuned by the rpc_lock_timeout setting
as $$
begin
  return watchium_rpc.update_room(p_room_id, p_title, p_episode_number, p_video_url,
    p_is_public, p_rotate_access_key);
end;
$$;
comment on function public.update_room(text, text, integer, text, boolean, boolean) is
  'Host only: changes title, episode (resets playback, creates the anchor), video URL or privacy (a new access key when made private or rotated). Emits room_updated, and playback (action episode) when the episode changed. Returns {room, access_key}.';
revoke all on function public.update_room(text, text, integer, text, boolean, boolean) from public, anon;
grant execute on function public.update_room(text, text, integer, text, boolean, boolean)
  to authenticated, service_role;

-- -----------------------------------------------------------------------------
-- public.delete_room: the host deletes the room. Members, presence, the key
-- and the room's comments go with it (cascade). Emits
-- room_deleted first, so subscribers hear it before the room disappears.
-- Security definer: deletes from rooms.
-- -----------------------------------------------------------------------------
create function watchium_rpc.delete_room(p_room_id text)
returns jsonb
language plpgsql
volatile
security definer  -- deletes from rooms, which no client may write
set search_path = pg_catalog, pg_temp
as $$
declare
  v_user_id text := watchium_private.require_user_id();
  v_room    public.rooms;
begin
  -- Sizes first (22001), before any other work.
  perform watchium_private.check_size('p_room_id', pg_catalog.octet_length(p_room_id), 40);
  perform watchium_private.enforce_rate_limit(v_user_id, 'delete_room');
  v_room := watchium_private.lock_room(p_room_id);
  perform watchium_private.hide_private_room(v_room, p_room_id, v_user_id);
  perform watchium_private.require_host(v_room, v_user_id);
  perform watchium_private.emit_room_event(v_room.room_id, 'room_deleted',
    pg_catalog.jsonb_build_object('reason', 'deleted_by_host', 'deleted_by', v_user_id));
  delete from public.rooms as r where r.room_id = v_room.room_id;
  return pg_catalog.jsonb_build_object('status', 'deleted', 'room_id', v_room.room_id);
end;
$$;
comment on function watchium_rpc.delete_room(text) is
  'Body of public.delete_room (same arguments, result and errors; documented there). Security definer: deletes from rooms, which no client may write. Callers reach it through public.delete_room, a security invoker entry point; schema watchium_rpc is not exposed by the Data API.';
revoke all on function watchium_rpc.delete_room(text) from public;
grant execute on function watchium_rpc.delete_room(text) to authenticated, service_role;

-- -----------------------------------------------------------------------------
-- public.delete_room: the Data API entry point; its body is
-- watchium_rpc.delete_room above. Security invoker: it runs with the caller's
-- rights and only passes the arguments on; the body checks them and the
-- caller's identity itself.
-- -----------------------------------------------------------------------------
create function public.delete_room(p_room_id text)
returns jsonb
language plpgsql
volatile
security invoker  -- the body is the security definer function
set search_path = pg_catalog, pg_temp
set lock_timeout = '2s'  -- bounded lock waits; tuned by the rpc_lock_timeout setting
as $$
begin
  return watchium_rpc.delete_room(p_room_id);
end;
$$;
comment on function public.delete_room(text) is
  'Host only: deletes the room with its memberships and its comments. Emits room_deleted.';
revoke all on function public.delete_room(text) from public, anon;
grant execute on function public.delete_room(text) to authenticated, service_role;

-- -----------------------------------------------------------------------------
-- public.get_room: what the caller may see of a room: the room, its members
-- (joined_at order), whether the caller is a member / the host, and the
-- access key when the caller is the host. Public rooms are visible to every
-- signed-in caller, private rooms to their members (and to trusted callers);
-- otherwise P0002, the same as a missing room.
-- Security definer: reads room_secrets for the host.
-- -----------------------------------------------------------------------------
create function watchium_rpc.get_room(p_room_id text)
returns jsonb
language plpgsql
stable
security definer  -- reads room_secrets for the host; visibility is checked here
set search_path = pg_catalog, pg_temp
as $$
declare
  v_user_id   text := watchium_private.current_user_id();
  v_room      public.rooms;
  v_is_member boolean;
  v_members   jsonb;
begin
  -- Sizes first (22001), before any other work.
  perform watchium_private.check_size('p_room_id', pg_catalog.octet_length(p_room_id), 40);
  if p_room_id is null or p_room_id !~ '^[a-z0-9]{10}$' then
    raise exception 'p_room_id must be a room id: 10 characters of [a-z0-9]' using errcode = '22023';
  end if;
  select * into v_room from public.rooms as r where r.room_id = p_room_id;
  v_is_member := exists (
    select from public.room_members as m where m.room_id = p_room_id and m.user_id = v_user_id
  );
  if v_room.room_id is null
     or not (v_room.is_public or v_is_member or watchium_private.caller_is_trusted()) then
    raise exception 'room % not found', p_room_id using errcode = 'P0002';
  end if;
  select coalesce(pg_catalog.jsonb_agg(pg_catalog.to_jsonb(m) order by m.joined_at, m.user_id), '[]'::jsonb)
    into v_members
  from public.room_members as m
  where m.room_id = p_room_id;
  return pg_catalog.jsonb_build_object(
    'room', pg_catalog.to_jsonb(v_room),
    'members', v_members,
    'member_count', pg_catalog.jsonb_array_length(v_members),
    'is_member', v_is_member,
    'is_host', v_room.host_user_id is not distinct from v_user_id and v_user_id is not null,
    'access_key', case when v_room.host_user_id = v_user_id then (
      select s.access_key from watchium_private.room_secrets as s where s.room_id = p_room_id
    ) end
  );
end;
$$;
comment on function watchium_rpc.get_room(text) is
  'Body of public.get_room (same arguments, result and errors; documented there). Security definer: reads room_secrets for the host; visibility is checked here. Callers reach it through public.get_room, a security invoker entry point; schema watchium_rpc is not exposed by the Data API.';
revoke all on function watchium_rpc.get_room(text) from public;
grant execute on function watchium_rpc.get_room(text) to authenticated, service_role;

-- -----------------------------------------------------------------------------
-- public.get_room: the Data API entry point; its body is watchium_rpc.get_room
-- above. Security invoker: it runs with the caller's rights and only passes the
-- arguments on; the body checks them and the caller's identity itself.
-- -----------------------------------------------------------------------------
create function public.get_room(p_room_id text)
returns jsonb
language plpgsql
stable
security invoker  -- the body is the security definer function
set search_path = pg_catalog, pg_temp
set lock_timeout = '2s'  -- bounded lock waits; tuned by the rpc_lock_timeout setting
as $$
begin
  return watchium_rpc.get_room(p_room_id);
end;
$$;
comment on function public.get_room(text) is
  'The room as the caller may see it: {room, members, member_count, is_member, is_host, access_key (host only)}. P0002 for a missing or invisible room.';
revoke all on function public.get_room(text) from public, anon;
grant execute on function public.get_room(text) to authenticated, service_role;

-- -----------------------------------------------------------------------------
-- public.get_room_access_key: the host reads the room's access key (null for
-- a public room). 42501 for anyone else.
-- Security definer: reads room_secrets.
-- -----------------------------------------------------------------------------
create function watchium_rpc.get_room_access_key(p_room_id text)
returns text
language plpgsql
stable
security definer  -- reads room_secrets, which no client may read
set search_path = pg_catalog, pg_temp
as $$
declare
  v_user_id text := watchium_private.require_user_id();
  v_room    public.rooms;
begin
  -- Sizes first (22001), before any other work.
  perform watchium_private.check_size('p_room_id', pg_catalog.octet_length(p_room_id), 40);
  if p_room_id is null or p_room_id !~ '^[a-z0-9]{10}$' then
    raise exception 'p_room_id must be a room id: 10 characters of [a-z0-9]' using errcode = '22023';
  end if;
  select * into v_room from public.rooms as r where r.room_id = p_room_id;
  perform watchium_private.hide_private_room(v_room, p_room_id, v_user_id);
  perform watchium_private.require_host(v_room, v_user_id);
  return (select s.access_key from watchium_private.room_secrets as s where s.room_id = p_room_id);
end;
$$;
comment on function watchium_rpc.get_room_access_key(text) is
  'Body of public.get_room_access_key (same arguments, result and errors; documented there). Security definer: reads room_secrets, which no client may read. Callers reach it through public.get_room_access_key, a security invoker entry point; schema watchium_rpc is not exposed by the Data API.';
revoke all on function watchium_rpc.get_room_access_key(text) from public;
grant execute on function watchium_rpc.get_room_access_key(text) to authenticated, service_role;

-- -----------------------------------------------------------------------------
-- public.get_room_access_key: the Data API entry point; its body is
-- watchium_rpc.get_room_access_key above. Security invoker: it runs with the
-- caller's rights and only passes the arguments on; the body checks them and
-- the caller's identity itself.
-- -----------------------------------------------------------------------------
create function public.get_room_access_key(p_room_id text)
returns text
language plpgsql
stable
security invoker  -- the body is the security definer function
set search_path = pg_catalog, pg_temp
set lock_timeout = '2s'  -- bounded lock waits; tuned by the rpc_lock_timeout setting
as $$
begin
  return watchium_rpc.get_room_access_key(p_room_id);
end;
$$;
comment on function public.get_room_access_key(text) is
  'Host only: the room''s 6-digit access key (null for public rooms).';
revoke all on function public.get_room_access_key(text) from public, anon;
grant execute on function public.get_room_access_key(text) to authenticated, service_role;

-- -----------------------------------------------------------------------------
-- public.list_public_rooms: public rooms that have members, newest activity
-- first, with member counts; keyset pagination on (last_activity, room_id)
-- through rooms_public_last_activity_idx / rooms_anime_id_last_activity_idx.
-- Returns {items: [room + member_count], next_cursor} (next_cursor null on
-- the last page). Only public rooms, whoever asks.
-- Security definer: calls internal helpers that clients may not execute; it
-- reads public rooms only, which every caller may see anyway.
-- -----------------------------------------------------------------------------
create function watchium_rpc.list_public_rooms(
  p_anime_id text default null,
  p_limit integer default 20,
  p_cursor text default null
)
returns jsonb
language plpgsql
stable
security definer  -- calls internal helpers; returns public rooms only
set search_path = pg_catalog, pg_temp
as $$
declare
  v_limit  integer := watchium_private.check_limit('p_limit', p_limit);
  v_after  timestamptz;
  v_key    text;
  v_items  jsonb;
  v_count  integer;
  v_last   jsonb;
begin
  -- Sizes first (22001), before any other work.
  perform watchium_private.check_size('p_anime_id', pg_catalog.octet_length(p_anime_id), 400);
  perform watchium_private.check_size('p_cursor', pg_catalog.octet_length(p_cursor), 160);
  if p_anime_id is not null and pg_catalog.char_length(p_anime_id) not between 1 and 100 then
    raise exception 'p_anime_id must be 1 to 100 characters' using errcode = '22023';
  end if;
  if p_cursor is not null then
    select c.at, c.key into v_after, v_key from watchium_private.parse_cursor(p_cursor) as c;
  end if;
  select coalesce(pg_catalog.jsonb_agg(
           pg_catalog.to_jsonb(page) order by page.last_activity desc, page.room_id desc), '[]'::jsonb),
         pg_catalog.count(*)
    into v_items, v_count
  from (
    select r.*, (select pg_catalog.count(*) from public.room_members as m where m.room_id = r.room_id) as member_count
    from public.rooms as r
    where r.is_public
      and r.host_user_id is not null
      and (p_anime_id is null or r.anime_id = p_anime_id)
      and (p_cursor is null or (r.last_activity, r.room_id) < (v_after, v_key))
    order by r.last_activity desc, r.room_id desc
    limit v_limit
  ) as page;
  v_last := v_items -> (v_count - 1);
  return pg_catalog.jsonb_build_object(
    'items', v_items,
    'next_cursor', case when v_count = v_limit then watchium_private.make_cursor(
      (v_last ->> 'last_activity')::timestamptz, v_last ->> 'room_id') end
  );
end;
$$;
comment on function watchium_rpc.list_public_rooms(text, integer, text) is
  'Body of public.list_public_rooms (same arguments, result and errors; documented there). Security definer: calls internal helpers; returns public rooms only. Callers reach it through public.list_public_rooms, a security invoker entry point; schema watchium_rpc is not exposed by the Data API.';
revoke all on function watchium_rpc.list_public_rooms(text, integer, text) from public;
grant execute on function watchium_rpc.list_public_rooms(text, integer, text)
  to authenticated, service_role;

-- -----------------------------------------------------------------------------
-- public.list_public_rooms: the Data API entry point; its body is
-- watchium_rpc.list_public_rooms above. Security invoker: it runs with the
-- caller's rights and only passes the arguments on; the body checks them and
-- the caller's identity itself.
-- -----------------------------------------------------------------------------
create function public.list_public_rooms(
  p_anime_id text default null,
  p_limit integer default 20,
  p_cursor text default null
)
returns jsonb
language plpgsql
stable
security invoker  -- the body is the security definer function
set search_path = pg_catalog, pg_temp
set lock_timeout = '2s'  -- bounded lock waits; tuned by the rpc_lock_timeout setting
as $$
begin
  return watchium_rpc.list_public_rooms(p_anime_id, p_limit, p_cursor);
end;
$$;
comment on function public.list_public_rooms(text, integer, text) is
  'Public rooms with members, newest activity first, optionally of one anime: {items (room + member_count), next_cursor}. Keyset pagination: pass next_cursor back as p_cursor.';
revoke all on function public.list_public_rooms(text, integer, text) from public, anon;
grant execute on function public.list_public_rooms(text, integer, text) to authenticated, service_role;

-- =============================================================================
-- Comments
-- =============================================================================

-- -----------------------------------------------------------------------------
-- public.post_comment: the caller comments on an episode thread, optionally
-- in a room (members only; anime and episode must be the room's current ones)
-- and optionally as a reply (the parent must be in the same thread: same
-- anime and episode, and either no room or the same room).
--
-- The message is trimmed and must be 1-2000 characters without control
-- characters (line feeds allowed). p_video_timestamp is seconds 0-86400.
-- Room comments take the member's username and avatar; other comments need
-- p_username. Clients never write system messages or anchors.
-- Returns the comment row as jsonb; room comments emit comment_added.
-- Security definer: inserts into comments, which no client may write.
-- -----------------------------------------------------------------------------
create function watchium_rpc.post_comment(
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
revoke all on function watchium_rpc.post_comment(text, integer, text, text, text, text, bigint, numeric) from public;
grant execute on function watchium_rpc.post_comment(text, integer, text, text, text, text, bigint, numeric)
  to authenticated, service_role;

-- -----------------------------------------------------------------------------
-- public.post_comment: the Data API entry point; its body is
-- watchium_rpc.post_comment above. Security invoker: it runs with the caller's
-- rights and only passes the arguments on; the body checks them and the
-- caller's identity itself.
-- -----------------------------------------------------------------------------
create function public.post_comment(
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
security invoker  -- the body is the security definer function
set search_path = pg_catalog, pg_temp
set lock_timeout = '2s'  -- bounded lock waits; tuned by the rpc_lock_timeout setting
as $$
begin
  return watchium_rpc.post_comment(p_anime_id, p_episode_number, p_message, p_username,
    p_avatar_url, p_room_id, p_parent_id, p_video_timestamp);
end;
$$;
comment on function public.post_comment(text, integer, text, text, text, text, bigint, numeric) is
  'Posts a comment on an episode thread as the caller, optionally in a room (members only), as a reply, at a video time. Message trimmed, 1-2000 characters, no control characters but line feeds. Returns the comment.';
revoke all on function public.post_comment(text, integer, text, text, text, text, bigint, numeric) from public, anon;
grant execute on function public.post_comment(text, integer, text, text, text, text, bigint, numeric)
  to authenticated, service_role;

-- -----------------------------------------------------------------------------
-- watchium_private.own_comment(comment_id, user_id, action): the comment,
-- locked, if the user may p_action ('edit' or 'delete') it:
--   * edit: the author's own comment; a room comment only while the author is
--     a member of that room (a kicked member cannot edit what they wrote);
--   * delete: the author's own comment (also after leaving), or any member's
--     comment in a room the user hosts (moderation).
-- System messages and anchors are nobody's. P0002 "comment <id> not found"
-- when missing, and also when the comment is in a private room the user is not
-- a member of (comment ids reveal nothing to non-members); P0002 "was
-- deleted" for a tombstone; 42501 otherwise.
-- -----------------------------------------------------------------------------
create function watchium_private.own_comment(p_comment_id bigint, p_user_id text, p_action text)
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
revoke all on function watchium_private.own_comment(bigint, text, text) from public;

-- -----------------------------------------------------------------------------
-- public.edit_comment: the author changes the message of their comment; a
-- room comment only while the author is still a member of the room.
-- Security definer: updates comments.
-- -----------------------------------------------------------------------------
create function watchium_rpc.edit_comment(p_comment_id bigint, p_message text)
returns jsonb
language plpgsql
volatile
security definer  -- updates comments, which no client may write directly
set search_path = pg_catalog, pg_temp
as $$
declare
  v_user_id text := watchium_private.require_user_id();
  v_message text := watchium_private.check_text('p_message', p_message, 1, 2000, true);
  v_comment public.comments;
begin
  -- Sizes first (22001), before any other work.
  perform watchium_private.check_size('p_message', pg_catalog.octet_length(p_message), 8000);
  if v_message is null then
    raise exception 'p_message is required' using errcode = '22023';
  end if;
  perform watchium_private.enforce_rate_limit(v_user_id, 'edit_comment');
  perform watchium_private.own_comment(p_comment_id, v_user_id, 'edit');
  update public.comments as c set message = v_message
  where c.id = p_comment_id
  returning * into v_comment;
  if v_comment.room_id is not null then
    perform watchium_private.emit_room_event(v_comment.room_id, 'comment_edited', pg_catalog.to_jsonb(v_comment));
  end if;
  return pg_catalog.to_jsonb(v_comment);
end;
$$;
comment on function watchium_rpc.edit_comment(bigint, text) is
  'Body of public.edit_comment (same arguments, result and errors; documented there). Security definer: updates comments, which no client may write directly. Callers reach it through public.edit_comment, a security invoker entry point; schema watchium_rpc is not exposed by the Data API.';
revoke all on function watchium_rpc.edit_comment(bigint, text) from public;
grant execute on function watchium_rpc.edit_comment(bigint, text) to authenticated, service_role;

-- -----------------------------------------------------------------------------
-- public.edit_comment: the Data API entry point; its body is
-- watchium_rpc.edit_comment above. Security invoker: it runs with the caller's
-- rights and only passes the arguments on; the body checks them and the
-- caller's identity itself.
-- -----------------------------------------------------------------------------
create function public.edit_comment(p_comment_id bigint, p_message text)
returns jsonb
language plpgsql
volatile
security invoker  -- the body is the security definer function
set search_path = pg_catalog, pg_temp
set lock_timeout = '2s'  -- bounded lock waits; tuned by the rpc_lock_timeout setting
as $$
begin
  return watchium_rpc.edit_comment(p_comment_id, p_message);
end;
$$;
comment on function public.edit_comment(bigint, text) is
  'The author edits the message of their own comment (not system messages or anchors); room comments only while still a member of the room (42501 after leaving or being kicked). Returns the comment.';
revoke all on function public.edit_comment(bigint, text) from public, anon;
grant execute on function public.edit_comment(bigint, text) to authenticated, service_role;

-- -----------------------------------------------------------------------------
-- public.delete_comment: the author deletes their comment, or the host of
-- its room removes it (moderation; see own_comment).
--
-- Other people's replies are never deleted with it. A comment with replies
-- becomes a tombstone (deleted_at set; message, avatar and video time
-- removed) that keeps the replies in their thread; a comment without replies
-- is deleted, and so is every tombstone above it left without replies.
-- Locks: the comment (own_comment), then its ancestors upward, each for
-- update; a concurrent reply locks its parent for key share, so it either
-- commits first (and is seen here) or finds the parent deleted (P0002).
-- Security definer: deletes from comments.
-- -----------------------------------------------------------------------------
create function watchium_rpc.delete_comment(p_comment_id bigint)
returns jsonb
language plpgsql
volatile
security definer  -- deletes from comments, which no client may write directly
set search_path = pg_catalog, pg_temp
as $$
declare
  v_user_id text := watchium_private.require_user_id();
  v_comment public.comments;
  v_parent  bigint;
  v_next    bigint;
  v_room_id text;
begin
  perform watchium_private.enforce_rate_limit(v_user_id, 'delete_comment');
  v_comment := watchium_private.own_comment(p_comment_id, v_user_id, 'delete');

  if exists (select from public.comments as r where r.parent_id = v_comment.id) then
    update public.comments as c
    set message = '', avatar_url = null, video_timestamp = null, deleted_at = pg_catalog.now()
    where c.id = v_comment.id;
    if v_comment.room_id is not null then
      perform watchium_private.emit_room_event(v_comment.room_id, 'comment_deleted',
        pg_catalog.jsonb_build_object('id', v_comment.id, 'tombstone', true));
    end if;
    return pg_catalog.jsonb_build_object('status', 'deleted', 'id', v_comment.id, 'tombstone', true);
  end if;

  delete from public.comments as c where c.id = v_comment.id;
  if v_comment.room_id is not null then
    perform watchium_private.emit_room_event(v_comment.room_id, 'comment_deleted',
      pg_catalog.jsonb_build_object('id', v_comment.id, 'tombstone', false));
  end if;

  -- Tombstones left without replies go too, up the thread.
  v_parent := v_comment.parent_id;
  while v_parent is not null loop
    select c.parent_id, c.room_id into v_next, v_room_id
    from public.comments as c
    where c.id = v_parent and c.deleted_at is not null
    for update;
    exit when not found
      or exists (select from public.comments as r where r.parent_id = v_parent);
    delete from public.comments as c where c.id = v_parent;
    -- A room comment may reply to an episode comment (no room): announce
    -- each removal where its comment was posted.
    if v_room_id is not null then
      perform watchium_private.emit_room_event(v_room_id, 'comment_deleted',
        pg_catalog.jsonb_build_object('id', v_parent, 'tombstone', false));
    end if;
    v_parent := v_next;
  end loop;
  return pg_catalog.jsonb_build_object('status', 'deleted', 'id', v_comment.id, 'tombstone', false);
end;
$$;
comment on function watchium_rpc.delete_comment(bigint) is
  'Body of public.delete_comment (same arguments, result and errors; documented there). Security definer: deletes from comments, which no client may write directly. Callers reach it through public.delete_comment, a security invoker entry point; schema watchium_rpc is not exposed by the Data API.';
revoke all on function watchium_rpc.delete_comment(bigint) from public;
grant execute on function watchium_rpc.delete_comment(bigint) to authenticated, service_role;

-- -----------------------------------------------------------------------------
-- public.delete_comment: the Data API entry point; its body is
-- watchium_rpc.delete_comment above. Security invoker: it runs with the
-- caller's rights and only passes the arguments on; the body checks them and
-- the caller's identity itself.
-- -----------------------------------------------------------------------------
create function public.delete_comment(p_comment_id bigint)
returns jsonb
language plpgsql
volatile
security invoker  -- the body is the security definer function
set search_path = pg_catalog, pg_temp
set lock_timeout = '2s'  -- bounded lock waits; tuned by the rpc_lock_timeout setting
as $$
begin
  return watchium_rpc.delete_comment(p_comment_id);
end;
$$;
comment on function public.delete_comment(bigint) is
  'The author deletes their own comment, or the host of its room any member''s comment there (not system messages or anchors). Replies are never deleted: a comment with replies becomes a tombstone (tombstone: true; deleted_at set, message emptied); without replies it is deleted, with any tombstone above it left without replies.';
revoke all on function public.delete_comment(bigint) from public, anon;
grant execute on function public.delete_comment(bigint) to authenticated, service_role;

-- -----------------------------------------------------------------------------
-- public.get_comments: an episode thread, newest first, keyset pagination on
-- (created_at, id). Without p_room_id: the comments not tied to a room (the
-- anchor, episode discussion, comments of deleted rooms); with it: that
-- room's comments (P0002 when the caller cannot see the room: a private
-- room it is not a member of). Returns {items, next_cursor}.
-- Security definer: calls internal helpers; visibility is checked here with
-- the rule of the comments policies (no room, a public room, or a member).
-- -----------------------------------------------------------------------------
create function watchium_rpc.get_comments(
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
revoke all on function watchium_rpc.get_comments(text, integer, text, text, integer) from public;
grant execute on function watchium_rpc.get_comments(text, integer, text, text, integer)
  to authenticated, service_role;

-- -----------------------------------------------------------------------------
-- public.get_comments: the Data API entry point; its body is
-- watchium_rpc.get_comments above. Security invoker: it runs with the caller's
-- rights and only passes the arguments on; the body checks them and the
-- caller's identity itself.
-- -----------------------------------------------------------------------------
create function public.get_comments(
  p_anime_id text,
  p_episode_number integer,
  p_room_id text default null,
  p_cursor text default null,
  p_limit integer default 50
)
returns jsonb
language plpgsql
stable
security invoker  -- the body is the security definer function
set search_path = pg_catalog, pg_temp
set lock_timeout = '2s'  -- bounded lock waits; tuned by the rpc_lock_timeout setting
as $$
begin
  return watchium_rpc.get_comments(p_anime_id, p_episode_number, p_room_id, p_cursor,
    p_limit);
end;
$$;
comment on function public.get_comments(text, integer, text, text, integer) is
  'Comments of an episode thread (or of one room the caller may see), newest first: {items, next_cursor}. Keyset pagination: pass next_cursor back as p_cursor.';
revoke all on function public.get_comments(text, integer, text, text, integer) from public, anon;
grant execute on function public.get_comments(text, integer, text, text, integer) to authenticated, service_role;

-- -----------------------------------------------------------------------------
-- public.get_or_create_anchor: the one anchor comment ("Discussion for
-- Episode N") of an episode thread, created on first use. Race-free: any
-- number of concurrent callers get the same row.
-- Security definer: inserts into comments.
-- -----------------------------------------------------------------------------
create function watchium_rpc.get_or_create_anchor(p_anime_id text, p_episode_number integer)
returns jsonb
language plpgsql
volatile
security definer  -- inserts into comments, which no client may write directly
set search_path = pg_catalog, pg_temp
as $$
declare
  v_user_id  text := watchium_private.require_user_id();
  v_anime_id text := watchium_private.check_text('p_anime_id', p_anime_id, 1, 100);
  v_episode  integer := watchium_private.check_episode('p_episode_number', p_episode_number);
  v_id       bigint;
begin
  -- Sizes first (22001), before any other work.
  perform watchium_private.check_size('p_anime_id', pg_catalog.octet_length(p_anime_id), 400);
  if v_anime_id is null then
    raise exception 'p_anime_id is required' using errcode = '22023';
  end if;
  perform watchium_private.enforce_rate_limit(v_user_id, 'get_or_create_anchor');
  select c.id into v_id
  from public.comments as c
  where c.anime_id = v_anime_id and c.episode_number = v_episode and c.is_anchor;
  if v_id is null then
    -- A new thread: limited per user (create_anchor); maintenance removes it
    -- again if it stays empty (empty_anchor_grace).
    perform watchium_private.enforce_rate_limit(v_user_id, 'create_anchor');
    v_id := watchium_private.ensure_anchor(v_anime_id, v_episode);
  end if;
  return (select pg_catalog.to_jsonb(c) from public.comments as c where c.id = v_id);
end;
$$;
comment on function watchium_rpc.get_or_create_anchor(text, integer) is
  'Body of public.get_or_create_anchor (same arguments, result and errors; documented there). Security definer: inserts into comments, which no client may write directly. Callers reach it through public.get_or_create_anchor, a security invoker entry point; schema watchium_rpc is not exposed by the Data API.';
revoke all on function watchium_rpc.get_or_create_anchor(text, integer) from public;
grant execute on function watchium_rpc.get_or_create_anchor(text, integer)
  to authenticated, service_role;

-- -----------------------------------------------------------------------------
-- public.get_or_create_anchor: the Data API entry point; its body is
-- watchium_rpc.get_or_create_anchor above. Security invoker: it runs with the
-- caller's rights and only passes the arguments on; the body checks them and
-- the caller's identity itself.
-- -----------------------------------------------------------------------------
create function public.get_or_create_anchor(p_anime_id text, p_episode_number integer)
returns jsonb
language plpgsql
volatile
security invoker  -- the body is the security definer function
set search_path = pg_catalog, pg_temp
set lock_timeout = '2s'  -- bounded lock waits; tuned by the rpc_lock_timeout setting
as $$
begin
  return watchium_rpc.get_or_create_anchor(p_anime_id, p_episode_number);
end;
$$;
comment on function public.get_or_create_anchor(text, integer) is
  'The anchor comment of an episode thread, created once; concurrent callers get the same anchor.';
revoke all on function public.get_or_create_anchor(text, integer) from public, anon;
grant execute on function public.get_or_create_anchor(text, integer) to authenticated, service_role;

-- =============================================================================
-- Maintenance
-- =============================================================================

-- -----------------------------------------------------------------------------
-- watchium_private.maintain_rooms(): removes stale members (no heartbeat for
-- member_stale_after; host handed on by _300_member_left) and deletes rooms
-- empty for longer than empty_room_grace. Called by public.maintain().
--
-- Set-based, and it never waits for a row lock: every lock is taken in the
-- lock order of docs/architecture.md (rooms row, then room_members rows, then
-- member_presence rows) with SKIP LOCKED, so a room, a member or a presence
-- row a caller holds is left for the next run instead of waited for (no
-- deadlock with a heartbeat, a join or a control; no run failing on one busy
-- member). Staleness is checked again on the presence row's latest version
-- under its lock: a member whose heartbeat committed meanwhile stays, and a
-- heartbeat still in flight holds the row, so that member is skipped.
-- When a stale host goes, its successor (the longest-present member staying,
-- promoted by _300_member_left) is locked beforehand the same way; a room
-- whose successor is busy keeps its stale members until the next run.
-- Returns {stale_members_removed, hosts_transferred, empty_rooms_deleted,
-- rooms_skipped_busy, members_skipped_busy}.
-- -----------------------------------------------------------------------------
create function watchium_private.maintain_rooms()
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
revoke all on function watchium_private.maintain_rooms() from public;
