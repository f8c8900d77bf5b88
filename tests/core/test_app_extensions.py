"""One App hosts several applications without clashes: App refuses a second install of an
application, a queue shared between applications, a schema with two migration sets, a route
prefix or route served twice, and a dashboard path taken twice (each with a clear error).

No database: registering never connects."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import APIRouter

from nightcrew import App, ConfigurationError, JobContext

UNUSED_URL = "postgresql://nobody@127.0.0.1:1/never_connected"


async def noop(ctx: JobContext, payload: Any) -> None:
    """A handler for job types registered only to be refused."""


def router(prefix: str = "", path: str = "/things") -> APIRouter:
    built = APIRouter(prefix=prefix)

    @built.get(path)
    async def things() -> list[str]:
        return []

    return built


@pytest.fixture
def host() -> App:
    return App(UNUSED_URL)


def test_an_application_is_installed_once(host: App) -> None:
    with host.application("alpha"):
        host.job("alpha.work", queue="alpha")(noop)
    with (
        pytest.raises(ConfigurationError, match="application 'alpha' is already installed"),
        host.application("alpha"),
    ):
        pass
    assert host.applications == ["alpha"]


def test_applications_do_not_share_a_queue(host: App) -> None:
    with host.application("alpha"):
        host.job("alpha.one", queue="alpha")(noop)
        host.job("alpha.two", queue="alpha")(noop)  # its own queue, as often as it likes
    with (
        pytest.raises(ConfigurationError, match="uses queue 'alpha', which belongs to application"),
        host.application("beta"),
    ):
        host.job("beta.one", queue="alpha")(noop)
    assert "beta.one" not in host.registry


def test_the_hosts_own_job_types_may_use_any_queue(host: App) -> None:
    with host.application("alpha"):
        host.job("alpha.one", queue="alpha")(noop)
    host.job("host.one", queue="alpha")(noop)
    assert host.registry["host.one"].queue == "alpha"


def test_a_job_type_is_registered_once_across_applications(host: App) -> None:
    with host.application("alpha"):
        host.job("shared.name", queue="alpha")(noop)
    with (
        pytest.raises(ConfigurationError, match=r"job type 'shared\.name' is already registered"),
        host.application("beta"),
    ):
        host.job("shared.name", queue="beta")(noop)


def test_add_migrations_refuses_a_schema_that_already_has_migrations(host: App) -> None:
    host.add_migrations("alpha", "alpha")
    with pytest.raises(ConfigurationError, match="schema 'alpha' already has migrations"):
        host.add_migrations("beta", "alpha")
    with pytest.raises(ConfigurationError, match="schema 'alpha' already has migrations"):
        host.add_migrations("alpha", "alpha")
    with pytest.raises(ConfigurationError, match="schema 'nightcrew' already has migrations"):
        host.add_migrations("beta", "nightcrew")
    assert host.migration_sets == [("alpha", "alpha")]


def test_add_router_refuses_a_route_prefix_already_served(host: App) -> None:
    host.add_router(router("/api/alpha"))
    with pytest.raises(ConfigurationError, match="route prefix '/api/alpha' is already served"):
        host.add_router(router("/api/alpha", path="/other"))
    with pytest.raises(ConfigurationError, match="route prefix '/api/alpha' is already served"):
        host.add_router(router(), prefix="/api/alpha/")  # the same prefix, spelled otherwise
    assert len(host.http_routers) == 1


def test_add_router_refuses_a_route_already_served(host: App) -> None:
    host.add_router(router(path="/api/alpha/things"))
    host.add_router(router("/api"))  # /api/things: no clash
    with pytest.raises(ConfigurationError, match="route GET /api/alpha/things is already served"):
        host.add_router(router("/alpha"), prefix="/api")
    assert len(host.http_routers) == 2


def test_add_dashboard_page_refuses_a_path_already_taken(host: App) -> None:
    host.add_dashboard_page("Alpha", "/alpha", router("/alpha"))
    with pytest.raises(ConfigurationError, match="dashboard page path '/alpha/' is already taken"):
        host.add_dashboard_page("Beta", "/alpha/", router("/beta"))
    assert [page.title for page in host.dashboard_pages] == ["Alpha"]
