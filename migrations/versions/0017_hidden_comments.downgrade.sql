-- Reverts 0017: the comment select policies as they were before it come back.
drop policy comments_select_authenticated on public.comments;
create policy comments_select_authenticated on public.comments
  for select to authenticated
  using (
    room_id is null
    or room_id in (select watchium_private.my_room_ids())
    or exists (select from public.rooms as r where r.room_id = comments.room_id and r.is_public)
  );
comment on policy comments_select_authenticated on public.comments is
  'Signed-in callers see episode comments, comments of public rooms and of their rooms.';
drop policy comments_select_anon on public.comments;
create policy comments_select_anon on public.comments
  for select to anon
  using (
    room_id is null
    or exists (select from public.rooms as r where r.room_id = comments.room_id and r.is_public)
  );
comment on policy comments_select_anon on public.comments is
  'Anonymous callers see episode comments without a room and comments of public rooms.';
revoke execute on function watchium_private.current_user_id() from authenticated;

-- The check constraint goes with the columns.
alter table public.comments drop column hidden_reason;
alter table public.comments drop column hidden_at;
