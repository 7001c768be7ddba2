"""schema/ agrees with the migrations, and is enough on its own to build the same schema.

The second check is procrastinate's: build one database from the migrations and one from the
declarative files, dump both, diff. Both databases get the Supabase stand-in first (roles, the
auth schema, default grants): schema/ describes what watchium-db adds to such a platform, so
loading it needs the platform, as the migrations do. The publication needs no special case: the
migrations create it when absent, and 60_realtime.sql creates it on the empty database.
"""

from __future__ import annotations

import difflib
from pathlib import Path

import psycopg
import pytest

from watchium_db.devtools import schema_dump
from watchium_db.testing import (
    TestServer,
    create_database,
    drop_database,
    install_supabase_standin,
)


@pytest.fixture(scope="module")
def baseline(watchium_server: TestServer) -> list[schema_dump.Entry]:
    return schema_dump.baseline_entries(watchium_server)


def test_schema_folder_matches_the_migrations(watchium_server, tmp_path):
    expected = tmp_path / "schema"
    schema_dump.write_files(expected, schema_dump.generate(watchium_server))
    diff = schema_dump.diff_folders(expected, schema_dump.SCHEMA_DIR)
    assert not diff, "schema/ is stale: run `make schema` and commit it\n" + diff


def test_schema_folder_alone_builds_the_same_schema(watchium_server, baseline, request):
    name = f"watchium_from_schema_{abs(hash(request.node.nodeid)) % 10**8}"
    url = create_database(watchium_server, name)
    try:
        install_supabase_standin(url)
        schema_dump.load_concern_files(url, baseline)
        rebuilt = schema_dump.render_all(schema_dump.entries_of(url, baseline))
    finally:
        drop_database(watchium_server.maintenance_url, name)
    committed = (schema_dump.SCHEMA_DIR / schema_dump.SNAPSHOT).read_text(encoding="utf-8")
    # Only the printing of nested AND/OR chains may differ (see flatten_boolean_chains).
    diff = "".join(
        difflib.unified_diff(
            schema_dump.flatten_boolean_chains(committed).splitlines(keepends=True),
            schema_dump.flatten_boolean_chains(rebuilt[schema_dump.SNAPSHOT]).splitlines(keepends=True),
            "schema/snapshot.sql (from the migrations)",
            "dump of a database built from schema/[0-9]*.sql",
        )
    )
    assert not diff, diff


def test_every_dump_entry_lands_in_exactly_one_concern_file():
    snapshot = (schema_dump.SCHEMA_DIR / schema_dump.SNAPSHOT).read_text(encoding="utf-8")
    body = snapshot.split("\n\n", 1)[1]
    parts = [
        f.read_text(encoding="utf-8").split("\n\n", 1)[1]
        for f in schema_dump.concern_files(schema_dump.SCHEMA_DIR)
    ]
    statements = lambda text: sorted(s.strip() for s in text.split("\n\n") if s.strip())  # noqa: E731
    assert statements("\n\n".join(parts)) == statements(body)


def test_every_generated_file_says_it_is_generated():
    files = sorted(Path(schema_dump.SCHEMA_DIR).glob("*.sql"))
    assert files
    for path in files:
        assert path.read_text(encoding="utf-8").startswith(schema_dump.HEADER), path


def test_check_reports_a_stale_folder(tmp_path):
    committed = tmp_path / "committed"
    fresh = tmp_path / "fresh"
    files = {"snapshot.sql": "create table public.t ();\n", "10_tables.sql": "x\n"}
    schema_dump.write_files(fresh, files)
    schema_dump.write_files(committed, {**files, "snapshot.sql": "create table public.u ();\n"})
    diff = schema_dump.diff_folders(fresh, committed)
    assert "-create table public.u ();" in diff and "+create table public.t ();" in diff
    (committed / "snapshot.sql").write_text(files["snapshot.sql"])
    assert schema_dump.diff_folders(fresh, committed) == ""
    (committed / "99_leftover.sql").write_text("y\n")
    assert "99_leftover.sql" in schema_dump.diff_folders(fresh, committed)


def test_split_sends_each_object_to_its_concern():
    dump = "\n".join(
        [
            "--\n-- Name: f(); Type: FUNCTION; Schema: public; Owner: -\n--\n\nCREATE FUNCTION public.f() ...;\n",
            "--\n-- Name: FUNCTION f(); Type: ACL; Schema: public; Owner: -\n--\n\nREVOKE ALL ON FUNCTION public.f() FROM PUBLIC;\n",
            "--\n-- Name: t; Type: TABLE; Schema: public; Owner: -\n--\n\nCREATE TABLE public.t (a int);\n\n\nSET default_tablespace = '';\n",
            "--\n-- Name: TABLE t; Type: ACL; Schema: public; Owner: -\n--\n\nGRANT SELECT ON TABLE public.t TO anon;\n",
            "--\n-- Name: t; Type: ROW SECURITY; Schema: public; Owner: -\n--\n\nALTER TABLE public.t ENABLE ROW LEVEL SECURITY;\n",
            "--\n-- Name: t p; Type: POLICY; Schema: public; Owner: -\n--\n\nCREATE POLICY p ON public.t;\n",
            "--\n-- Name: t tg; Type: TRIGGER; Schema: public; Owner: -\n--\n\nCREATE TRIGGER tg ...;\n",
            "--\n-- Name: supabase_realtime; Type: PUBLICATION; Schema: -; Owner: -\n--\n\nCREATE PUBLICATION supabase_realtime;\n",
            "--\n-- Name: DEFAULT PRIVILEGES FOR TABLES; Type: DEFAULT ACL; Schema: watchium_private; Owner: -\n--\n\nALTER DEFAULT PRIVILEGES ...;\n",
            "--\n-- PostgreSQL database dump complete\n--\n",
        ]
    )
    groups = schema_dump.split(schema_dump.parse(dump))
    flat = {name: [e.sql for e in entries] for name, entries in groups.items()}
    assert flat == {
        "20_functions.sql": ["CREATE FUNCTION public.f() ...;", "REVOKE ALL ON FUNCTION public.f() FROM PUBLIC;"],
        "10_tables.sql": ["CREATE TABLE public.t (a int);", "GRANT SELECT ON TABLE public.t TO anon;"],
        "40_policies.sql": ["ALTER TABLE public.t ENABLE ROW LEVEL SECURITY;", "CREATE POLICY p ON public.t;"],
        "30_triggers.sql": ["CREATE TRIGGER tg ...;"],
        "60_realtime.sql": ["CREATE PUBLICATION supabase_realtime;"],
        "50_privileges.sql": ["ALTER DEFAULT PRIVILEGES ...;"],
    }


@pytest.mark.parametrize(
    ("printed", "flat"),
    [
        ("CHECK ((((a >= 1) AND (a <= 2)) AND (b ~ '(x'::text)))", "CHECK (((a >= 1) AND (a <= 2) AND (b ~ '(x'::text)))"),
        ("CHECK ((((a < 1) OR (a > 2)) OR (b IS NULL)))", "CHECK (((a < 1) OR (a > 2) OR (b IS NULL)))"),
        # Different operators keep their parentheses: the meaning depends on them.
        ("CHECK ((((a) OR (b)) AND (c)))", "CHECK ((((a) OR (b)) AND (c)))"),
        ("CHECK ((((a) AND (b)) OR (c)))", "CHECK ((((a) AND (b)) OR (c)))"),
        ("    AS $$ begin if (x and (y", "    AS $$ begin if (x and (y"),
    ],
)
def test_flatten_boolean_chains_only_drops_redundant_parentheses(printed, flat):
    assert schema_dump.flatten_boolean_chains(printed) == flat


def test_functions_that_tables_call_come_before_the_tables():
    dump = (
        "--\n-- Name: new_id(); Type: FUNCTION; Schema: watchium_private; Owner: -\n--\n\nCREATE FUNCTION watchium_private.new_id() ...;\n"
        "--\n-- Name: t; Type: TABLE; Schema: public; Owner: -\n--\n\nCREATE TABLE public.t (a text DEFAULT watchium_private.new_id());\n"
    )
    groups = schema_dump.split(schema_dump.parse(dump))
    assert [e.name for e in groups["10_tables.sql"]] == ["new_id()", "t"]
    assert "20_functions.sql" not in groups or not groups["20_functions.sql"]


def test_platform_objects_are_left_out(baseline):
    names = {(e.type, e.schema, e.name) for e in baseline}
    # The stand-in's objects are the baseline, so they never reach schema/.
    assert ("SCHEMA", "-", "auth") in names
    snapshot = (schema_dump.SCHEMA_DIR / schema_dump.SNAPSHOT).read_text(encoding="utf-8")
    assert "CREATE SCHEMA auth" not in snapshot and "ALTER DEFAULT PRIVILEGES" not in snapshot
    assert "CREATE SCHEMA watchium_private;" in snapshot
    assert "CREATE TABLE public.rooms" in snapshot
    assert "REVOKE ALL ON FUNCTION watchium_private.tg__touch_updated_at() FROM PUBLIC;" in snapshot
    assert "\\restrict" not in snapshot and "SET statement_timeout" not in snapshot


def test_run_time_partitions_are_not_in_the_schema(watchium_conn, watchium_db_url):
    # Maintenance creates hourly partitions; a database that has one still dumps the same schema.
    watchium_conn.execute(
        "create table public.sync_states_p2000010100 partition of public.sync_states"
        " for values from ('2000-01-01 00:00+00') to ('2000-01-01 01:00+00')"
    )
    dump = schema_dump.pg_dump(watchium_db_url)
    assert "sync_states_p2000010100" not in dump
    assert "CREATE TABLE public.sync_states_default" in dump


ROUND_TRIP_EXTRAS = """
create function watchium_private.new_room_code() returns text language sql volatile
  set search_path = pg_catalog, pg_temp as $$ select 'abcdefghij' $$;
alter table public.rooms alter column room_id set default watchium_private.new_room_code();
create function public.room_count() returns bigint language sql stable
  set search_path = pg_catalog, pg_temp as $$ select count(*) from public.rooms $$;
revoke all on function public.room_count() from public, anon;
revoke all on table public.room_members from anon;
create view public.public_rooms with (security_invoker) as
  select room_id from public.rooms where is_public;
comment on column public.public_rooms.room_id is 'The room.';
create policy rooms_select_extra on public.rooms for select to anon, authenticated using (is_public);
create publication extra_publication for table public.rooms, public.sync_states
  with (publish_via_partition_root = true);
"""


def test_round_trip_holds_for_what_later_revisions_add(
    watchium_db_url, empty_db_url, baseline, tmp_path
):
    # Views, policies, a publication, a function a default calls, and grants revoked from the
    # platform's defaults: each must land in a file that loads, and rebuild the same schema.
    with psycopg.connect(watchium_db_url, autocommit=True) as conn:
        conn.execute(ROUND_TRIP_EXTRAS)
    files = schema_dump.render_all(schema_dump.entries_of(watchium_db_url, baseline))
    assert {"25_views.sql", "40_policies.sql", "60_realtime.sql"} <= set(files)
    assert "REVOKE ALL ON FUNCTION public.room_count() FROM PUBLIC;" in files["20_functions.sql"]
    assert "CREATE PUBLICATION extra_publication" in files["60_realtime.sql"]
    schema_dump.write_files(tmp_path, files)
    schema_dump.load_concern_files(empty_db_url, baseline, tmp_path)
    rebuilt = schema_dump.render_all(schema_dump.entries_of(empty_db_url, baseline))
    flat = schema_dump.flatten_boolean_chains
    assert flat(rebuilt[schema_dump.SNAPSHOT]) == flat(files[schema_dump.SNAPSHOT])
    with psycopg.connect(empty_db_url) as conn:
        anon_can = conn.execute(
            "select has_function_privilege('anon', 'public.room_count()', 'execute'),"
            " has_table_privilege('anon', 'public.room_members', 'select'),"
            " (select count(*) from pg_default_acl)"
        ).fetchone()
    assert anon_can == (False, False, 3)  # revokes reproduced; platform defaults back on


def test_undo_default_acl_flips_grants_and_revokes():
    sql = (
        "ALTER DEFAULT PRIVILEGES FOR ROLE postgres IN SCHEMA public GRANT ALL ON TABLES  TO anon;\n"
        "ALTER DEFAULT PRIVILEGES FOR ROLE postgres REVOKE ALL ON FUNCTIONS  FROM PUBLIC;"
    )
    assert schema_dump._undo_default_acl(sql).splitlines() == [
        "ALTER DEFAULT PRIVILEGES FOR ROLE postgres IN SCHEMA public REVOKE ALL ON TABLES  FROM anon;",
        "ALTER DEFAULT PRIVILEGES FOR ROLE postgres GRANT ALL ON FUNCTIONS  TO PUBLIC;",
    ]
