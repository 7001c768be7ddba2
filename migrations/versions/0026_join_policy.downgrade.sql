-- =============================================================================
-- 0026 join policy (downgrade): the helpers, the join requests and
-- rooms.join_policy go.
-- =============================================================================
-- Calls that began before the revisions above were downgraded may still run
-- their bodies, which call the helpers dropped here: they end first.
select watchium_private.await_older_transactions();

-- Lock order: the busy table first, then the one dropped here. Dropping a
-- table with a foreign key locks the table it references too; clients lock
-- public.rooms first (a delete there cascades into the other), so taking them in
-- that order, at once, closes no deadlock with them.
lock table public.rooms, watchium_private.room_join_requests in access exclusive mode;

drop function watchium_private.live_join_request(text, text);
drop function watchium_private.require_not_banned(text, text);
drop function watchium_private.check_access_key(public.rooms, text, text);
drop function watchium_private.room_join_policy(public.rooms);

drop table watchium_private.room_join_requests;

drop trigger _060_align_join_policy on public.rooms;
drop function watchium_private.tg_rooms__align_join_policy();
alter table public.rooms drop column join_policy;

delete from watchium_private.settings
where key in ('max_join_requests_per_room', 'join_approval_valid_for', 'join_request_retry_after');
delete from watchium_private.rate_limit_rules
where action in ('request_to_join', 'answer_join_request', 'set_room_join_policy');
