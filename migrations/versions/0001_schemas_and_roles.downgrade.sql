-- The bodies in watchium_rpc were dropped by the later revisions' downgrades.
-- This revision created the schema, and only our functions were in it.
-- squawk-ignore ban-drop-schema
drop schema watchium_rpc;

-- The roles are cluster-wide and may be shared with other databases and
-- applications: they are never dropped. The private schema holds the
-- migration version table, so it stays too; it is empty otherwise.
revoke usage on schema watchium_private from anon, authenticated, service_role;
