"""Installing the workspace: what it adds to an App, and a clear refusal on a server
without pgvector."""

from __future__ import annotations

import os

import psycopg
import pytest

from nightcrew import App
from nightcrew.db.migrate import migrate
from tests.conftest import create_database, drop_database
from tests.pgvector import has_pgvector
from workspace.app import install


def test_install_adds_the_jobs_schedule_routes_and_page() -> None:
    app = App("postgresql://nobody@127.0.0.1:1/never_connected")
    install(app)
    assert app.applications == ["workspace"]
    assert ("workspace", "workspace") in app.migration_sets
    assert {
        "workspace.index_document",
        "workspace.embed_document",
        "workspace.reembed",
        "workspace.recompute_formulas",
        "workspace.snapshot_documents",
    } <= set(app.registry)
    assert [page.path for page in app.dashboard_pages] == ["/workspace"]


def test_the_migration_names_pgvector_on_a_server_without_it() -> None:
    server = os.environ.get("NIGHTCREW_TEST_DATABASE_URL")
    if not server or has_pgvector(server):
        pytest.skip("needs a configured test server without pgvector (CI's PostgreSQL 15)")
    url = create_database(server, "template0", "no_pgvector")
    try:
        migrate(url)
        with pytest.raises(Exception, match="pgvector") as failure:
            migrate(url, package="workspace", schema="workspace")
        assert "Supabase" in str(failure.value) or "install" in str(failure.value).lower()
        with psycopg.connect(url) as conn:  # nothing of the workspace was left behind
            found = conn.execute(
                "SELECT count(*) FROM pg_tables WHERE schemaname = 'workspace'"
                " AND tablename <> 'migrations'"
            ).fetchone()
        assert found == (0,)
    finally:
        drop_database(server, url)
