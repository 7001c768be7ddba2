-- =============================================================================
-- 0017 hidden comments
--
-- comments.hidden_at / hidden_reason: a comment hidden from everyone but its
-- author (a shadow-muted member's, or a kicked or banned member's hidden by a
-- moderator: 0019 sets them). The select policies show a hidden comment to
-- its author only.
--
-- This revision changes public.comments alone (the only busy table it locks);
-- 0018's tables reference public.rooms, so they come in their own revision.
-- =============================================================================

-- -----------------------------------------------------------------------------
-- comments.hidden_at / hidden_reason: a hidden comment is visible to its
-- author only (policies below, get_comments). Nullable, no default: adding
-- them rewrites nothing. The check is added NOT VALID and validated in this
-- transaction: the ADD's ACCESS EXCLUSIVE lock is held during the scan (one
-- pass over comments, of which every existing row passes: both columns null).
-- -----------------------------------------------------------------------------
alter table public.comments add column hidden_at timestamptz;
alter table public.comments add column hidden_reason text;
comment on column public.comments.hidden_at is
  'When the comment was hidden from everyone but its author (null: visible): a shadow-muted member''s comment, or a kicked or banned member''s hidden by a moderator.';
comment on column public.comments.hidden_reason is
  'shadow_muted or moderated; null exactly when hidden_at is null.';
alter table public.comments
  add constraint comments_hidden_check
  check ((hidden_at is null) = (hidden_reason is null)
         and hidden_reason in ('shadow_muted', 'moderated')) not valid;
-- squawk-ignore constraint-missing-not-valid
alter table public.comments validate constraint comments_hidden_check;

-- The authenticated policy compares the author with the caller, once per
-- statement: the identity function is executable by authenticated.
grant execute on function watchium_private.current_user_id() to authenticated;

drop policy comments_select_anon on public.comments;
create policy comments_select_anon on public.comments
  for select to anon
  using (
    hidden_at is null
    and (room_id is null
         or exists (select from public.rooms as r where r.room_id = comments.room_id and r.is_public))
  );
comment on policy comments_select_anon on public.comments is
  'Anonymous callers see visible episode comments without a room and visible comments of public rooms.';

drop policy comments_select_authenticated on public.comments;
create policy comments_select_authenticated on public.comments
  for select to authenticated
  using (
    (hidden_at is null or user_id = (select watchium_private.current_user_id()))
    and (room_id is null
         or room_id in (select watchium_private.my_room_ids())
         or exists (select from public.rooms as r where r.room_id = comments.room_id and r.is_public))
  );
comment on policy comments_select_authenticated on public.comments is
  'Signed-in callers see episode comments, comments of public rooms and of their rooms; a hidden comment only when they wrote it.';

