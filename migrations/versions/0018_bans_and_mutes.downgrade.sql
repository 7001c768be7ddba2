-- Reverts 0018: the helpers, tables and rate limits of bans and mutes go.
-- Calls that began before the revisions above were downgraded may still run
-- their bodies, which call the helpers dropped here: they end first.
select watchium_private.await_older_transactions();

-- Lock order: the busy table first, then the one dropped here. Dropping a
-- table with a foreign key locks the table it references too; clients lock
-- public.rooms first (a delete there cascades into the other), so taking them in
-- that order, at once, closes no deadlock with them.
lock table public.rooms, watchium_private.room_bans, watchium_private.room_mutes in access exclusive mode;

drop function watchium_private.expire_room_moderation();
drop function watchium_private.require_not_muted(text, text);
drop function watchium_private.active_mute(text, text);
drop function watchium_private.active_ban(text, text);
drop function watchium_private.check_duration(text, integer);

drop table watchium_private.room_mutes;
drop table watchium_private.room_bans;
delete from watchium_private.rate_limit_counters where action in ('ban_member', 'mute_member', 'hide_member_comments');
delete from watchium_private.rate_limit_rules where action in ('ban_member', 'mute_member', 'hide_member_comments');
