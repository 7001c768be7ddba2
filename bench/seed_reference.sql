-- =============================================================================
-- The seed's reference SQL (the seed document, realtime-architecture.md), written
-- by us into schema seed_ref. Created only by `make bench` in its own
-- throw-away database; never by migrations.
-- =============================================================================

drop schema if exists seed_ref cascade;
create schema seed_ref;

-- -----------------------------------------------------------------------------
-- Tables shaped as in the seed: varchar/decimal, foreign keys to rooms.
-- sync_states gets an index on (user_id, created_at): without it the seed's
-- counting check_rate_limit would be a sequential scan (kinder to the seed).
-- -----------------------------------------------------------------------------
create table seed_ref.rooms (
  room_id varchar(10) primary key,
  host_user_id varchar(100),
  current_playback_time decimal(10,2) not null default 0,
  is_playing boolean not null default false,
  updated_at timestamptz not null default now()
);
create index idx_rooms_state
  on seed_ref.rooms (room_id, is_playing, current_playback_time, updated_at desc);

create table seed_ref.room_members (
  room_id varchar(10) not null references seed_ref.rooms (room_id) on delete cascade,
  user_id varchar(100) not null,
  is_synced boolean not null default true,
  current_playback_time decimal(10,2) not null default 0,
  last_heartbeat timestamptz not null default now(),
  primary key (room_id, user_id)
);
create index idx_room_members_presence
  on seed_ref.room_members (room_id, last_heartbeat desc, is_synced);

create table seed_ref.sync_states (
  id bigserial primary key,
  room_id varchar(10) not null references seed_ref.rooms (room_id) on delete cascade,
  user_id varchar(100) not null,
  host_time decimal(10,2) not null,
  member_time decimal(10,2) not null,
  time_difference decimal(10,2) not null,
  is_synced boolean not null,
  sync_event_type varchar(50) not null,
  created_at timestamptz not null default now()
);
create index idx_sync_states_user_created on seed_ref.sync_states (user_id, created_at desc);

-- -----------------------------------------------------------------------------
-- The seed's presence trigger, verbatim but for the schema.
-- -----------------------------------------------------------------------------
create function seed_ref.update_member_presence()
returns trigger as $$
begin
    new.last_heartbeat = now();
    select current_playback_time, is_playing
    into new.current_playback_time, new.is_synced
    from seed_ref.rooms
    where room_id = new.room_id;
    return new;
end;
$$ language plpgsql;

create trigger update_member_presence
  before update on seed_ref.room_members
  for each row execute function seed_ref.update_member_presence();

-- -----------------------------------------------------------------------------
-- The seed's bulk_sync_update, verbatim but for the schema (a loop of
-- single-row inserts).
-- -----------------------------------------------------------------------------
create function seed_ref.bulk_sync_update(
    p_room_id varchar(10),
    p_host_time decimal(10,2),
    p_sync_event_type varchar(50)
)
returns void as $$
declare
    member_record record;
begin
    for member_record in
        select user_id, current_playback_time
        from seed_ref.room_members
        where room_id = p_room_id
    loop
        insert into seed_ref.sync_states (
            room_id, user_id, host_time, member_time,
            time_difference, is_synced, sync_event_type
        ) values (
            p_room_id,
            member_record.user_id,
            p_host_time,
            member_record.current_playback_time,
            abs(p_host_time - member_record.current_playback_time),
            abs(p_host_time - member_record.current_playback_time) <= 2,
            p_sync_event_type
        );
    end loop;
end;
$$ language plpgsql;

-- -----------------------------------------------------------------------------
-- The seed's check_rate_limit, verbatim but for the schema (counts history).
-- -----------------------------------------------------------------------------
create function seed_ref.check_rate_limit(
    p_user_id varchar(100),
    p_action varchar(50),
    p_window_minutes integer default 1,
    p_max_requests integer default 60
)
returns boolean as $$
declare
    request_count integer;
begin
    select count(*) into request_count
    from seed_ref.sync_states
    where user_id = p_user_id
        and sync_event_type = p_action
        and created_at > now() - interval '1 minute' * p_window_minutes;
    return request_count < p_max_requests;
end;
$$ language plpgsql security definer;

-- -----------------------------------------------------------------------------
-- The seed's heartbeat: the member row is updated (its trigger stamps
-- last_heartbeat and copies the room's state) and a history row is inserted
-- for every heartbeat.
-- -----------------------------------------------------------------------------
create function seed_ref.record_heartbeat(
    p_room_id varchar(10),
    p_user_id varchar(100),
    p_current_time decimal(10,2),
    p_is_playing boolean
)
returns void as $$
declare
    v_host decimal(10,2);
begin
    update seed_ref.room_members
    set current_playback_time = p_current_time
    where room_id = p_room_id and user_id = p_user_id;
    select current_playback_time into v_host from seed_ref.rooms where room_id = p_room_id;
    insert into seed_ref.sync_states (
        room_id, user_id, host_time, member_time, time_difference, is_synced, sync_event_type
    ) values (
        p_room_id, p_user_id, v_host, p_current_time, abs(v_host - p_current_time),
        abs(v_host - p_current_time) <= 2, 'heartbeat'
    );
end;
$$ language plpgsql;

-- -----------------------------------------------------------------------------
-- The floor: the least work that could do the job. Unlogged, no index.
-- -----------------------------------------------------------------------------
create unlogged table seed_ref.floor_sync_states (
  room_id text, user_id text, host_time numeric, member_time numeric,
  time_difference numeric, is_synced boolean, sync_event_type text,
  created_at timestamptz default now()
);

-- -----------------------------------------------------------------------------
-- The floor of a single heartbeat RPC: the same security-definer call shape as
-- public.record_heartbeat (identity from the claims, then one write), doing
-- only the member's presence update: no validation, no room read, no drift,
-- no reply. What any heartbeat RPC costs in this transaction shape.
-- -----------------------------------------------------------------------------
create function seed_ref.floor_heartbeat(p_room_id text, p_current_time numeric, p_is_playing boolean)
returns void
language plpgsql
volatile
security definer
set search_path = ''
as $$
begin
  update watchium_private.member_presence as p
  set last_heartbeat = pg_catalog.now(), reported_time = p_current_time, is_playing = p_is_playing
  where p.room_id = p_room_id
    and p.user_id = pg_catalog.current_setting('request.jwt.claims', true)::jsonb ->> 'sub';
end;
$$;
grant usage on schema seed_ref to authenticated;
grant execute on function seed_ref.floor_heartbeat(text, numeric, boolean) to authenticated;

-- -----------------------------------------------------------------------------
-- "Seed, same transaction shape": the seed's heartbeat called as a Supabase
-- client calls an RPC (role authenticated, claims set, one transaction). The
-- privileges are Supabase's default grants on the seed's tables; the seed's
-- row-level security policies are left out, which can only make it faster.
-- -----------------------------------------------------------------------------
grant select, insert, update on seed_ref.rooms, seed_ref.room_members, seed_ref.sync_states
  to authenticated;
grant usage on all sequences in schema seed_ref to authenticated;
grant execute on function seed_ref.record_heartbeat(varchar, varchar, decimal, boolean)
  to authenticated;
