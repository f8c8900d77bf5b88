"""Documents: indexing and embedding started by the database trigger, coalescing, the
content-hash guard, search (text, semantic, hybrid) and isolation between users. Real
Postgres with pgvector, real workers (``drain``), the real local model."""

from __future__ import annotations

from uuid import UUID

import psycopg
import pytest

from nightcrew import App
from nightcrew.testing import drain
from tests.workspace.conftest import _MODEL
from tests.workspace.helpers import client, insert_documents, rows, scalar
from workspace import documents

TYPES = ("workspace.index_document", "workspace.embed_document")


def job_counts(url: str) -> dict[tuple[str, str], int]:
    """How many workspace document jobs per (type, status)."""
    return {
        (t, s): n
        for t, s, n in rows(
            url,
            "SELECT type, status::text, count(*) FROM nightcrew.jobs"
            " WHERE type = ANY(%s) GROUP BY 1, 2",
            (list(TYPES),),
        )
    }


async def test_two_hundred_documents_written_by_sql_are_indexed_and_embedded_once(
    ws_app: App, ws_clean: str
) -> None:
    ids = insert_documents(
        ws_clean,
        "alice",
        [(f"note {n}", f"short note number {n} about topic {n % 7}") for n in range(200)],
    )
    assert job_counts(ws_clean) == {(TYPES[0], "pending"): 200, (TYPES[1], "pending"): 200}
    await drain(ws_app, timeout=120)
    state = rows(
        ws_clean,
        "SELECT d.index_writes, d.indexed_hash = d.content_hash,"
        " e.writes, e.content_hash = d.content_hash, e.dimension, e.model"
        " FROM workspace.documents d LEFT JOIN workspace.embeddings e"
        " ON e.document_id = d.id",
    )
    assert len(state) == len(ids) == 200
    assert set(state) == {(1, True, 1, True, 384, "all-MiniLM-L6-v2")}
    # Batched: far fewer model calls than documents.
    batches = scalar(
        ws_clean,
        "SELECT count(*) FROM nightcrew.jobs WHERE type = %s AND (result ->> 'batch')::int > 1",
        (TYPES[1],),
    )
    assert batches >= 1


async def test_a_rolled_back_write_leaves_no_job(ws_app: App, ws_clean: str) -> None:
    with psycopg.connect(ws_clean) as conn:
        conn.execute(
            "INSERT INTO workspace.documents (owner, title, content)"
            " VALUES ('alice', 'draft', 'never saved')"
        )
        conn.rollback()
    assert job_counts(ws_clean) == {}


async def test_twenty_saves_coalesce_to_one_waiting_job_per_kind(
    ws_app: App, ws_clean: str
) -> None:
    [doc] = insert_documents(ws_clean, "alice", [("coalesced", "v0")])
    with psycopg.connect(ws_clean, autocommit=True) as conn:
        for n in range(1, 21):
            conn.execute(
                "UPDATE workspace.documents SET content = %s WHERE id = %s", (f"version {n}", doc)
            )
    assert job_counts(ws_clean) == {(TYPES[0], "pending"): 1, (TYPES[1], "pending"): 1}
    await drain(ws_app)
    final = rows(
        ws_clean,
        "SELECT d.index_writes, e.writes, d.search @@ 'version & 20'::tsquery"
        " FROM workspace.documents d JOIN workspace.embeddings e"
        " ON e.document_id = d.id",
    )
    assert final == [(1, 1, True)]


async def test_a_late_job_never_overwrites_a_newer_index_or_embedding(
    ws_app: App, ws_clean: str
) -> None:
    [doc] = insert_documents(ws_clean, "alice", [("guarded", "the old words")])
    pool = await ws_app.apool()
    async with pool.connection() as conn:
        stale = await documents.read_version(conn, UUID(doc))
        assert stale is not None
        await conn.execute(
            "UPDATE workspace.documents SET content = 'the new words' WHERE id = %s", (doc,)
        )
        await drain(ws_app)  # the new content indexed and embedded
        # The late job's result for the old content is refused by the hash guard.
        assert await documents.write_index(conn, stale) is False
        vector = _MODEL.embed(["guarded\nthe old words"])
        job = UUID(int=1)
        written = await documents.write_embeddings(conn, _MODEL, job, [stale], vector)
        assert written == 0
    assert rows(
        ws_clean,
        "SELECT search @@ 'new'::tsquery, search @@ 'old'::tsquery,"
        " indexed_hash = content_hash FROM workspace.documents",
    )
    assert rows(
        ws_clean,
        "SELECT e.content_hash = d.content_hash FROM workspace.embeddings e"
        " JOIN workspace.documents d ON d.id = e.document_id",
    ) == [(True,)]
    assert rows(
        ws_clean,
        "SELECT search @@ 'new'::tsquery, search @@ 'old'::tsquery FROM workspace.documents",
    ) == [(True, False)]


CORPUS = [
    (
        "Fixing cars at home",
        "How to replace worn brake pads, change the engine oil and "
        "swap a flat tyre on your vehicle without a mechanic.",
    ),
    ("Automobile repair shop hours", "Our automobile repair shop is open Monday to Friday."),
    ("Sourdough bread", "Feed the starter, fold the dough, bake in a hot dutch oven."),
    ("Quarterly taxes", "Small businesses file estimated tax payments every quarter."),
    ("Roman history", "The republic became an empire under Augustus."),
]


async def test_search_text_semantic_and_hybrid(
    ws_app: App, ws_clean: str, keys: dict[str, str]
) -> None:
    insert_documents(ws_clean, "alice", CORPUS)
    await drain(ws_app)
    async with client(ws_app, keys["alice"]) as http:
        found = {}
        for mode in ("text", "semantic", "hybrid"):
            answer = await http.get(
                "/api/workspace/search", params={"q": "automobile repair", "mode": mode, "limit": 3}
            )
            assert answer.status_code == 200, answer.text
            found[mode] = [hit["title"] for hit in answer.json()["results"]]
    assert "Fixing cars at home" not in found["text"]  # no shared word
    assert found["text"][0] == "Automobile repair shop hours"
    assert "Fixing cars at home" in found["semantic"][:2]
    assert {"Fixing cars at home", "Automobile repair shop hours"} <= set(found["hybrid"][:2])


def test_reciprocal_rank_fusion_adds_one_over_k_plus_rank() -> None:
    text = [{"id": "a", "title": "A", "score": 1.0}, {"id": "b", "title": "B", "score": 0.5}]
    semantic = [{"id": "b", "title": "B", "score": 0.9}, {"id": "c", "title": "C", "score": 0.8}]
    fused = documents.fuse(text, semantic)
    assert [hit["id"] for hit in fused] == ["b", "a", "c"]
    assert fused[0]["score"] == pytest.approx(1 / 62 + 1 / 61, abs=1e-6)
    assert fused[0]["matched"] == ["text", "semantic"]


async def test_documents_over_http_and_bob_cannot_reach_alices(
    ws_app: App, ws_clean: str, keys: dict[str, str]
) -> None:
    async with client(ws_app, keys["alice"]) as alice, client(ws_app, keys["bob"]) as bob:
        made = await alice.post(
            "/api/workspace/documents", json={"title": "Secret plan", "content": "fixing cars"}
        )
        assert made.status_code == 201, made.text
        doc = made.json()
        assert doc["owner"] == "alice" and len(doc["jobs"]) == 2
        assert {j["type"] for j in doc["jobs"]} == set(TYPES)
        await drain(ws_app)
        got = (await alice.get(f"/api/workspace/documents/{doc['id']}")).json()
        assert got["indexed_at"] and got["embedded_at"] and got["jobs"] == []
        assert got["index_current"] and got["embedding_current"]
        url = f"/api/workspace/documents/{doc['id']}"
        assert (await bob.get(url)).status_code == 404
        assert (await bob.patch(url, json={"title": "mine"})).status_code == 404
        assert (await bob.delete(url)).status_code == 404
        state = await bob.get(f"{url}/state")
        assert state.status_code == 404
        update = await bob.post(
            f"{url}/updates",
            content=b"\x00\x00",
            headers={"content-type": "application/octet-stream"},
        )
        assert update.status_code == 404
        for mode in ("text", "semantic", "hybrid"):
            hits = await bob.get(
                "/api/workspace/search", params={"q": "secret plan cars", "mode": mode}
            )
            assert hits.status_code == 200 and hits.json()["results"] == []
        changed = await alice.patch(url, json={"content": "fixing bikes"})
        assert changed.status_code == 200 and changed.json()["embedding_current"] is False
        assert (await alice.delete(url)).status_code == 204
        assert (await alice.get(url)).status_code == 404


async def test_bad_input_is_a_clear_4xx(ws_app: App, ws_clean: str, keys: dict[str, str]) -> None:
    async with client(ws_app, keys["alice"]) as http:
        cases = [
            await http.post("/api/workspace/documents", json={"content": "no title"}),
            await http.post("/api/workspace/documents", json={"title": ""}),
            await http.patch(f"/api/workspace/documents/{UUID(int=5)}", json={}),
            await http.get("/api/workspace/documents/not-a-uuid"),
            await http.get("/api/workspace/search", params={"q": "x", "mode": "fuzzy"}),
            await http.get("/api/workspace/search", params={"q": ""}),
        ]
        assert [c.status_code for c in cases] == [422] * 6, [c.text for c in cases]
        made = await http.post("/api/workspace/documents", json={"title": "t"})
        url = f"/api/workspace/documents/{made.json()['id']}/updates"
        wrong_type = await http.post(url, content=b"abc", headers={"content-type": "text/plain"})
        assert wrong_type.status_code == 415
        garbage = await http.post(
            url, content=b"\xff\xfe\xfd", headers={"content-type": "application/octet-stream"}
        )
        assert garbage.status_code == 422 and "Yjs" in garbage.text
        anonymous = await http.get("/api/workspace/documents", headers={"Authorization": ""})
        assert anonymous.status_code == 401
