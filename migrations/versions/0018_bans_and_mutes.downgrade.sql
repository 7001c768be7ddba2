-- Reverts 0018: the helpers, tables and rate limits of bans and mutes go.
drop function watchium_private.expire_room_moderation();
drop function watchium_private.require_not_muted(text, text);
drop function watchium_private.active_mute(text, text);
drop function watchium_private.active_ban(text, text);
drop function watchium_private.check_duration(text, integer);

drop table watchium_private.room_mutes;
drop table watchium_private.room_bans;
delete from watchium_private.rate_limit_counters where action in ('ban_member', 'mute_member', 'hide_member_comments');
delete from watchium_private.rate_limit_rules where action in ('ban_member', 'mute_member', 'hide_member_comments');
