-- =============================================================================
-- 0010 the per-room permission map
--
-- Each room permission has a minimum role. The defaults live in
-- watchium_private.room_permission_catalogue; a room's overrides in
-- public.room_permissions (one row per changed permission). The defaults
-- reproduce the behaviour of 0.1.0 exactly: what only the host could do needs
-- co_host or host, what every member could do needs member, and every member
-- is a member until someone with manage_roles gives them another role (nobody
-- is a co-host or a viewer before that).
--
-- The check every function calls: watchium_private.has_room_permission(room,
-- user, permission) (boolean) and watchium_private.require_room_permission
-- (raises 42501), both STABLE.
--
-- Needs room_members.role (0009). Locks no busy table but public.rooms (the
-- foreign key of room_permissions).
-- =============================================================================

-- -----------------------------------------------------------------------------
-- watchium_private.room_permission_catalogue: every room permission and its
-- default minimum role. A room without an override uses the default.
-- -----------------------------------------------------------------------------
create table watchium_private.room_permission_catalogue (
  permission       text not null,
  default_min_role text not null,
  description      text not null,
  constraint room_permission_catalogue_pkey primary key (permission),
  constraint room_permission_catalogue_permission_check check (permission ~ '^[a-z][a-z_]{0,39}$'),
  constraint room_permission_catalogue_default_min_role_check
    check (default_min_role in ('host', 'co_host', 'member', 'viewer'))
);
comment on table watchium_private.room_permission_catalogue is
  'The room permissions and their default minimum role (host > co_host > member > viewer). public.room_permissions overrides them per room. Internal: readable through get_room_permissions.';
comment on column watchium_private.room_permission_catalogue.permission is 'The permission''s name (lower case, underscores).';
comment on column watchium_private.room_permission_catalogue.default_min_role is 'The minimum role a member needs for it in a room without an override.';
comment on column watchium_private.room_permission_catalogue.description is 'What the permission allows, and which functions check it.';
alter table watchium_private.room_permission_catalogue enable row level security;
revoke all on table watchium_private.room_permission_catalogue from public;

insert into watchium_private.room_permission_catalogue (permission, default_min_role, description) values
  ('control_playback',   'co_host', 'Play, pause, seek and change the speed (change_playback_state, seek_to_time, set_playback_speed).'),
  ('edit_queue',         'co_host', 'Move, remove and advance the room''s episode queue.'),
  ('add_to_queue',       'member',  'Add episodes to the room''s queue.'),
  ('chat',               'member',  'Send member broadcasts (broadcast_to_room).'),
  ('comment',            'member',  'Post comments in the room (post_comment with p_room_id).'),
  ('kick',               'co_host', 'Remove a member of a lower role from the room.'),
  ('ban',                'co_host', 'Ban a user of a lower role from the room, for a time or for good.'),
  ('mute',               'co_host', 'Mute a member of a lower role, for a time.'),
  ('moderate_comments',  'co_host', 'Delete or hide comments of members of a lower role in the room.'),
  ('approve_joins',      'co_host', 'Accept or refuse requests to join a room whose join policy is approval.'),
  ('update_room',        'host',    'Change the title, episode, video, privacy, access key and join policy (update_room).'),
  ('manage_roles',       'host',    'Give members of a lower role another role below one''s own (set_member_role).'),
  ('manage_permissions', 'host',    'Change the room''s permission map (set_room_permission), within one''s own role.');

-- -----------------------------------------------------------------------------
-- public.room_permissions: a room's overrides of the catalogue.
-- -----------------------------------------------------------------------------
create table public.room_permissions (
  room_id    text        not null,
  permission text        not null,
  min_role   text        not null,
  updated_by text,
  updated_at timestamptz not null default now(),
  constraint room_permissions_pkey primary key (room_id, permission),
  constraint room_permissions_room_id_fkey foreign key (room_id)
    references public.rooms (room_id) on delete cascade,
  constraint room_permissions_permission_fkey foreign key (permission)
    references watchium_private.room_permission_catalogue (permission),
  constraint room_permissions_min_role_check check (min_role in ('host', 'co_host', 'member', 'viewer')),
  constraint room_permissions_updated_by_length_check check (char_length(updated_by) between 1 and 100)
);
comment on table public.room_permissions is
  'Per-room overrides of the permission catalogue: the minimum role (host > co_host > member > viewer) a member needs for a permission. Permissions without a row use their default. Readable like room_members (members of the room; anyone for public rooms); written only by set_room_permission.';
comment on column public.room_permissions.room_id is 'The room.';
comment on column public.room_permissions.permission is 'A permission of watchium_private.room_permission_catalogue.';
comment on column public.room_permissions.min_role is 'The minimum role a member of this room needs for the permission: host, co_host, member or viewer.';
comment on column public.room_permissions.updated_at is 'When it was last set.';
comment on column public.room_permissions.updated_by is 'The user who set it (null when set by a trusted caller).';

revoke all on table public.room_permissions from public, anon, authenticated, service_role;
grant select on table public.room_permissions to anon, authenticated, service_role;
alter table public.room_permissions enable row level security;

create policy room_permissions_select_anon on public.room_permissions
  for select to anon
  using (exists (
    select from public.rooms as r where r.room_id = room_permissions.room_id and r.is_public
  ));
comment on policy room_permissions_select_anon on public.room_permissions is
  'Anonymous callers see the permission overrides of public rooms.';

create policy room_permissions_select_authenticated on public.room_permissions
  for select to authenticated
  using (
    room_id in (select watchium_private.my_room_ids())
    or exists (
      select from public.rooms as r where r.room_id = room_permissions.room_id and r.is_public
    )
  );
comment on policy room_permissions_select_authenticated on public.room_permissions is
  'Signed-in callers see the permission overrides of their rooms and of public rooms.';

-- -----------------------------------------------------------------------------
-- watchium_private.role_rank(role): viewer 1, member 2, co_host 3, host 4;
-- 0 for null (not a member). Immutable.
-- -----------------------------------------------------------------------------
create function watchium_private.role_rank(p_role text)
returns integer
language plpgsql  -- not sql: a SQL function with SET is planned again on every call
immutable
set search_path = pg_catalog, pg_temp
as $$
begin
  return coalesce(pg_catalog.array_position(array['viewer', 'member', 'co_host', 'host']::text[], p_role), 0);
end;
$$;
comment on function watchium_private.role_rank(text) is
  'Rank of a room role: viewer 1, member 2, co_host 3, host 4; 0 for null or anything else (not a member). Internal.';
revoke all on function watchium_private.role_rank(text) from public;

-- -----------------------------------------------------------------------------
-- watchium_private.room_permission_min_role(room_id, permission): the minimum
-- role of a permission in a room (its override, else its default). 22023 for
-- a permission the catalogue does not know.
-- -----------------------------------------------------------------------------
create function watchium_private.room_permission_min_role(p_room_id text, p_permission text)
returns text
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
declare
  v_min text;
begin
  select coalesce(o.min_role, c.default_min_role) into v_min
  from watchium_private.room_permission_catalogue as c
  left join public.room_permissions as o
    on o.room_id = p_room_id and o.permission = c.permission
  where c.permission = p_permission;
  if v_min is null then
    raise exception 'p_permission must be a room permission (got %)', coalesce(p_permission, 'null')
      using errcode = '22023',
            hint = 'The permissions are listed in watchium_private.room_permission_catalogue.';
  end if;
  return v_min;
end;
$$;
comment on function watchium_private.room_permission_min_role(text, text) is
  'The minimum role p_permission needs in room p_room_id: the room''s override, else the catalogue default; 22023 for an unknown permission. Internal.';
revoke all on function watchium_private.room_permission_min_role(text, text) from public;

-- -----------------------------------------------------------------------------
-- watchium_private.has_room_permission(room_id, user_id, permission): true
-- when user_id is a member of the room whose role ranks at least the
-- permission's minimum role there. False for non-members (and a null user).
-- Reads two primary-key rows; takes no lock. 22023 for an unknown permission.
-- The caller decides what trusted callers (service_role) may do.
-- -----------------------------------------------------------------------------
create function watchium_private.has_room_permission(p_room_id text, p_user_id text, p_permission text)
returns boolean
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
declare
  v_min  text := watchium_private.room_permission_min_role(p_room_id, p_permission);
  v_role text;
begin
  select m.role into v_role
  from public.room_members as m
  where m.room_id = p_room_id and m.user_id = p_user_id;
  return watchium_private.role_rank(v_role) >= watchium_private.role_rank(v_min)
         and v_role is not null;
end;
$$;
comment on function watchium_private.has_room_permission(text, text, text) is
  'True when p_user_id is a member of room p_room_id whose role ranks at least the minimum role of p_permission there (room override, else default); false for non-members. 22023 for an unknown permission. Internal: the one permission check of the room functions.';
revoke all on function watchium_private.has_room_permission(text, text, text) from public;

-- -----------------------------------------------------------------------------
-- watchium_private.require_room_permission(room_id, user_id, permission):
-- has_room_permission, raising 42501 (the project's "forbidden") when false,
-- with the role it needs. Call it after hide_private_room, so a non-member of
-- a private room is answered P0002 before this.
-- -----------------------------------------------------------------------------
create function watchium_private.require_room_permission(p_room_id text, p_user_id text, p_permission text)
returns void
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
declare
  v_min  text := watchium_private.room_permission_min_role(p_room_id, p_permission);
  v_role text;
begin
  select m.role into v_role
  from public.room_members as m
  where m.room_id = p_room_id and m.user_id = p_user_id;
  if v_role is null or watchium_private.role_rank(v_role) < watchium_private.role_rank(v_min) then
    raise exception 'permission % in room % needs the % role (you are %)',
      p_permission, p_room_id, v_min, coalesce(v_role, 'not a member')
      using errcode = '42501',
            hint = case when v_role is null then 'Join the room first.'
                        else 'Ask the host for a higher role or a change of the room''s permissions.' end;
  end if;
end;
$$;
comment on function watchium_private.require_room_permission(text, text, text) is
  'Raises 42501 unless has_room_permission(p_room_id, p_user_id, p_permission); the message names the role needed. Internal.';
revoke all on function watchium_private.require_room_permission(text, text, text) from public;
