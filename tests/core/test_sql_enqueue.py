"""nightcrew.enqueue() in SQL and from triggers; dedupe scopes under concurrency."""

from __future__ import annotations

import asyncio
import re
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from nightcrew import App, JobContext, JobStatus
from tests.support import await_until

DOCS_FLOWS = Path(__file__).resolve().parents[2] / "docs" / "flows.md"
# Connections open at once in the concurrency tests: the shared test server allows 100 in
# all, and other test runs use some; each transaction still has a connection of its own.
MAX_OPEN_CONNECTIONS = 40
TRANSACTIONS = 100

TRIGGER_SQL = """
CREATE TABLE IF NOT EXISTS items (id integer PRIMARY KEY, content text NOT NULL);
CREATE OR REPLACE FUNCTION items_enqueue() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM nightcrew.enqueue(TG_ARGV[1], payload => jsonb_build_object('item', NEW.id),
                              dedupe_key => 'items', dedupe_scope => TG_ARGV[0]);
    RETURN NULL;
END
$$;
"""


def make_trigger(url: str, scope: str, job_type: str = "t.sql") -> None:
    """(Re)create the items table's trigger: ``job_type`` jobs with one key in ``scope``."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(TRIGGER_SQL)
        conn.execute("DROP TRIGGER IF EXISTS items_enqueue ON items")
        conn.execute(
            "CREATE TRIGGER items_enqueue AFTER INSERT OR UPDATE OF content ON items"
            f" FOR EACH ROW EXECUTE FUNCTION items_enqueue('{scope}', '{job_type}')"
        )
        conn.execute("TRUNCATE items")
        conn.execute(
            "INSERT INTO items SELECT g, 'v0' FROM generate_series(1, %s) AS g", (TRANSACTIONS,)
        )
        conn.execute("TRUNCATE nightcrew.jobs")  # the inserts above enqueued


def concurrent_updates(url: str, *, rollback_every: int = 3) -> None:
    """``TRANSACTIONS`` transactions in threads, each on its own connection, each updating
    its own row (whose trigger enqueues); every ``rollback_every``-th rolls back."""
    slots = threading.BoundedSemaphore(MAX_OPEN_CONNECTIONS)
    start = threading.Event()
    errors: list[BaseException] = []

    def one(n: int) -> None:
        with slots:
            try:
                with psycopg.connect(url) as conn:
                    start.wait(10)
                    conn.execute("UPDATE items SET content = %s WHERE id = %s", (f"v{n}", n))
                    if n % rollback_every == 0:
                        conn.rollback()
                    else:
                        conn.commit()
            except BaseException as exc:  # reported by the test below
                errors.append(exc)

    threads = [threading.Thread(target=one, args=(n,)) for n in range(1, TRANSACTIONS + 1)]
    for thread in threads:
        thread.start()
    start.set()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    assert not any(thread.is_alive() for thread in threads)


def jobs_of_key(url: str) -> list[tuple[str, str]]:
    """(status, scope) of the jobs with the test key, oldest first."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT status::text, dedupe_scope FROM nightcrew.jobs"
            " WHERE dedupe_key = 'items' ORDER BY id"
        ).fetchall()
    return [(row[0], row[1]) for row in rows]


@pytest.fixture
def sql_app(app: App) -> Iterator[App]:
    """The test App with the types the SQL tests enqueue, recorded in job_types."""

    @app.job("t.sql", queue="sqlq", max_attempts=7, priority=3)
    async def noop(ctx: JobContext, payload: dict[str, Any]) -> None:
        return None

    @app.job("t.private", public=False)
    async def private(ctx: JobContext, payload: dict[str, Any]) -> None:
        return None

    app.sync_job_types()
    yield app


def sql(url: str, statement: str, params: Any = None) -> Any:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(statement, params).fetchone()
    return row[0] if row else None


# ---- the function ----------------------------------------------------------------------


def test_unknown_type_is_refused_with_a_clear_message(sql_app: App) -> None:
    with pytest.raises(psycopg.errors.InvalidParameterValue) as caught:
        sql(sql_app.url, "SELECT nightcrew.enqueue('t.nope')")
    assert str(caught.value).splitlines()[0] == (
        'unknown job type "t.nope": register it with @app.job and start the App '
        "(or run nightcrew migrate) so it is recorded"
    )


def test_known_type_inherits_queue_priority_and_max_attempts(sql_app: App) -> None:
    job_id = sql(sql_app.url, "SELECT nightcrew.enqueue('t.sql', payload => '{\"a\": 1}')")
    job = sql_app.get_job(job_id)
    assert job is not None
    assert (job.queue, job.priority, job.max_attempts) == ("sqlq", 3, 7)
    assert job.payload == {"a": 1} and job.status is JobStatus.PENDING
    assert job.id.version == 7 and job.dedupe_scope == "active"
    explicit = sql(
        sql_app.url,
        "SELECT nightcrew.enqueue('t.sql', queue => 'other', max_attempts => 2, priority => -1)",
    )
    job = sql_app.get_job(explicit)
    assert job is not None and (job.queue, job.priority, job.max_attempts) == ("other", -1, 2)


def test_dedupe_key_returns_the_live_job(sql_app: App) -> None:
    first = sql(sql_app.url, "SELECT nightcrew.enqueue('t.sql', dedupe_key => 'k')")
    again = sql(sql_app.url, "SELECT nightcrew.enqueue('t.sql', dedupe_key => 'k')")
    from_python = sql_app.enqueue("t.sql", {}, dedupe_key="k")
    assert first == again == from_python


@pytest.mark.parametrize(
    ("call", "message"),
    [
        ("depends_on => ARRAY[gen_random_uuid()]", "depends_on: no job"),
        ("dedupe_scope => 'later'", "dedupe_scope must be 'active' or 'queued'"),
        ("dedupe_scope => 'queued'", "dedupe_scope needs a dedupe_key"),
        ("priority => 5000", "priority must be between -1000 and 1000"),
        ("max_attempts => 0", "max_attempts must be between 1 and 1000"),
        (
            "payload => (repeat('[', 65) || repeat(']', 65))::jsonb",
            'payload for "t.sql" nests deeper than 64',
        ),
    ],
)
def test_bad_arguments_raise_naming_the_problem(sql_app: App, call: str, message: str) -> None:
    with pytest.raises(psycopg.Error, match=re.escape(message)):
        sql(sql_app.url, f"SELECT nightcrew.enqueue('t.sql', {call})")


def test_payload_of_64_levels_is_accepted(sql_app: App) -> None:
    payload = "(repeat('[', 64) || repeat(']', 64))::jsonb"
    assert sql(sql_app.url, f"SELECT nightcrew.enqueue('t.sql', payload => {payload})")


def test_rolled_back_transaction_leaves_no_job(sql_app: App) -> None:
    with psycopg.connect(sql_app.url) as conn:
        conn.execute("SELECT nightcrew.enqueue('t.sql')")
        conn.rollback()
    assert sql(sql_app.url, "SELECT count(*) FROM nightcrew.jobs") == 0


# ---- row-level security under the API role -----------------------------------------------


def api_call(url: str, statement: str, user: str | None) -> Any:
    """Run ``statement`` as the HTTP API does: SET LOCAL ROLE nightcrew_api, acting user."""
    with psycopg.connect(url) as conn:
        if user is not None:
            conn.execute("SELECT set_config('nightcrew.user_id', %s, true)", (user,))
        conn.execute("SET LOCAL ROLE nightcrew_api")
        row = conn.execute(statement).fetchone()
        conn.commit()
    return row[0] if row else None


def test_api_role_forces_the_request_user_and_scopes_the_key(sql_app: App) -> None:
    statement = "SELECT nightcrew.enqueue('t.sql', user_id => 'mallory', dedupe_key => 'k')"
    job_id = api_call(sql_app.url, statement, "alice")
    job = sql_app.get_job(job_id)
    assert job is not None and (job.user_id, job.dedupe_key) == ("alice", "alice:k")
    # Another user's key never matches alice's job (nor would return its id).
    other = api_call(sql_app.url, statement, "bob")
    assert other != job_id and sql_app.get_job(other).user_id == "bob"  # type: ignore[union-attr]


def test_api_role_without_user_or_for_private_type_is_refused(sql_app: App) -> None:
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match=r"nightcrew\.user_id"):
        api_call(sql_app.url, "SELECT nightcrew.enqueue('t.sql')", None)
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="not public"):
        api_call(sql_app.url, "SELECT nightcrew.enqueue('t.private')", "alice")


def test_the_api_role_may_execute_but_public_may_not(sql_app: App) -> None:
    signature = (
        "nightcrew.enqueue(text,jsonb,integer,timestamptz,text,text,text,integer,uuid[],text,text)"
    )
    assert sql(
        sql_app.url, f"SELECT has_function_privilege('nightcrew_api', '{signature}', 'EXECUTE')"
    )
    assert not sql(
        sql_app.url,
        "SELECT bool_or(a.grantee = 0) FROM pg_proc AS p, aclexplode(p.proacl) AS a"
        " WHERE p.oid = %s::regprocedure",
        (signature,),
    )


def test_the_type_lookup_helper_is_callable_by_no_role_but_its_owner(sql_app: App) -> None:
    """``nightcrew.enqueue_type`` is SECURITY DEFINER: only ``nightcrew.enqueue`` may call it."""
    signature = "nightcrew.enqueue_type(text,boolean)"
    assert not sql(
        sql_app.url, f"SELECT has_function_privilege('nightcrew_api', '{signature}', 'EXECUTE')"
    )
    assert not sql(
        sql_app.url,
        "SELECT coalesce(bool_or(a.grantee <> p.proowner), false)"
        " FROM pg_proc AS p, aclexplode(p.proacl) AS a WHERE p.oid = %s::regprocedure",
        (signature,),
    )


@pytest.mark.parametrize(
    "key", ["", ", dedupe_key => 'kt'", ", dedupe_key => 'kt', dedupe_scope => 'queued'"]
)
def test_unknown_and_private_types_are_refused_on_every_path(sql_app: App, key: str) -> None:
    """With or without a key, and also when a job already holds the key (the dedupe hit
    reads the type only then)."""
    holder = sql(sql_app.url, f"SELECT nightcrew.enqueue('t.sql'{key})")
    assert sql(sql_app.url, f"SELECT nightcrew.enqueue('t.sql'{key})") == holder or not key
    with pytest.raises(psycopg.errors.InvalidParameterValue, match=r'unknown job type "t\.nope"'):
        sql(sql_app.url, f"SELECT nightcrew.enqueue('t.nope'{key})")
    api_holder = api_call(sql_app.url, f"SELECT nightcrew.enqueue('t.sql'{key})", "alice")
    assert api_holder
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="not public"):
        api_call(sql_app.url, f"SELECT nightcrew.enqueue('t.private'{key})", "alice")


def test_a_job_without_parents_does_not_run_link_parents(sql_app: App) -> None:
    """link_parents runs for a job with parents only (0014 ran it for every job)."""
    with psycopg.connect(sql_app.url) as conn:
        conn.execute("SET LOCAL track_functions = 'pl'")
        calls = "SELECT pg_stat_get_xact_function_calls('nightcrew.link_parents'::regproc)"
        for key in ("NULL", "'lp-active'"):
            conn.execute(f"SELECT nightcrew.enqueue('t.sql', dedupe_key => {key})")
        conn.execute(
            "SELECT nightcrew.enqueue('t.sql', dedupe_key => 'lp-q', dedupe_scope => 'queued')"
        )
        row = conn.execute(calls).fetchone()
        assert row is not None and (row[0] or 0) == 0
        parent = conn.execute("SELECT nightcrew.enqueue('t.sql')").fetchone()
        assert parent is not None
        conn.execute("SELECT nightcrew.enqueue('t.sql', depends_on => ARRAY[%s::uuid])", parent)
        row = conn.execute(calls).fetchone()
        assert row is not None and row[0] == 1


def test_a_key_of_collation_c_is_looked_up_through_the_index(sql_app: App) -> None:
    """A key built from a `name` (TG_TABLE_NAME...) has collation "C", which PL/pgSQL gives
    the function's variables: the 'queued' look-up must still use the key's index, not
    filter every waiting keyed job (auto_explain shows the nested statement's plan)."""
    with psycopg.connect(sql_app.url) as conn:
        try:
            conn.execute("LOAD 'auto_explain'")
        except psycopg.Error:
            pytest.skip("auto_explain is not installed on this server")
        plans: list[str] = []
        conn.add_notice_handler(lambda diag: plans.append(diag.message_primary or ""))
        for setting, value in (
            ("auto_explain.log_min_duration", "0"),
            ("auto_explain.log_nested_statements", "on"),
            ("client_min_messages", "log"),
            ("enable_seqscan", "off"),
            ("enable_bitmapscan", "off"),
        ):
            conn.execute("SELECT set_config(%s, %s, true)", (setting, value))
        call = (
            "SELECT nightcrew.enqueue('t.sql', dedupe_key => 'k:' || %s::name,"
            " dedupe_scope => 'queued')"
        )
        first = conn.execute(call, ("doc",)).fetchone()
        again = conn.execute(call, ("doc",)).fetchone()
        assert first == again  # deduplicated, whatever the collation
        lookups = [plan for plan in plans if "jobs_dedupe_waiting_idx" in plan]
        assert lookups, plans
        assert all("Index Cond: (dedupe_key = " in plan for plan in lookups), lookups


# ---- triggers under concurrency --------------------------------------------------------------


def test_100_concurrent_trigger_enqueues_active_scope_make_one_job(sql_app: App) -> None:
    make_trigger(sql_app.url, "active")
    concurrent_updates(sql_app.url)
    assert jobs_of_key(sql_app.url) == [("pending", "active")]


def test_all_rolled_back_trigger_enqueues_leave_no_job(sql_app: App) -> None:
    make_trigger(sql_app.url, "active")
    concurrent_updates(sql_app.url, rollback_every=1)
    assert jobs_of_key(sql_app.url) == []


async def test_100_concurrent_trigger_enqueues_queued_scope_during_a_run(sql_app: App) -> None:
    """One job of the key runs (blocked); 100 racing trigger enqueues queue exactly one
    follow-up, which runs once after it: two runs in all."""
    release = asyncio.Event()
    runs: list[Any] = []

    @sql_app.job("t.coalesce")
    async def blocking(ctx: JobContext, payload: dict[str, Any]) -> None:
        runs.append(payload)
        await release.wait()

    sql_app.sync_job_types()
    make_trigger(sql_app.url, "queued", "t.coalesce")
    first = await sql_app.aenqueue("t.coalesce", {}, dedupe_key="items", dedupe_scope="queued")
    worker = sql_app.worker(concurrency=1)
    runner = asyncio.create_task(worker.run())
    try:

        async def started() -> bool:
            return len(runs) == 1

        await await_until(started, 10, "the first job to start")
        await asyncio.to_thread(concurrent_updates, sql_app.url)
        assert jobs_of_key(sql_app.url) == [("processing", "queued"), ("pending", "queued")]
        release.set()

        async def both_done() -> bool:
            return jobs_of_key(sql_app.url) == [("completed", "queued")] * 2

        await await_until(both_done, 10, "the job and its one follow-up to complete")
    finally:
        release.set()
        worker.stop()
        await runner
    assert len(runs) == 2
    job = await sql_app.aget_job(first)
    assert job is not None and job.status is JobStatus.COMPLETED


async def test_trigger_enqueue_wakes_a_listening_worker_at_commit(clean_db: str) -> None:
    app = App(clean_db, migrate_on_start=False, poll_seconds=30)
    picked = asyncio.Event()

    @app.job("t.wake")
    async def wake(ctx: JobContext, payload: dict[str, Any]) -> None:
        picked.set()

    app.sync_job_types()
    worker = app.worker()
    runner = asyncio.create_task(worker.run())
    try:
        await worker.wait_listening()
        await asyncio.sleep(0)  # let the first (empty) fetch finish
        with psycopg.connect(clean_db) as conn:
            conn.execute("CREATE TEMP TABLE t (id int)")
            conn.execute(
                "CREATE FUNCTION pg_temp.t_enqueue() RETURNS trigger LANGUAGE plpgsql AS $$"
                " BEGIN PERFORM nightcrew.enqueue('t.wake'); RETURN NULL; END $$"
            )
            conn.execute(
                "CREATE TRIGGER t_enqueue AFTER INSERT ON t"
                " FOR EACH ROW EXECUTE FUNCTION pg_temp.t_enqueue()"
            )
            conn.execute("INSERT INTO t VALUES (1)")
            committed = time.monotonic()
            conn.commit()
        await asyncio.wait_for(picked.wait(), 5)  # far under the 30 s poll
        assert time.monotonic() - committed < 5
    finally:
        worker.stop()
        await runner
        await app.aclose()


# ---- the documented recipe -------------------------------------------------------------


def recipe_sql() -> str:
    """The trigger recipe of docs/flows.md, as written there."""
    blocks = re.findall(r"```sql\n(.*?)```", DOCS_FLOWS.read_text(encoding="utf-8"), re.S)
    (recipe,) = [block for block in blocks if "CREATE TRIGGER" in block]
    return str(recipe)


def test_documented_trigger_recipe_enqueues_one_job_per_changed_row(sql_app: App) -> None:
    @sql_app.job("documents.index")
    async def index(ctx: JobContext, payload: dict[str, Any]) -> None:
        return None

    sql_app.sync_job_types()
    with psycopg.connect(sql_app.url, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS documents CASCADE")
        conn.execute("DROP FUNCTION IF EXISTS documents_enqueue_index")
        conn.execute("CREATE TABLE documents (id integer PRIMARY KEY, content text)")
        conn.execute(recipe_sql())
        conn.execute("INSERT INTO documents VALUES (1, 'a'), (2, 'b')")
        conn.execute("UPDATE documents SET content = 'a2' WHERE id = 1")  # coalesced
        conn.execute("UPDATE documents SET content = content")  # unchanged: nothing
        rows = conn.execute(
            "SELECT payload, dedupe_key, dedupe_scope FROM nightcrew.jobs ORDER BY id"
        ).fetchall()
    assert rows == [
        ({"document_id": 1}, "documents.index:1", "queued"),
        ({"document_id": 2}, "documents.index:2", "queued"),
    ]


# ---- job types recorded by Apps ----------------------------------------------------------


def recorded(url: str, job_type: str) -> Any:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT queue, priority, max_attempts, timeout_seconds, public"
            " FROM nightcrew.job_types WHERE type = %s",
            (job_type,),
        ).fetchone()


def test_an_app_records_its_types_at_first_connection_and_on_migrate(clean_db: str) -> None:
    app = App(clean_db, migrate_on_start=False)
    app.job("t.rec", queue="rq", priority=4, max_attempts=9, timeout=30, public=False)(noop)
    try:
        assert recorded(clean_db, "t.rec") is None
        app.enqueue("t.rec", {})  # the first connection records the registry
        assert recorded(clean_db, "t.rec") == ("rq", 4, 9, 30.0, False)
    finally:
        app.close()
    changed = App(clean_db, migrate_on_start=False)
    changed.job("t.rec", queue="rq2", max_attempts=2)(noop)
    changed.migrate()  # `nightcrew migrate` records them too, as an upsert
    assert recorded(clean_db, "t.rec") == ("rq2", 0, 2, None, True)
    job_id = sql(clean_db, "SELECT nightcrew.enqueue('t.rec')")
    with psycopg.connect(clean_db) as conn:
        row = conn.execute(
            "SELECT queue, max_attempts FROM nightcrew.jobs WHERE id = %s", (job_id,)
        ).fetchone()
    assert row == ("rq2", 2)


def test_types_with_whole_and_fractional_timeouts_are_recorded(clean_db: str) -> None:
    app = App(clean_db, migrate_on_start=False)
    app.job("t.half", timeout=0.5)(noop)
    app.job("t.whole", timeout=600)(noop)
    try:
        app.enqueue("t.half", {})  # the first connection records every type
        assert recorded(clean_db, "t.half") == ("default", 0, 3, 0.5, True)
        assert recorded(clean_db, "t.whole") == ("default", 0, 3, 600.0, True)
    finally:
        app.close()


async def noop(ctx: JobContext, payload: dict[str, Any]) -> None:
    return None


def test_a_trigger_enqueues_as_a_non_owner_role_and_under_the_api_role(sql_app: App) -> None:
    """The table's owner has no privilege on nightcrew.jobs (SECURITY DEFINER writes the
    job); under the API role the trigger's job belongs to the request's user."""
    role = f"nc_test_owner_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(sql_app.url, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {role} NOLOGIN")
        try:
            conn.execute(f"GRANT USAGE, CREATE ON SCHEMA public TO {role}")
            conn.execute(f"GRANT USAGE ON SCHEMA nightcrew TO {role}")
            conn.execute(f"GRANT EXECUTE ON FUNCTION nightcrew.enqueue TO {role}")
            with conn.transaction():
                conn.execute(f"SET LOCAL ROLE {role}")
                conn.execute("CREATE TABLE owned (id int PRIMARY KEY, content text)")
                conn.execute(
                    "CREATE FUNCTION owned_enqueue() RETURNS trigger LANGUAGE plpgsql AS $$"
                    " BEGIN PERFORM nightcrew.enqueue('t.sql', user_id => 'owner-said');"
                    " RETURN NULL; END $$"
                )
                conn.execute(
                    "CREATE TRIGGER owned_enqueue AFTER INSERT OR UPDATE OF content ON owned"
                    " FOR EACH ROW EXECUTE FUNCTION owned_enqueue()"
                )
                conn.execute("GRANT SELECT, UPDATE ON owned TO nightcrew_api")
                with pytest.raises(psycopg.errors.InsufficientPrivilege), conn.transaction():
                    conn.execute("SELECT count(*) FROM nightcrew.jobs")
                conn.execute("INSERT INTO owned VALUES (1, 'a')")
            with conn.transaction():
                conn.execute("SELECT set_config('nightcrew.user_id', 'alice', true)")
                conn.execute("SET LOCAL ROLE nightcrew_api")
                conn.execute("UPDATE owned SET content = 'b'")
            users = conn.execute("SELECT user_id FROM nightcrew.jobs ORDER BY id").fetchall()
            assert users == [("owner-said",), ("alice",)]
        finally:
            conn.execute("DROP TABLE IF EXISTS owned")
            conn.execute("DROP FUNCTION IF EXISTS owned_enqueue")
            conn.execute(f"DROP OWNED BY {role}")
            conn.execute(f"DROP ROLE {role}")
