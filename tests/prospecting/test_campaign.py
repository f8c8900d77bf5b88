"""A whole campaign against the sandbox (100 ms per call, 5 % errors, 2 % 429s): submitted
over HTTP, run by a real worker; every qualified lead enriched exactly once, progress rising
through the five stages' ranges, metrics equal to the stored results, cost equal to the sum
of the recorded calls and to what the sandbox billed. The budget stop too."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import psycopg

from nightcrew import App
from nightcrew.testing import drain
from prospecting.pipeline import STAGES
from prospecting.settings import DEFAULT_PRICES
from tests.prospecting.conftest import Api, SandboxProcess, progress_of


def stored(url: str, campaign_id: str) -> dict[str, Any]:
    """What the tables hold for a campaign (as the table owner)."""
    with psycopg.connect(url, autocommit=True) as conn:
        found = conn.execute(
            "SELECT count(*), count(*) FILTER (WHERE qualified),"
            " count(*) FILTER (WHERE qualified AND finder_done"
            "                  AND (email IS NULL OR verifier_done)),"
            " round(avg(confidence) FILTER (WHERE qualified), 1)"
            " FROM prospecting.businesses WHERE campaign_id = %s", (campaign_id,),
        ).fetchone()  # fmt: skip
        calls = conn.execute(
            "SELECT provider, subject, cost FROM prospecting.calls WHERE campaign_id = %s",
            (campaign_id,),
        ).fetchall()
        leads = conn.execute(
            "SELECT domain, email, finder_done, verifier_done FROM prospecting.businesses"
            " WHERE campaign_id = %s AND qualified", (campaign_id,),
        ).fetchall()  # fmt: skip
    assert found is not None
    return {"found": found[0], "qualified": found[1], "enriched": found[2],
            "average": float(found[3]) if found[3] is not None else None,
            "calls": calls, "leads": leads}  # fmt: skip


def assert_rises_through_the_stages(changes: list[tuple[int, float, str | None, str]]) -> None:
    """Progress never goes back, and each stage's progress stays inside its range."""
    progress = [p for _, p, _, _ in changes]
    assert progress == sorted(progress), f"progress went backwards: {progress}"
    seen = []
    for _, value, stage, status in changes:
        if stage in STAGES and status == "processing":
            low, high = STAGES[stage]
            assert low <= value <= high + 1e-6, f"{stage} at {value}, outside {low}-{high}"
            if not seen or seen[-1] != stage:
                seen.append(stage)
    assert seen == list(STAGES), f"stages in order: {seen}"
    assert changes[-1][1] == 100 and changes[-1][3] == "completed"


async def test_a_campaign_completes_with_every_qualified_lead_enriched_once(
    pro_app: App, api: Api, sandbox: SandboxProcess
) -> None:
    answer = await api.submit("alice", maxResults=30)
    assert answer.status_code == 202, answer.text
    body = answer.json()
    assert set(body) >= {"jobId", "campaignId", "status", "estimatedTime"}
    assert body["status"] == "pending" and body["estimatedTime"] >= 1

    await drain(pro_app, timeout=120)

    campaign = (await api.client.get(f"/api/prospecting/campaigns/{body['campaignId']}",
                                     headers=api.auth("alice"))).json()  # fmt: skip
    assert campaign["status"] == "completed", campaign
    assert campaign["progress"] == 100 and campaign["stage"] == "storing_results"
    tables = stored(pro_app.url, body["campaignId"])
    metrics = campaign["metrics"]
    assert tables["found"] == 30
    assert 0 < tables["qualified"] < 30
    # Every qualified lead enriched; the metrics are the stored results.
    assert tables["enriched"] == tables["qualified"]
    assert metrics["businesses_found"] == tables["found"]
    assert metrics["qualified_leads"] == tables["qualified"]
    assert metrics["leads_enriched"] == tables["enriched"]
    assert metrics["average_confidence"] == tables["average"]
    # The cost is the sum of the recorded calls, each the provider's price...
    prices = {name: Decimal(price) for name, price in DEFAULT_PRICES.items()}
    assert all(cost == prices[provider] for provider, _, cost in tables["calls"])
    total = sum((cost for _, _, cost in tables["calls"]), Decimal(0))
    assert Decimal(str(metrics["total_cost"])) == total
    # ... and exactly what the sandbox billed: each search page, domain and email once.
    stats = sandbox.stats()
    billed = {p: stats[p]["billed"] for p in ("places", "finder", "verifier")}
    assert all(n == 1 for counts in billed.values() for n in counts.values()), billed
    by_provider = {p: sum(1 for q, _, _ in tables["calls"] if q == p) for p in billed}
    assert by_provider == {p: len(counts) for p, counts in billed.items()}
    domains = sorted(domain for domain, *_ in tables["leads"])
    assert sorted(billed["finder"]) == domains, "every qualified lead's domain searched once"
    emails = sorted(email for _, email, *_ in tables["leads"] if email)
    assert sorted(billed["verifier"]) == emails
    assert by_provider["places"] == 2  # 30 results: two pages of 20
    # Errors and 429s happened and were retried.
    requests = sum(stats[p]["requests"] for p in billed)
    assert requests > sum(by_provider.values()), "the sandbox should have failed some calls"

    assert_rises_through_the_stages(progress_of(pro_app.url, body["jobId"]))
    assert "30 businesses" in campaign["summary"]


async def test_a_budget_stops_the_paying_and_completes_with_the_leads_found(
    pro_app: App, api: Api, sandbox: SandboxProcess
) -> None:
    # Two search pages (0.064) and then about ten finder calls (0.10 each).
    answer = await api.submit("alice", maxResults=40, budget=1.0)
    campaign_id = answer.json()["campaignId"]
    await drain(pro_app, timeout=120)
    campaign = (await api.client.get(f"/api/prospecting/campaigns/{campaign_id}",
                                     headers=api.auth("alice"))).json()  # fmt: skip
    assert campaign["status"] == "completed"
    assert "stopped paying at the $1.00 budget" in campaign["summary"]
    tables = stored(pro_app.url, campaign_id)
    total = sum((cost for _, _, cost in tables["calls"]), Decimal(0))
    assert total <= Decimal(1)
    cheapest = min(Decimal(p) for p in DEFAULT_PRICES.values())
    assert total + cheapest > Decimal(1) - Decimal("0.10"), "it should spend nearly all of it"
    assert 0 < tables["enriched"] < tables["qualified"]
    assert Decimal(str(campaign["metrics"]["total_cost"])) == total
    leads = (await api.client.get(f"/api/prospecting/campaigns/{campaign_id}/leads",
                                  headers=api.auth("alice"))).json()["leads"]  # fmt: skip
    assert len(leads) == tables["qualified"], "the leads found are kept, enriched or not"


async def test_unclean_provider_websites_are_neither_linked_nor_searched(
    pro_app: App, api: Api, sandbox: SandboxProcess
) -> None:
    # The sandbox answers a "messy" query with javascript: and host-less websites.
    answer = await api.submit("alice", businessType="messy cafe", maxResults=12)
    campaign_id = answer.json()["campaignId"]
    await drain(pro_app, timeout=60)
    with psycopg.connect(pro_app.url, autocommit=True) as conn:
        websites = [row[0] for row in conn.execute(
            "SELECT website FROM prospecting.businesses WHERE campaign_id = %s"
            " ORDER BY position", (campaign_id,))]  # fmt: skip
    assert websites[0] is None and websites[1] is None and websites[3] is None
    assert all(w is None or w.startswith("https://") for w in websites)
    billed = sandbox.stats()["finder"]["billed"]
    assert billed and all("." in domain and ":" not in domain for domain in billed)
    leads = (await api.client.get(f"/api/prospecting/campaigns/{campaign_id}/leads",
                                  headers=api.auth("alice"))).json()["leads"]  # fmt: skip
    assert all(lead["website"].startswith("https://") for lead in leads)


async def test_one_user_runs_at_most_two_campaigns_at_once(
    pro_app: App, api: Api, sandbox: SandboxProcess
) -> None:
    alice = [(await api.submit("alice", maxResults=8, location=f"Town {i}")).json()["jobId"]
             for i in range(4)]  # fmt: skip
    bob = (await api.submit("bob", maxResults=8)).json()["jobId"]
    await drain(pro_app, timeout=120)  # a worker of 10 slots: room for every campaign
    with psycopg.connect(pro_app.url, autocommit=True) as conn:
        spans = {str(job_id): (started, done) for job_id, started, done in conn.execute(
            "SELECT id, started_at, completed_at FROM nightcrew.jobs"
            " WHERE id = ANY(%s::uuid[]) AND status = 'completed'", ([*alice, bob],))}  # fmt: skip
    assert len(spans) == 5, "every campaign completed"

    def overlap(ids: list[str]) -> int:
        events = sorted([(spans[i][0], 1) for i in ids] + [(spans[i][1], -1) for i in ids],
                        key=lambda e: (e[0], e[1]))  # fmt: skip
        running = best = 0
        for _, step in events:
            running += step
            best = max(best, running)
        return best

    assert overlap(alice) == 2, "alice's campaigns ran two at a time"
    last_alice_start = max(spans[i][0] for i in alice)
    assert spans[bob][0] < last_alice_start, "bob's campaign did not wait behind alice's"
