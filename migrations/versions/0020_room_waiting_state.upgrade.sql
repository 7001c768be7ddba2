-- =============================================================================
-- 0020 the room's waiting state
--
-- Four columns of public.rooms for the group wait and the ready check of
-- 0021: why and since when the room waits, its earliest pending deadline,
-- and a ready check's threshold. Nothing writes them before 0021.
--
-- This revision changes public.rooms alone (the only busy table it locks);
-- 0021's member_playback references public.room_members, so it comes in its
-- own revision.
-- =============================================================================

-- New nullable columns without a default: no table rewrite, and the
-- ACCESS EXCLUSIVE lock of ALTER TABLE is held only for the catalog change.
alter table public.rooms
  add column waiting_since timestamptz,
  add column waiting_reason text,
  add column sync_deadline timestamptz,
  add column ready_check_min_ready integer;

-- NOT VALID: every existing row has the new columns null and satisfies the
-- check; validating would scan the table under the lock of this ALTER. New and
-- updated rows are checked.
alter table public.rooms
  add constraint rooms_waiting_state_check check (
    (waiting_since is null) = (waiting_reason is null)
    and (waiting_reason is null or waiting_reason in ('buffering', 'ready_check'))
    and (ready_check_min_ready is null
         or (waiting_reason = 'ready_check' and ready_check_min_ready between 1 and 100000))
  ) not valid;

comment on column public.rooms.waiting_since is 'When the room started waiting (paused for buffering members or a ready check); null when it is not waiting.';
comment on column public.rooms.waiting_reason is 'Why the room waits: buffering (members blocking, each until its excuse deadline) or ready_check; null when it is not waiting.';
comment on column public.rooms.sync_deadline is 'The earliest pending deadline of the room (a blocking member''s excuse, or the ready check''s end): the first call on the room at or after it applies it, and maintain() sweeps it. Null when nothing is pending.';
comment on column public.rooms.ready_check_min_ready is 'During a ready check: how many ready members start playback; null means every member.';

