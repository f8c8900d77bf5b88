"""``estimating.app.install(app)`` adds the estimating application to any App, beside other
applications: here a tiny one defined in the test. Both run on one App (jobs, routes,
dashboard pages); an application claiming what another already has is refused."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import psycopg
import pytest
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from estimating.app import install as install_estimating
from nightcrew import App, ConfigurationError, JobContext, JobStatus, create_api_key
from nightcrew.http import create_app
from nightcrew.testing import drain
from tests.estimating.conftest import FAST
from tests.estimating.helpers import simple_items


async def echo(ctx: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
    """The tiny application's job: it answers what it was given and which App ran it."""
    return {**payload, "applications": ctx.app.applications}


def tiny_api() -> APIRouter:
    router = APIRouter(prefix="/api/tiny")

    @router.get("/hello")
    async def hello() -> dict[str, str]:
        return {"hello": "tiny"}

    return router


def tiny_pages() -> APIRouter:
    router = APIRouter(prefix="/tiny", include_in_schema=False)

    @router.get("")
    async def page(request: Request) -> HTMLResponse:
        return HTMLResponse("<p>tiny page</p>")

    return router


def tiny_installer(
    *,
    name: str = "tiny",
    job_type: str = "tiny.echo",
    queue: str = "tiny",
    schema: str | None = None,
    api: Callable[[], APIRouter] = tiny_api,
    page_path: str = "/tiny",
) -> Callable[[App], None]:
    """``install(app)`` of the tiny application; the arguments make it clash on purpose."""

    def install(app: App) -> None:
        with app.application(name):
            if schema is not None:
                app.add_migrations("tests.estimating", schema)
            app.job(job_type, queue=queue)(echo)
            app.schedule(job_type, every=3600, payload={"from": "schedule"})
            app.add_router(api())
            app.add_dashboard_page("Tiny", page_path, tiny_pages())

    return install


@pytest.fixture
async def host(est_clean: str) -> AsyncIterator[App]:
    """One App hosting estimating and the tiny application."""
    app = App(est_clean, **FAST)
    install_estimating(app)
    tiny_installer()(app)
    yield app
    await app.aclose()


async def test_one_app_hosts_estimating_and_a_second_application(host: App, sync_url: str) -> None:
    assert host.applications == ["estimating", "tiny"]
    assert host.migration_sets == [("estimating", "estimating")]
    first = await host.aenqueue("tiny.echo", {"n": 1})
    report = await host.aenqueue("estimating.weekly_report")
    assert await drain(host, timeout=30) == 2
    echoed, weekly = await host.aget_job(first), await host.aget_job(report)
    assert echoed is not None and echoed.status is JobStatus.COMPLETED, echoed
    assert echoed.result == {"n": 1, "applications": ["estimating", "tiny"]}
    assert weekly is not None and weekly.status is JobStatus.COMPLETED, weekly

    async with await psycopg.AsyncConnection.connect(sync_url, autocommit=True) as conn:
        await simple_items(conn, ["WALL"])
    with psycopg.connect(sync_url, autocommit=True) as sync:
        _, key = create_api_key(sync, "estimator")
    transport = httpx.ASGITransport(app=create_app(host))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        tiny = await client.get("/api/tiny/hello")
        auth = {"Authorization": f"Bearer {key}"}
        estimating = await client.get("/api/estimating/items/WALL", headers=auth)
        login = await client.post("/login", data={"key": key})
        session_id = login.cookies["nightcrew_session"]  # Secure: carried by hand over http
        client.cookies.clear()
        client.cookies.set("nightcrew_session", session_id)
        overview = await client.get("/")
        tiny_page = await client.get("/tiny")
    assert tiny.json() == {"hello": "tiny"}
    assert estimating.status_code == 200, estimating.text
    assert estimating.json()["code"] == "WALL"
    # Both applications' pages are in the dashboard's navigation.
    assert 'href="/estimating"' in overview.text and 'href="/tiny"' in overview.text
    assert tiny_page.text == "<p>tiny page</p>"


async def test_installing_estimating_twice_is_refused(host: App) -> None:
    with pytest.raises(ConfigurationError, match="application 'estimating' is already installed"):
        install_estimating(host)


def estimating_api() -> APIRouter:
    router = APIRouter(prefix="/api/estimating")

    @router.get("/tiny")
    async def tiny() -> None:
        return None

    return router


@pytest.mark.parametrize(
    ("clash", "message"),
    [
        ({"name": "estimating"}, "application 'estimating' is already installed"),
        ({"job_type": "estimating.weekly_report"}, "job type 'estimating.weekly_report' is"),
        ({"queue": "estimating"}, "uses queue 'estimating', which belongs to application"),
        ({"schema": "estimating"}, "schema 'estimating' already has migrations"),
        ({"api": estimating_api}, "route prefix '/api/estimating' is already served"),
        ({"page_path": "/estimating"}, "dashboard page path '/estimating' is already taken"),
    ],
)
async def test_a_second_application_cannot_take_what_estimating_has(
    est_clean: str, clash: dict[str, Any], message: str
) -> None:
    app = App(est_clean, **FAST)
    install_estimating(app)
    with pytest.raises(ConfigurationError, match=message):
        tiny_installer(**clash)(app)
