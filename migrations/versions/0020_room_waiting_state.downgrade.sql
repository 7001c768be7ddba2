-- Reverts 0020: the waiting-state columns of public.rooms go (their check
-- with them).
alter table public.rooms
  drop column ready_check_min_ready,
  drop column sync_deadline,
  drop column waiting_reason,
  drop column waiting_since;
