-- =============================================================================
-- 0003 identity, privileges, row-level security and rate limiting
--
-- Identity comes from the token, never from an argument:
--   watchium_private.current_user_id()  the `sub` claim of request.jwt.claims
--       (PostgREST, Supabase Realtime), else app.current_user_id (plain
--       PostgreSQL apps without a JWT). Nothing else reads identity.
--
-- Supabase grants ALL on every table and function in public to anon and
-- authenticated. This revision takes back what clients must not have: they
-- read tables through RLS and write only through RPC functions.
--
-- Error codes used across the API (stable; the Python client maps them):
--   22023  invalid input (the message names the argument)
--   28000  no identity: the caller is not signed in
--   42501  forbidden: not a member, not the host, not your record
--   P0002  not found
--   WD429  rate limited (the hint says when to retry)
-- =============================================================================

-- -----------------------------------------------------------------------------
-- settings: tunables of the package, read by functions and maintenance.
-- -----------------------------------------------------------------------------
create table watchium_private.settings (
  key         text  not null,
  value       jsonb not null,
  description text  not null,
  constraint settings_pkey primary key (key),
  constraint settings_key_format_check check (key ~ '^[a-z][a-z0-9_]{0,62}$')
);
comment on table watchium_private.settings is
  'Tunables of watchium-db (timeouts, retention, sampling). Change with UPDATE as the database owner; functions read them at call time.';
alter table watchium_private.settings enable row level security;
revoke all on table watchium_private.settings from public;

-- -----------------------------------------------------------------------------
-- watchium_private.setting_interval(key): a setting as an interval.
-- -----------------------------------------------------------------------------
create function watchium_private.setting_interval(p_key text)
returns interval
language plpgsql  -- not sql: a SQL function with SET is planned again on every call
stable
set search_path = pg_catalog, pg_temp
as $$
begin
  return (
    select (s.value #>> '{}')::interval
    from watchium_private.settings as s
    where s.key = p_key
  );
end;
$$;
comment on function watchium_private.setting_interval(text) is
  'The setting p_key as an interval (null when absent). Internal.';
revoke all on function watchium_private.setting_interval(text) from public;

-- -----------------------------------------------------------------------------
-- watchium_private.setting_integer(key): a setting as an integer.
-- -----------------------------------------------------------------------------
create function watchium_private.setting_integer(p_key text)
returns integer
language plpgsql  -- not sql: a SQL function with SET is planned again on every call
stable
set search_path = pg_catalog, pg_temp
as $$
begin
  return (
    select (s.value #>> '{}')::integer
    from watchium_private.settings as s
    where s.key = p_key
  );
end;
$$;
comment on function watchium_private.setting_integer(text) is
  'The setting p_key as an integer (null when absent). Internal.';
revoke all on function watchium_private.setting_integer(text) from public;

-- -----------------------------------------------------------------------------
-- watchium_private.check_size(argument, size, max): the first check of every
-- RPC taking text, jsonb or arrays. p_size is what the caller measured without
-- reading the value: octet_length(text) and pg_column_size(jsonb or array)
-- read only the datum's header. Raises 22001 naming the argument when the
-- value is larger than p_max bytes, before any parsing or other work; the
-- argument's exact rule (characters, format) is checked afterwards.
-- -----------------------------------------------------------------------------
create function watchium_private.check_size(p_argument text, p_size integer, p_max integer)
returns void
language plpgsql
immutable
set search_path = pg_catalog, pg_temp
as $$
begin
  if p_size > p_max then
    raise exception '% is too large: at most % bytes (got %)', p_argument, p_max, p_size
      using errcode = '22001',
            hint = 'Sizes are checked before anything else; see the argument''s documented limit.';
  end if;
end;
$$;
comment on function watchium_private.check_size(text, integer, integer) is
  'Raises 22001 naming p_argument when p_size (bytes, measured from the datum header) exceeds p_max. The first check of every RPC taking text, jsonb or arrays. Internal.';
revoke all on function watchium_private.check_size(text, integer, integer) from public;

-- -----------------------------------------------------------------------------
-- rpc_lock_timeout: how long an RPC waits for a lock before it fails with
-- 55P03 (lock_not_available). Every public RPC except maintain() and
-- realtime_health() carries `set lock_timeout = '2s'` in its definition, so
-- the bound holds whatever role or connection calls it (a function's SET
-- clause applies on entry and is undone on return). Changing the setting
-- rewrites that clause on every such function (the trigger below); only a
-- role that owns the functions can change it.
-- -----------------------------------------------------------------------------
insert into watchium_private.settings (key, value, description) values
  ('rpc_lock_timeout', '"2s"',
   'How long an RPC waits for a row or table lock before failing with 55P03 (0 = wait without bound). Changing it updates the lock_timeout of every public RPC that carries one; run as the owner of the functions.');

-- -----------------------------------------------------------------------------
-- watchium_private.tg_settings__apply_rpc_lock_timeout(): on insert or update
-- of rpc_lock_timeout, validate it and set it on every function in public
-- whose definition carries a lock_timeout. Not security definer: ALTER
-- FUNCTION needs the owner, so whoever changes the setting must be it.
-- -----------------------------------------------------------------------------
create function watchium_private.tg_settings__apply_rpc_lock_timeout()
returns trigger
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
declare
  v_interval interval;
  v_ms       numeric;
  v_text     text;
  v_function regprocedure;
begin
  if pg_catalog.jsonb_typeof(new.value) is distinct from 'string' then
    raise exception 'rpc_lock_timeout must be a JSON string such as "2s"'
      using errcode = '22023';
  end if;
  begin
    v_interval := (new.value #>> '{}')::interval;
  exception when invalid_datetime_format or datetime_field_overflow or interval_field_overflow then
    raise exception 'rpc_lock_timeout is not a duration: %', new.value #>> '{}'
      using errcode = '22023', hint = 'e.g. "2s", "500ms" or "0" to wait without bound';
  end;
  v_ms := pg_catalog.round(extract(epoch from v_interval) * 1000);
  if v_ms < 0 or v_ms > 3600000 then
    raise exception 'rpc_lock_timeout must be between 0 and 1 hour, got %', new.value #>> '{}'
      using errcode = '22023';
  end if;
  v_text := case when v_ms % 1000 = 0 then (v_ms / 1000)::bigint || 's' else v_ms::bigint || 'ms' end;
  for v_function in
    select p.oid::regprocedure
    from pg_catalog.pg_proc as p
    where p.pronamespace = 'public'::regnamespace
      and exists (
        select from pg_catalog.unnest(p.proconfig) as c where c like 'lock\_timeout=%'
      )
      and not ('lock_timeout=' || v_text) = any (p.proconfig)
    order by p.oid
  loop
    execute pg_catalog.format('alter function %s set lock_timeout = %L', v_function, v_text);
  end loop;
  return new;
end;
$$;
comment on function watchium_private.tg_settings__apply_rpc_lock_timeout() is
  'Trigger: validates rpc_lock_timeout and sets it as the lock_timeout of every public function that carries one. Internal.';
revoke all on function watchium_private.tg_settings__apply_rpc_lock_timeout() from public;

create trigger settings_apply_rpc_lock_timeout
  after insert or update of value on watchium_private.settings
  for each row
  when (new.key = 'rpc_lock_timeout')
  execute function watchium_private.tg_settings__apply_rpc_lock_timeout();

-- -----------------------------------------------------------------------------
-- watchium_private.current_user_id(): the caller's user id, or null.
--
-- When request.jwt.claims is set (PostgREST, Supabase Realtime, an Edge
-- Function acting for a user) only its `sub` counts: an anonymous JWT is
-- anonymous even if app.current_user_id happens to be set. Otherwise the
-- transaction-local app.current_user_id set by a plain PostgreSQL app.
-- Read as text: Supabase's auth.uid() is uuid, our user ids are any text.
-- -----------------------------------------------------------------------------
create function watchium_private.current_user_id()
returns text
language plpgsql  -- not sql: a SQL function with SET is planned again on every call
stable
set search_path = pg_catalog, pg_temp
as $$
declare
  v_claims text := nullif(pg_catalog.current_setting('request.jwt.claims', true), '');
begin
  if v_claims is not null then
    return nullif(v_claims::jsonb ->> 'sub', '');
  end if;
  return nullif(pg_catalog.current_setting('app.current_user_id', true), '');
end;
$$;
comment on function watchium_private.current_user_id() is
  'The caller''s user id: the sub claim of request.jwt.claims when claims are set, else app.current_user_id; null when anonymous. The only source of identity in watchium-db.';
revoke all on function watchium_private.current_user_id() from public;

-- -----------------------------------------------------------------------------
-- watchium_private.require_user_id(): the caller's user id, or error 28000.
-- -----------------------------------------------------------------------------
create function watchium_private.require_user_id()
returns text
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
declare
  v_user_id text := watchium_private.current_user_id();
begin
  if v_user_id is null then
    raise exception 'not signed in: this function acts for the calling user'
      using errcode = '28000',
            hint = 'Call it with a user''s JWT (supabase-js, PostgREST), or set app.current_user_id in the transaction (plain PostgreSQL).';
  end if;
  if pg_catalog.char_length(v_user_id) > 100 then
    raise exception 'user id is longer than 100 characters'
      using errcode = '22023';
  end if;
  return v_user_id;
end;
$$;
comment on function watchium_private.require_user_id() is
  'The caller''s user id; raises 28000 when the caller is anonymous. Every RPC that acts for a user starts here.';
revoke all on function watchium_private.require_user_id() from public;

-- -----------------------------------------------------------------------------
-- watchium_private.caller_is_trusted(): true for server-side callers.
--
-- True unless the session acts as anon or authenticated (PostgREST and plain
-- PostgreSQL apps switch to those roles per transaction). service_role and
-- direct connections of the database owner are trusted. Inside a security
-- definer function current_user is the owner, but the `role` setting still
-- names the role the caller switched to, which is what this reads.
-- -----------------------------------------------------------------------------
create function watchium_private.caller_is_trusted()
returns boolean
language plpgsql  -- not sql: a SQL function with SET is planned again on every call
stable
set search_path = pg_catalog, pg_temp
as $$
begin
  return pg_catalog.current_setting('role') not in ('anon', 'authenticated');
end;
$$;
comment on function watchium_private.caller_is_trusted() is
  'True for service_role and direct owner connections; false for anon and authenticated callers.';
revoke all on function watchium_private.caller_is_trusted() from public;

-- -----------------------------------------------------------------------------
-- watchium_private.my_room_ids(): the rooms the caller is a member of.
--
-- The one membership helper of the policies. Security definer: it must read
-- room_members without that table's own policy (which calls it: recursion).
-- Policies use it as `room_id in (select watchium_private.my_room_ids())`, a
-- hashed subplan evaluated once per statement: identity is read once, and
-- the set comes from room_members_user_id_idx.
-- -----------------------------------------------------------------------------
create function watchium_private.my_room_ids()
returns setof text
language sql
stable
security definer  -- reads room_members bypassing its RLS (its policy calls this function)
set search_path = pg_catalog, pg_temp
as $$
  select m.room_id
  from public.room_members as m
  where m.user_id = watchium_private.current_user_id()
$$;
comment on function watchium_private.my_room_ids() is
  'Room ids the caller is a member of (empty when anonymous). Used by the RLS policies; security definer because room_members'' own policy calls it.';
revoke all on function watchium_private.my_room_ids() from public;
grant execute on function watchium_private.my_room_ids() to authenticated;

-- =============================================================================
-- Privileges: read through RLS, write through functions.
-- =============================================================================
revoke all on table public.rooms, public.room_members, public.comments, public.sync_states,
  public.sync_states_default, public.sync_records
  from anon, authenticated, service_role;
revoke all on sequence public.comments_id_seq
  from anon, authenticated, service_role;

grant select on table public.rooms, public.room_members, public.comments to anon;
grant select on table public.rooms, public.room_members, public.comments, public.sync_states,
  public.sync_records
  to authenticated, service_role;

-- =============================================================================
-- Row-level security. One permissive policy per role and action; no write
-- policies at all (writes go through security definer RPC functions).
-- Partitions and private tables have RLS enabled and no policies: deny all.
-- =============================================================================
alter table public.rooms enable row level security;
alter table public.room_members enable row level security;
alter table public.comments enable row level security;
alter table public.sync_states enable row level security;
alter table public.sync_states_default enable row level security;
alter table watchium_private.room_secrets enable row level security;
alter table watchium_private.member_presence enable row level security;

-- rooms ------------------------------------------------------------------------
create policy rooms_select_anon on public.rooms
  for select to anon
  using (is_public);
comment on policy rooms_select_anon on public.rooms is
  'Anonymous callers see public rooms.';

create policy rooms_select_authenticated on public.rooms
  for select to authenticated
  using (is_public or room_id in (select watchium_private.my_room_ids()));
comment on policy rooms_select_authenticated on public.rooms is
  'Signed-in callers see public rooms and the private rooms they are members of.';

-- room_members -----------------------------------------------------------------
create policy room_members_select_anon on public.room_members
  for select to anon
  using (exists (
    select from public.rooms as r where r.room_id = room_members.room_id and r.is_public
  ));
comment on policy room_members_select_anon on public.room_members is
  'Anonymous callers see the members of public rooms.';

create policy room_members_select_authenticated on public.room_members
  for select to authenticated
  using (
    room_id in (select watchium_private.my_room_ids())
    or exists (
      select from public.rooms as r where r.room_id = room_members.room_id and r.is_public
    )
  );
comment on policy room_members_select_authenticated on public.room_members is
  'Signed-in callers see the members of their rooms and of public rooms.';

-- comments ---------------------------------------------------------------------
create policy comments_select_anon on public.comments
  for select to anon
  using (
    room_id is null
    or exists (select from public.rooms as r where r.room_id = comments.room_id and r.is_public)
  );
comment on policy comments_select_anon on public.comments is
  'Anonymous callers see episode comments without a room and comments of public rooms.';

create policy comments_select_authenticated on public.comments
  for select to authenticated
  using (
    room_id is null
    or room_id in (select watchium_private.my_room_ids())
    or exists (select from public.rooms as r where r.room_id = comments.room_id and r.is_public)
  );
comment on policy comments_select_authenticated on public.comments is
  'Signed-in callers see episode comments, comments of public rooms and of their rooms.';

-- sync_states ------------------------------------------------------------------
create policy sync_states_select_authenticated on public.sync_states
  for select to authenticated
  using (room_id in (select watchium_private.my_room_ids()));
comment on policy sync_states_select_authenticated on public.sync_states is
  'Members see the sync history of their rooms.';

-- =============================================================================
-- Rate limiting: fixed windows counted in one row per (subject, action,
-- window). The cost is one upsert on a primary key, whatever the history
-- size, and the row lock makes it exact under concurrency. Windows start at
-- multiples of their length since the epoch, so a burst straddling a window
-- boundary can reach twice the limit over one window length: documented.
-- =============================================================================
create table watchium_private.rate_limit_rules (
  action         text    not null,
  max_requests   integer not null,
  window_minutes integer not null,
  description    text    not null,
  constraint rate_limit_rules_pkey primary key (action),
  constraint rate_limit_rules_action_format_check check (action ~ '^[a-z][a-z0-9_]{0,49}$'),
  constraint rate_limit_rules_max_requests_check check (max_requests between 1 and 1000000),
  constraint rate_limit_rules_window_minutes_check check (window_minutes between 1 and 1440)
);
comment on table watchium_private.rate_limit_rules is
  'Default rate limit of each action of the RPC functions. Change a row to tune a limit.';
alter table watchium_private.rate_limit_rules enable row level security;
revoke all on table watchium_private.rate_limit_rules from public;

create table watchium_private.rate_limit_counters (
  subject        text        not null,
  action         text        not null,
  window_minutes integer     not null,
  window_start   timestamptz not null,
  request_count  integer     not null,
  constraint rate_limit_counters_pkey primary key (subject, action, window_minutes, window_start)
) with (fillfactor = 80);
comment on table watchium_private.rate_limit_counters is
  'Requests per subject (a user id, or room:<id>), action and window length in the current fixed window (a 1-minute and a 60-minute limit of one action count separately). Old windows are deleted by maintenance.';
alter table watchium_private.rate_limit_counters enable row level security;
revoke all on table watchium_private.rate_limit_counters from public;

-- For maintenance: expired windows.
create index rate_limit_counters_window_start_idx
  on watchium_private.rate_limit_counters (window_start);

-- -----------------------------------------------------------------------------
-- watchium_private.consume_rate_limit(subject, action, window, max)
-- Counts one request and says whether it is within the limit. Internal: the
-- subject is trusted here; public callers go through check_rate_limit or an RPC.
-- -----------------------------------------------------------------------------
create function watchium_private.consume_rate_limit(
  p_subject text,
  p_action text,
  p_window_minutes integer,
  p_max_requests integer
)
returns boolean
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
declare
  v_window_seconds double precision;
  v_window_start   timestamptz;
  v_count          integer;
begin
  if p_subject is null or pg_catalog.char_length(p_subject) not between 1 and 120 then
    raise exception 'p_subject must be 1 to 120 characters' using errcode = '22023';
  end if;
  if p_action is null or p_action !~ '^[a-z][a-z0-9_]{0,49}$' then
    raise exception 'p_action must be 1 to 50 characters of [a-z0-9_], starting with a letter (got %)',
      pg_catalog.quote_nullable(pg_catalog.left(p_action, 60))
      using errcode = '22023';
  end if;
  if p_window_minutes is null or p_window_minutes not between 1 and 1440 then
    raise exception 'p_window_minutes must be between 1 and 1440 (got %)', p_window_minutes
      using errcode = '22023';
  end if;
  if p_max_requests is null or p_max_requests not between 1 and 1000000 then
    raise exception 'p_max_requests must be between 1 and 1000000 (got %)', p_max_requests
      using errcode = '22023';
  end if;

  v_window_seconds := p_window_minutes * 60;
  v_window_start := pg_catalog.to_timestamp(
    pg_catalog.floor(extract(epoch from pg_catalog.now()) / v_window_seconds) * v_window_seconds
  );

  insert into watchium_private.rate_limit_counters as c
    (subject, action, window_minutes, window_start, request_count)
  values (p_subject, p_action, p_window_minutes, v_window_start, 1)
  on conflict (subject, action, window_minutes, window_start)
    do update set request_count = c.request_count + 1
  returning c.request_count into v_count;

  return v_count <= p_max_requests;
end;
$$;
comment on function watchium_private.consume_rate_limit(text, text, integer, integer) is
  'Counts one request of p_subject for p_action in the current window of p_window_minutes; true while at most p_max_requests. Exact under concurrency (row lock on the counter). Internal.';
revoke all on function watchium_private.consume_rate_limit(text, text, integer, integer) from public;

-- -----------------------------------------------------------------------------
-- watchium_private.enforce_rate_limit(subject, action): raise WD429 when the
-- action's rule (rate_limit_rules) is exceeded. RPC functions call this.
-- -----------------------------------------------------------------------------
create function watchium_private.enforce_rate_limit(p_subject text, p_action text)
returns void
language plpgsql
volatile
set search_path = pg_catalog, pg_temp
as $$
declare
  v_window_minutes integer;
  v_max_requests   integer;
  v_count          integer;
begin
  if p_subject is null or pg_catalog.char_length(p_subject) not between 1 and 120 then
    raise exception 'p_subject must be 1 to 120 characters' using errcode = '22023';
  end if;
  -- The rule and consume_rate_limit's counting upsert in one statement, not a
  -- nested call: every RPC pays this, and each nested function with a SET
  -- clause costs a setting save and restore. The rule's bounds are its
  -- table's check constraints. No rule: no counter is written.
  with rule as (
    select r.window_minutes, r.max_requests
    from watchium_private.rate_limit_rules as r
    where r.action = p_action
  ),
  counted as (
    insert into watchium_private.rate_limit_counters as c
      (subject, action, window_minutes, window_start, request_count)
    select p_subject, p_action, r.window_minutes,
           pg_catalog.to_timestamp(
             pg_catalog.floor(extract(epoch from pg_catalog.now()) / (r.window_minutes * 60)::double precision)
               * (r.window_minutes * 60)::double precision
           ),
           1
    from rule as r
    on conflict (subject, action, window_minutes, window_start)
      do update set request_count = c.request_count + 1
    returning c.request_count
  )
  select r.window_minutes, r.max_requests, (select k.request_count from counted as k)
  into v_window_minutes, v_max_requests, v_count
  from rule as r;
  if not found then
    raise exception 'no rate limit rule for action %', p_action
      using errcode = '22023',
            hint = 'Add a row to watchium_private.rate_limit_rules.';
  end if;
  if v_count > v_max_requests then
    raise exception 'rate limit exceeded for %: at most % requests per % minute(s)',
      p_action, v_max_requests, v_window_minutes
      using errcode = 'WD429',
            hint = pg_catalog.format('Retry in at most %s minute(s).', v_window_minutes);
  end if;
end;
$$;
comment on function watchium_private.enforce_rate_limit(text, text) is
  'Counts one request of p_subject for p_action against its rule in rate_limit_rules; raises WD429 when over the limit. Internal.';
revoke all on function watchium_private.enforce_rate_limit(text, text) from public;

-- -----------------------------------------------------------------------------
-- public.check_rate_limit: the seed's RPC, made safe.
--
-- Counts one request of p_action and returns whether it is within
-- p_max_requests per p_window_minutes. Callers spend only their own budget:
-- p_user_id must be the caller's own id unless the caller is trusted
-- (service_role, the database owner). Works for any action name, within two
-- bounds that keep one client from growing the counters table:
--   * the function is rate limited itself (rule check_rate_limit, per user);
--   * a user has at most max_rate_limit_actions_per_user live counters of
--     actions that are not ours (not in rate_limit_rules): a live counter is
--     one whose window has not ended. A call that would start one more raises
--     WD429 naming p_action; counters already started keep counting.
-- Expired windows are deleted by maintenance, so the table holds at most
-- that many custom rows per user plus what accumulates between two runs.
-- Security definer: writes the private counters table.
-- -----------------------------------------------------------------------------
create function watchium_rpc.check_rate_limit(
  p_user_id text,
  p_action text,
  p_window_minutes integer default 1,
  p_max_requests integer default 60
)
returns boolean
language plpgsql
volatile
security definer  -- writes watchium_private.rate_limit_counters, which no client may touch
set search_path = pg_catalog, pg_temp
as $$
declare
  v_window_start timestamptz;
  v_live         integer;
  v_cap          integer;
begin
  perform watchium_private.check_size('p_user_id', pg_catalog.octet_length(p_user_id), 400);
  perform watchium_private.check_size('p_action', pg_catalog.octet_length(p_action), 200);
  if not watchium_private.caller_is_trusted()
     and p_user_id is distinct from watchium_private.require_user_id() then
    raise exception 'p_user_id must be your own user id: callers can only spend their own rate limit'
      using errcode = '42501';
  end if;
  if p_user_id is null or pg_catalog.char_length(p_user_id) not between 1 and 100 then
    raise exception 'p_user_id must be 1 to 100 characters' using errcode = '22023';
  end if;
  if p_action is null or p_action !~ '^[a-z][a-z0-9_]{0,49}$' then
    raise exception 'p_action must be 1 to 50 characters of [a-z0-9_], starting with a letter (got %)',
      pg_catalog.quote_nullable(p_action)
      using errcode = '22023';
  end if;
  if p_window_minutes is null or p_window_minutes not between 1 and 1440 then
    raise exception 'p_window_minutes must be between 1 and 1440 (got %)', p_window_minutes
      using errcode = '22023';
  end if;
  perform watchium_private.enforce_rate_limit(p_user_id, 'check_rate_limit');

  if not exists (
    select from watchium_private.rate_limit_rules as r where r.action = p_action
  ) then
    v_window_start := pg_catalog.to_timestamp(
      pg_catalog.floor(extract(epoch from pg_catalog.now()) / (p_window_minutes * 60))
        * (p_window_minutes * 60)
    );
    if not exists (
      select from watchium_private.rate_limit_counters as c
      where c.subject = p_user_id and c.action = p_action
        and c.window_minutes = p_window_minutes and c.window_start = v_window_start
    ) then
      -- A new counter: serialize the user's new counters so the cap is exact.
      perform pg_catalog.pg_advisory_xact_lock(
        pg_catalog.hashtext('watchium_private.rate_limit_counters:' || p_user_id));
      v_cap := watchium_private.setting_integer('max_rate_limit_actions_per_user');
      select pg_catalog.count(*) into v_live
      from watchium_private.rate_limit_counters as c
      where c.subject = p_user_id
        and c.window_start + c.window_minutes * interval '1 minute' > pg_catalog.now()
        and not exists (select from watchium_private.rate_limit_rules as r where r.action = c.action);
      if v_live >= v_cap then
        raise exception 'p_action %: you already have % live rate limit counters of your own actions (at most %)',
          pg_catalog.quote_literal(p_action), v_live, v_cap
          using errcode = 'WD429',
                hint = 'Reuse action names; a counter ends with its window (max_rate_limit_actions_per_user).';
      end if;
    end if;
  end if;
  return watchium_private.consume_rate_limit(p_user_id, p_action, p_window_minutes, p_max_requests);
end;
$$;
comment on function watchium_rpc.check_rate_limit(text, text, integer, integer) is
  'Body of public.check_rate_limit (same arguments, result and errors; documented there). Security definer: writes watchium_private.rate_limit_counters, which no client may touch. Callers reach it through public.check_rate_limit, a security invoker entry point; schema watchium_rpc is not exposed by the Data API.';
revoke all on function watchium_rpc.check_rate_limit(text, text, integer, integer) from public;
grant execute on function watchium_rpc.check_rate_limit(text, text, integer, integer)
  to authenticated, service_role;

-- -----------------------------------------------------------------------------
-- public.check_rate_limit: the Data API entry point; its body is
-- watchium_rpc.check_rate_limit above. Security invoker: it runs with the
-- caller's rights and only passes the arguments on; the body checks them and
-- the caller's identity itself.
-- -----------------------------------------------------------------------------
create function public.check_rate_limit(
  p_user_id text,
  p_action text,
  p_window_minutes integer default 1,
  p_max_requests integer default 60
)
returns boolean
language plpgsql
volatile
security invoker  -- the body is the security definer function
set search_path = pg_catalog, pg_temp
set lock_timeout = '2s'  -- bounded lock waits; tuned by the rpc_lock_timeout setting
as $$
begin
  return watchium_rpc.check_rate_limit(p_user_id, p_action, p_window_minutes,
    p_max_requests);
end;
$$;
comment on function public.check_rate_limit(text, text, integer, integer) is
  'Counts one request of p_action for p_user_id (your own id, unless called by service_role) and returns true while within p_max_requests per p_window_minutes. Constant cost; exact under concurrency. Itself limited per user (rule check_rate_limit), and at most max_rate_limit_actions_per_user live counters of actions not in rate_limit_rules per user (WD429 naming p_action past it).';
revoke all on function public.check_rate_limit(text, text, integer, integer) from public, anon;
grant execute on function public.check_rate_limit(text, text, integer, integer)
  to authenticated, service_role;

insert into watchium_private.rate_limit_rules (action, max_requests, window_minutes, description) values
  ('check_rate_limit', 600, 1, 'check_rate_limit calls per user per minute (the function''s own limit).');
insert into watchium_private.settings (key, value, description) values
  ('max_rate_limit_actions_per_user', '100',
   'Live check_rate_limit counters (windows not yet ended) a user may hold for actions not in rate_limit_rules; past it check_rate_limit raises WD429.');

-- -----------------------------------------------------------------------------
-- Column descriptions
-- -----------------------------------------------------------------------------
comment on column watchium_private.settings.key is 'Name of the tunable, snake_case.';
comment on column watchium_private.settings.value is 'Its value as JSON (intervals as strings, e.g. "30 seconds").';
comment on column watchium_private.settings.description is 'What the tunable controls.';
comment on column watchium_private.rate_limit_rules.action is 'The action an RPC counts, e.g. create_room, sync_control.';
comment on column watchium_private.rate_limit_rules.max_requests is 'Requests allowed per window, 1 to 1000000.';
comment on column watchium_private.rate_limit_rules.window_minutes is 'Length of the fixed window in minutes, 1 to 1440.';
comment on column watchium_private.rate_limit_rules.description is 'Why this limit, and what it allows.';
comment on column watchium_private.rate_limit_counters.subject is 'Who is counted: a user id, or room:<room_id> for per-room limits.';
comment on column watchium_private.rate_limit_counters.action is 'The action counted.';
comment on column watchium_private.rate_limit_counters.window_minutes is 'Length of the window this row counts.';
comment on column watchium_private.rate_limit_counters.window_start is 'Start of the fixed window (a multiple of its length since the epoch).';
comment on column watchium_private.rate_limit_counters.request_count is 'Requests counted in the window so far.';
