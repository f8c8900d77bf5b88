"""Campaigns on real worker processes (``nightcrew worker --app prospecting.app:app``)
against a real sandbox process: one provider limit shared by three workers, a worker
SIGKILLed mid-enrichment resumed elsewhere with nothing lost, duplicated or paid twice,
and a cancel that stops at the next provider call keeping what was found."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from nightcrew.http import create_app
from nightcrew.keys import create_key
from prospecting.app import build_app
from tests.procs import Processes, reaped
from tests.prospecting.conftest import SandboxProcess, progress_of, worker_env
from tests.support import wait_until

LIMITED = {"places": "5/s", "finder": "5/s", "verifier": "5/s"}
"""The issue's provider limit, on every provider."""
QUICK = {"places": "20/s", "finder": "10/s", "verifier": "10/s"}


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxProcess]:
    """A quicker sandbox than the module default (20 ms per call, 2 % errors, 1 % 429s
    asking for 0.2 s): more calls offered per second than the limit lets through."""
    process = SandboxProcess(tmp_path_factory.mktemp("sandbox") / "sandbox.log",
                             latency_ms=20, error_rate=0.02, rate_429=0.01,
                             retry_after=0.2)  # fmt: skip
    yield process
    process.stop()


class Workers(Processes):
    """Worker processes of ``prospecting.app:app``, always reaped."""

    def __init__(self, log_dir: Path, url: str, sandbox: SandboxProcess) -> None:
        super().__init__(log_dir)
        self.url, self.sandbox = url, sandbox

    def start(self, rates: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        """One more worker process (concurrency 2)."""
        return self.launch(
            "nightcrew", "worker", "--app", "prospecting.app:app", "--concurrency", "2",
            env=worker_env(self.url, self.sandbox, rates),
        )  # fmt: skip


@pytest.fixture
def workers(tmp_path: Path, pro_clean: str, sandbox: SandboxProcess) -> Iterator[Workers]:
    with reaped(Workers(tmp_path, pro_clean, sandbox)) as procs:
        yield procs


def sql(url: str, statement: str, params: Any = None) -> list[tuple[Any, ...]]:
    """Rows of ``statement`` run as the table owner."""
    with psycopg.connect(url, autocommit=True) as conn:
        cur = conn.execute(statement, params)
        return cur.fetchall() if cur.description else []


def job_status(url: str, job_id: str) -> str:
    """The job's status now."""
    return str(sql(url, "SELECT status::text FROM nightcrew.jobs WHERE id = %s", (job_id,))[0][0])


def enriched(url: str, campaign_id: str) -> int:
    """Leads enriched as the API counts them: the finder call recorded and, when it found
    an email, the verifier call too (a lead between its two calls is not enriched yet)."""
    rows = sql(url, "SELECT count(*) FROM prospecting.businesses WHERE campaign_id = %s"
                    " AND finder_done AND (email IS NULL OR verifier_done)",
               (campaign_id,))  # fmt: skip
    return int(rows[0][0])


class Client:
    """The HTTP API (the App's ASGI application in this process) with alice's and bob's
    keys; the campaigns run on the worker processes."""

    def __init__(self, url: str) -> None:
        self.app = build_app(url, migrate_on_start=False)
        self.asgi = create_app(self.app)
        with psycopg.connect(url, autocommit=True) as conn:
            self.keys = {who: create_key(conn, who, actor="test")[1] for who in ("alice", "bob")}

    async def submit(self, who: str, **body: Any) -> dict[str, Any]:
        """POST a campaign as ``who``; its 202 body."""
        transport = httpx.ASGITransport(app=self.asgi)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            answer = await client.post(
                "/api/prospecting/campaigns",
                json={"businessType": "coffee shop", "location": "Austin", **body},
                headers={"Authorization": f"Bearer {self.keys[who]}"},
            )
        assert answer.status_code == 202, answer.text
        result: dict[str, Any] = answer.json()
        return result

    async def get(self, who: str, path: str) -> httpx.Response:
        """GET ``path`` as ``who``."""
        transport = httpx.ASGITransport(app=self.asgi)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            return await client.get(path, headers={"Authorization": f"Bearer {self.keys[who]}"})

    async def post(self, who: str, path: str) -> httpx.Response:
        """POST ``path`` as ``who``."""
        transport = httpx.ASGITransport(app=self.asgi)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            return await client.post(path, headers={"Authorization": f"Bearer {self.keys[who]}"})


@pytest.fixture
async def client(pro_clean: str) -> AsyncIterator[Client]:
    instance = Client(pro_clean)
    yield instance
    await instance.app.aclose()


def assert_each_subject_billed_once(sandbox: SandboxProcess, url: str) -> None:
    """The sandbox billed each page, domain and email once, and every billed call is
    recorded once with its cost."""
    stats = sandbox.stats()
    recorded = sql(url, "SELECT provider, count(*), sum(cost) FROM prospecting.calls"
                        " GROUP BY provider")  # fmt: skip
    by_provider = {provider: (count, total) for provider, count, total in recorded}
    for provider in ("places", "finder", "verifier"):
        billed = stats[provider]["billed"]
        assert all(n == 1 for n in billed.values()), f"{provider} paid twice: {billed}"
        count, _ = by_provider.get(provider, (0, Decimal(0)))
        assert count == len(billed), f"{provider}: {count} recorded, {len(billed)} billed"


async def test_two_users_on_three_workers_share_one_provider_limit(
    workers: Workers, client: Client, sandbox: SandboxProcess, pro_clean: str
) -> None:
    for _ in range(3):
        workers.start(LIMITED)
    alice = await client.submit("alice", maxResults=15)
    bob = await client.submit("bob", maxResults=15, location="Denver")
    for campaign in (alice, bob):
        wait_until(lambda c=campaign: job_status(pro_clean, c["jobId"]) == "completed", 90,
                   "both campaigns to complete")  # fmt: skip
    stats = sandbox.stats()
    for provider in ("places", "finder", "verifier"):
        seen = {k: v for k, v in stats[provider].items() if k != "billed"}
        print(f"{provider}: {seen}")
        assert stats[provider]["max_per_clock_second"] <= 5, (provider, seen)
    assert stats["finder"]["requests"] > 10, "enough calls to test the limit"
    assert_each_subject_billed_once(sandbox, pro_clean)
    # Neither user sees the other's campaign.
    assert (await client.get("alice", f"/api/prospecting/campaigns/{bob['campaignId']}")
            ).status_code == 404  # fmt: skip
    listed = (await client.get("bob", "/api/prospecting/campaigns")).json()["campaigns"]
    assert [c["campaignId"] for c in listed] == [bob["campaignId"]]


async def test_a_worker_sigkilled_mid_enrichment_resumes_elsewhere_paying_nothing_twice(
    workers: Workers, client: Client, sandbox: SandboxProcess, pro_clean: str
) -> None:
    first = workers.start(QUICK)
    campaign = await client.submit("alice", maxResults=20)
    wait_until(lambda: enriched(pro_clean, campaign["campaignId"]) >= 3, 60,
               "three leads enriched")  # fmt: skip
    first.send_signal(signal.SIGKILL)
    first.wait(10)
    before = enriched(pro_clean, campaign["campaignId"])
    workers.start(QUICK)
    wait_until(lambda: job_status(pro_clean, campaign["jobId"]) == "completed", 90,
               "the campaign to complete on the second worker")  # fmt: skip

    attempts = sql(pro_clean, "SELECT attempts FROM nightcrew.jobs WHERE id = %s",
                   (campaign["jobId"],))[0][0]  # fmt: skip
    assert attempts == 2
    rows = sql(pro_clean, "SELECT count(*), count(DISTINCT place_id),"
                          " count(*) FILTER (WHERE qualified AND NOT finder_done)"
                          " FROM prospecting.businesses WHERE campaign_id = %s",
               (campaign["campaignId"],))  # fmt: skip
    assert rows[0] == (20, 20, 0), "every business once, every lead enriched"
    assert enriched(pro_clean, campaign["campaignId"]) >= before
    assert_each_subject_billed_once(sandbox, pro_clean)
    body = (await client.get("alice", f"/api/prospecting/campaigns/{campaign['campaignId']}")
            ).json()  # fmt: skip
    total = sql(pro_clean, "SELECT sum(cost) FROM prospecting.calls")[0][0]
    assert Decimal(str(body["metrics"]["total_cost"])) == total
    # The bar never went back, across both attempts.
    progress = [p for _, p, _, _ in progress_of(pro_clean, campaign["jobId"])]
    assert progress == sorted(progress), progress


async def test_cancel_stops_at_the_next_provider_call_and_keeps_what_was_found(
    workers: Workers, client: Client, sandbox: SandboxProcess, pro_clean: str
) -> None:
    workers.start(LIMITED)
    campaign = await client.submit("alice", maxResults=40)
    wait_until(lambda: enriched(pro_clean, campaign["campaignId"]) >= 2, 60,
               "two leads enriched")  # fmt: skip
    answer = await client.post(
        "alice", f"/api/prospecting/campaigns/{campaign['campaignId']}/cancel"
    )
    assert answer.status_code == 202, answer.text
    wait_until(lambda: job_status(pro_clean, campaign["jobId"]) == "cancelled", 20,
               "the campaign to stop")  # fmt: skip
    requests_then = {p: s["requests"] for p, s in sandbox.stats().items()}
    body = (await client.get("alice", f"/api/prospecting/campaigns/{campaign['campaignId']}")
            ).json()  # fmt: skip
    assert body["status"] == "cancelled"
    assert "cancelled" in body["summary"]
    leads = (await client.get("alice", f"/api/prospecting/campaigns/{campaign['campaignId']}/leads")
             ).json()["leads"]  # fmt: skip
    assert leads, "the leads found are kept"
    done = [lead for lead in leads if lead["enriched"]]
    assert 2 <= len(done) < len(leads), "stopped before enriching them all"
    assert_each_subject_billed_once(sandbox, pro_clean)  # what was paid is recorded
    total = sql(pro_clean, "SELECT sum(cost) FROM prospecting.calls")[0][0]
    assert Decimal(str(body["metrics"]["total_cost"])) <= total
    # No provider call after the stop.
    assert {p: s["requests"] for p, s in sandbox.stats().items()} == requests_then
