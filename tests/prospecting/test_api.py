"""/api/prospecting: 202 at once, 422 naming the field, row-level security per user (404
for another user's campaign), the list, leads as JSON and CSV, cancel."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest

from nightcrew import App
from nightcrew.testing import drain
from prospecting.campaigns import leads_csv
from tests.prospecting.conftest import Api


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"businessType": ""}, "businessType"),
        ({"businessType": "   "}, "businessType"),
        ({"location": None}, "location"),
        ({"maxResults": 0}, "maxResults"),
        ({"maxResults": 101}, "maxResults"),
        ({"maxResults": "many"}, "maxResults"),
        ({"budget": -1}, "budget"),
        ({"budget": "NaN"}, "budget"),
        ({"extra": 1}, "extra"),
    ],
)
async def test_a_bad_campaign_is_a_422_naming_the_field(
    api: Api, body: dict[str, Any], field: str
) -> None:
    answer = await api.submit("alice", **body)
    assert answer.status_code == 422, answer.text
    error = answer.json()["error"]
    assert error["field"] == field, error
    assert field in error["message"]


async def test_a_missing_field_is_named_and_no_key_is_a_401(api: Api) -> None:
    answer = await api.client.post("/api/prospecting/campaigns", json={"location": "Austin"},
                                   headers=api.auth("alice"))  # fmt: skip
    assert answer.status_code == 422
    assert answer.json()["error"]["field"] in ("businessType", "maxResults")
    body = {"businessType": "bakery", "location": "Austin", "maxResults": 5}
    anonymous = await api.client.post("/api/prospecting/campaigns", json=body)
    assert anonymous.status_code == 401
    assert (await api.client.get("/api/prospecting/campaigns")).status_code == 401


async def test_each_user_sees_only_its_own_campaigns(pro_app: App, api: Api) -> None:
    alice = (await api.submit("alice", maxResults=5)).json()
    bob = (await api.submit("bob", maxResults=5, location="Denver")).json()
    await drain(pro_app, timeout=60)

    async def get(who: str, path: str, **headers: str) -> Any:
        return await api.client.get(path, headers={**api.auth(who), **headers})

    mine = (await get("alice", "/api/prospecting/campaigns")).json()["campaigns"]
    assert [c["campaignId"] for c in mine] == [alice["campaignId"]]
    assert mine[0]["status"] == "completed"
    for path in ("", "/leads"):
        other = await get("bob", f"/api/prospecting/campaigns/{alice['campaignId']}{path}")
        assert other.status_code == 404, other.text
        own = await get("bob", f"/api/prospecting/campaigns/{bob['campaignId']}{path}")
        assert own.status_code == 200
    cancel = await api.client.post(f"/api/prospecting/campaigns/{alice['campaignId']}/cancel",
                                   headers=api.auth("bob"))  # fmt: skip
    assert cancel.status_code == 404
    assert (await get("bob", "/api/prospecting/campaigns/not-a-uuid")).status_code == 404
    # And bob's job is not alice's either.
    job = await get("alice", f"/api/jobs/{bob['jobId']}")
    assert job.status_code == 404


async def test_leads_as_json_and_csv(pro_app: App, api: Api) -> None:
    campaign = (await api.submit("alice", maxResults=10)).json()
    await drain(pro_app, timeout=60)
    path = f"/api/prospecting/campaigns/{campaign['campaignId']}/leads"
    leads = (await api.client.get(path, headers=api.auth("alice"))).json()["leads"]
    assert leads and all(lead["enriched"] for lead in leads)
    confidences = [lead["confidence"] for lead in leads]
    assert confidences == sorted(confidences, reverse=True)
    answer = await api.client.get(path, headers={**api.auth("alice"), "Accept": "text/csv"})
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/csv")
    assert "attachment" in answer.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    assert [row["email"] for row in rows] == [lead["email"] or "" for lead in leads]
    assert [row["name"] for row in rows] == [lead["name"] for lead in leads]


def test_csv_cells_that_would_be_formulas_are_quoted_and_phone_numbers_are_not() -> None:
    text = leads_csv([{"name": "=HYPERLINK(\"http://x\")", "phone": "+1 555 0100",
                       "address": "-2+3", "email": "@SUM(A1)"}])  # fmt: skip
    row = next(csv.DictReader(io.StringIO(text)))
    assert row["name"].startswith("'=")
    assert row["email"].startswith("'@")
    assert row["address"] == "'-2+3"
    assert row["phone"] == "+1 555 0100"


async def test_cancelling_a_finished_campaign_is_a_409(pro_app: App, api: Api) -> None:
    campaign = (await api.submit("alice", maxResults=3)).json()
    await drain(pro_app, timeout=60)
    answer = await api.client.post(
        f"/api/prospecting/campaigns/{campaign['campaignId']}/cancel", headers=api.auth("alice")
    )
    assert answer.status_code == 409
    assert "completed" in answer.json()["error"]["message"]
