drop function public.check_rate_limit(text, text, integer, integer);
drop function watchium_rpc.check_rate_limit(text, text, integer, integer);
drop function watchium_private.enforce_rate_limit(text, text);
drop function watchium_private.consume_rate_limit(text, text, integer, integer);
drop table watchium_private.rate_limit_counters;
drop table watchium_private.rate_limit_rules;

drop policy sync_states_select_authenticated on public.sync_states;
drop policy comments_select_authenticated on public.comments;
drop policy comments_select_anon on public.comments;
drop policy room_members_select_authenticated on public.room_members;
drop policy room_members_select_anon on public.room_members;
drop policy rooms_select_authenticated on public.rooms;
drop policy rooms_select_anon on public.rooms;

alter table watchium_private.member_presence disable row level security;
alter table watchium_private.room_secrets disable row level security;
alter table public.sync_states_default disable row level security;
alter table public.sync_states disable row level security;
alter table public.comments disable row level security;
alter table public.room_members disable row level security;
alter table public.rooms disable row level security;

-- Back to the privileges the tables had before this revision: the database's
-- default privileges (on Supabase, ALL for anon, authenticated, service_role)
-- are not re-granted here; a downgrade never widens access.

drop function watchium_private.my_room_ids();
drop function watchium_private.caller_is_trusted();
drop function watchium_private.require_user_id();
drop function watchium_private.current_user_id();
drop function watchium_private.check_size(text, integer, integer);
drop function watchium_private.setting_integer(text);
drop trigger settings_apply_rpc_lock_timeout on watchium_private.settings;
drop function watchium_private.tg_settings__apply_rpc_lock_timeout();
drop function watchium_private.setting_interval(text);
drop table watchium_private.settings;
