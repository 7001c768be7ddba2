-- =============================================================================
-- 0038 scheduled_start_at in one statement
--
-- A play (and a seek while playing) computes its scheduled start with
-- watchium_private.scheduled_start_at. Its definition of 0031 made three
-- nested calls and three statements for a handful of rows: room_sync_options
-- (which calls sync_option_defaults: seven settings), a second settings read
-- (member_stale_after, sync_max_rtt_start_lead), then the percentile over the
-- room's presence rows. About 180 µs per play in a room of 10 on the bench
-- machine, a fifth of the play's time in the database.
--
-- Now one statement: the four settings it uses (member_stale_after,
-- sync_max_rtt_start_lead, sync_min_start_lead, sync_episode_countdown) read
-- once, the room's own minimum lead and countdown taken from p_room, and the
-- percentile joined to them. It is planned once per session (a generic plan
-- through the presence primary key), not on every call; the live bound is
-- computed once, not once per presence row; the RTTs are sorted as stored,
-- not cast to double precision row by row (that cast goes through text).
-- The result is the same instant for every room and setting: the same
-- candidates and defaults (30 s, 5 s, 0.5 s, 0 s), and percentile_disc returns
-- the same member's RTT. Settings it does not use (the drift boundaries, the
-- load timeouts) are no longer read, so a malformed value of one of those no
-- longer fails a start (it still fails what uses it).
-- No table lock; functions only.
-- lock_timeout and statement_timeout are set by migrations/env.py.
-- =============================================================================

create or replace function watchium_private.scheduled_start_at(
  p_room public.rooms,
  p_at timestamptz,
  p_episode_start boolean
)
returns timestamptz
language plpgsql
stable
set search_path = pg_catalog, pg_temp
-- plan_cache_mode: PL/pgSQL kept choosing a custom plan for this statement
-- (the room's rows are estimated from its id) and planned it again on every
-- call, which cost more than running it. enable_seqscan: the generic plan must
-- not read every presence row when statistics see few rooms (a fresh or small
-- database); the primary key (room_id, user_id) finds the room's rows.
set plan_cache_mode = force_generic_plan
set enable_seqscan = off
as $$
begin
  -- p_at + greatest(
  --   the room's minimum start lead (rooms.sync_min_start_lead, else the
  --     setting sync_min_start_lead, default 0.5 s),
  --   the round-trip lead: 2 × the 90th percentile (percentile_disc: a value
  --     some member has) of the smoothed RTT of the room's members with a
  --     known RTT and a heartbeat within member_stale_after (default 30 s) of
  --     p_at, at most the setting sync_max_rtt_start_lead (default 5 s); 0
  --     when none,
  --   for an episode start: the room's episode countdown
  --     (rooms.sync_episode_countdown, else the setting, default 0 s)).
  -- Written out here, not through room_sync_options or a helper: one
  -- statement, and a host control that began before this revision's
  -- downgrade could still call a helper the downgrade drops. The live bound
  -- (p_at - member_stale_after) is computed once, not once per presence row.
  -- RTTs are sorted as they are stored (numeric; 0031 sorted them as double
  -- precision, but the cast goes through text for every row): the same
  -- value, since percentile_disc returns one of its inputs and an rtt_ms
  -- (numeric(8,1)) came back unchanged from a double. The percentile reads
  -- the room's presence rows through their primary key.
  return (
    select p_at + pg_catalog.make_interval(secs => greatest(
             coalesce(p_room.sync_min_start_lead, st.min_start_lead),
             least(coalesce(2 * lead.p90 / 1000, 0), st.cap),
             case when p_episode_start
                  then coalesce(p_room.sync_episode_countdown, st.episode_countdown)
                  else 0 end
           )::double precision)
    from (
      select p_at - coalesce(pg_catalog.min((s.value #>> '{}')::interval) filter (where s.key = 'member_stale_after'),
                             interval '30 seconds') as live_since,
             coalesce(pg_catalog.min((s.value #>> '{}')::numeric) filter (where s.key = 'sync_max_rtt_start_lead'),
                      5) as cap,
             coalesce(pg_catalog.min((s.value #>> '{}')::numeric) filter (where s.key = 'sync_min_start_lead'),
                      0.5) as min_start_lead,
             coalesce(pg_catalog.min((s.value #>> '{}')::numeric) filter (where s.key = 'sync_episode_countdown'),
                      0) as episode_countdown
      from watchium_private.settings as s
      where s.key in ('member_stale_after', 'sync_max_rtt_start_lead',
                      'sync_min_start_lead', 'sync_episode_countdown')
    ) as st
    cross join lateral (
      select pg_catalog.percentile_disc(0.9) within group (order by p.rtt_ms) as p90
      from watchium_private.member_presence as p
      where p.room_id = p_room.room_id
        and p.rtt_ms is not null
        and p.last_heartbeat >= st.live_since
    ) as lead
  );
end;
$$;
comment on function watchium_private.scheduled_start_at(public.rooms, timestamptz, boolean) is
  'When a start decided at p_at takes effect: p_at + the greatest of the room''s minimum start lead, the round-trip lead (2 × the live members'' 90th percentile RTT, capped by sync_max_rtt_start_lead) and, for an episode start, its countdown. Stored as rooms.playback_updated_at with is_playing true. One statement. Internal.';
