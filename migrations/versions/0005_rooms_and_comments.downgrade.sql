-- Reverses 0005: functions (dependents first), triggers, rate limit rules and settings.

drop trigger _300_member_left on public.room_members;
drop trigger _300_member_joined on public.room_members;
drop trigger _200_sync_room_host on public.room_members;

drop function watchium_private.maintain_rooms();
drop function public.get_or_create_anchor(text, integer);
drop function watchium_rpc.get_or_create_anchor(text, integer);
drop function public.get_comments(text, integer, text, text, integer);
drop function watchium_rpc.get_comments(text, integer, text, text, integer);
drop function public.delete_comment(bigint);
drop function watchium_rpc.delete_comment(bigint);
drop function public.edit_comment(bigint, text);
drop function watchium_rpc.edit_comment(bigint, text);
drop function watchium_private.own_comment(bigint, text, text);
drop function public.post_comment(text, integer, text, text, text, text, bigint, numeric);
drop function watchium_rpc.post_comment(text, integer, text, text, text, text, bigint, numeric);
drop function public.list_public_rooms(text, integer, text);
drop function watchium_rpc.list_public_rooms(text, integer, text);
drop function public.get_room_access_key(text);
drop function watchium_rpc.get_room_access_key(text);
drop function public.get_room(text);
drop function watchium_rpc.get_room(text);
drop function public.delete_room(text);
drop function watchium_rpc.delete_room(text);
drop function public.update_room(text, text, integer, text, boolean, boolean);
drop function watchium_rpc.update_room(text, text, integer, text, boolean, boolean);
drop function public.transfer_host(text, text);
drop function watchium_rpc.transfer_host(text, text);
drop function public.kick_member(text, text);
drop function watchium_rpc.kick_member(text, text);
drop function public.leave_room(text);
drop function watchium_rpc.leave_room(text);
drop function watchium_private.remove_member(public.rooms, text, text, jsonb);
drop function public.join_room(text, text, text, text);
drop function watchium_rpc.join_room(text, text, text, text);
drop function public.create_room(text, text, text, integer, text, text, text, boolean, text);
drop function watchium_rpc.create_room(text, text, text, integer, text, text, text, boolean, text);
drop function watchium_private.tg_room_members__member_left();
drop function watchium_private.tg_room_members__member_joined();
drop function watchium_private.tg_room_members__sync_room_host();
drop function watchium_private.ensure_anchor(text, integer);
drop function watchium_private.count_key_attempt(text, text, integer);
drop function watchium_private.check_membership_cap(text);
drop function watchium_private.hide_private_room(public.rooms, text, text);
drop function watchium_private.require_host(public.rooms, text);
drop function watchium_private.lock_room(text);
drop function watchium_private.room_expected_position(public.rooms, timestamptz);
drop function watchium_private.parse_cursor(text);
drop function watchium_private.make_cursor(timestamptz, text);
drop function watchium_private.check_limit(text, integer);
drop function watchium_private.check_video_time(text, numeric);
drop function watchium_private.check_episode(text, integer);
drop function watchium_private.check_url(text, text);
drop function watchium_private.check_username(text, text);
drop function watchium_private.check_text(text, text, integer, integer, boolean);
drop function watchium_private.generate_access_key();
drop function watchium_private.generate_room_id();
drop function watchium_private.random_bytes(integer);

delete from watchium_private.rate_limit_counters
where action in ('create_room', 'join_room', 'join_room_key_user', 'leave_room',
                 'kick_member', 'transfer_host', 'update_room', 'delete_room', 'post_comment',
                 'edit_comment', 'delete_comment', 'get_or_create_anchor', 'create_anchor');
delete from watchium_private.rate_limit_rules
where action in ('create_room', 'join_room', 'join_room_key_user', 'leave_room',
                 'kick_member', 'transfer_host', 'update_room', 'delete_room', 'post_comment',
                 'edit_comment', 'delete_comment', 'get_or_create_anchor', 'create_anchor');
delete from watchium_private.settings
where key in ('member_stale_after', 'empty_room_grace', 'empty_anchor_grace', 'max_memberships_per_user',
              'access_key_guess_budget', 'access_key_guess_budget_per_hour');
