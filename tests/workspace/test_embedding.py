"""Embedding providers: the bundled model (offline, 384 dimensions, semantic), the
OpenAI-compatible HTTP provider against a real local server, and a change of model
re-embedding every document in the background with progress."""

from __future__ import annotations

import os
import subprocess
import sys

import psycopg
import pytest

from nightcrew import App
from nightcrew.testing import drain
from tests.workspace.conftest import _MODEL, FAST
from tests.workspace.embedding_server import DIMENSION, embedding_server, letter_vector
from tests.workspace.helpers import client, insert_documents, rows, scalar
from workspace.app import install
from workspace.embedding import (
    EmbeddingError,
    LocalMiniLM,
    OpenAICompatible,
    provider_from_env,
)


def test_the_bundled_model_runs_offline_and_is_semantic() -> None:
    code = (
        "from workspace.embedding import LocalMiniLM; import numpy as np;"
        "v = np.array(LocalMiniLM().embed(['automobile repair', 'fixing cars',"
        " 'baking sourdough bread']));"
        "print(v.shape[1], float(v[0] @ v[1]) > float(v[0] @ v[2]) + 0.1)"
    )
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "HTTPS_PROXY": "http://127.0.0.1:9",
        "HTTP_PROXY": "http://127.0.0.1:9",
    }
    out = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert out.stdout.split() == ["384", "True"]


def test_local_vectors_are_unit_length_and_batched() -> None:
    vectors = _MODEL.embed(["one", "a longer second text", ""])
    assert len(vectors) == 3 and all(len(v) == 384 for v in vectors)
    assert all(abs(sum(x * x for x in v) - 1) < 1e-4 for v in vectors[:2])


def test_the_openai_compatible_provider_speaks_the_embeddings_api() -> None:
    with embedding_server() as server:
        provider = OpenAICompatible(
            url=server.url, key="sk-test", model="fake-embed", dimension=DIMENSION
        )
        vectors = provider.embed(["abc", "zzz a"])
        assert vectors == [letter_vector("abc"), letter_vector("zzz a")]
        [request] = server.requests
        assert request["path"] == "/v1/embeddings"
        assert request["body"] == {"model": "fake-embed", "input": ["abc", "zzz a"]}
        assert request["auth"] == "Bearer sk-test"
        server.fail_next = 1
        with pytest.raises(EmbeddingError, match="503"):
            provider.embed(["x"])
        wrong = OpenAICompatible(url=server.url, key=None, model="m", dimension=384)
        with pytest.raises(EmbeddingError, match=r"16.*384 configured"):
            wrong.embed(["x"])
    with pytest.raises(EmbeddingError, match="unreachable"):
        provider.embed(["the server is gone"])


def test_the_environment_picks_the_provider() -> None:
    assert isinstance(provider_from_env({}), LocalMiniLM)
    remote = provider_from_env(
        {
            "WORKSPACE_EMBEDDING_URL": "http://127.0.0.1:1/v1",
            "WORKSPACE_EMBEDDING_KEY": "k",
            "WORKSPACE_EMBEDDING_MODEL": "m",
            "WORKSPACE_EMBEDDING_DIMENSION": "16",
        }
    )
    assert isinstance(remote, OpenAICompatible)
    assert (remote.model, remote.dimension, remote.key) == ("m", 16, "k")


async def test_changing_the_model_re_embeds_every_document_with_progress(
    ws_app: App, ws_clean: str, keys: dict[str, str]
) -> None:
    insert_documents(ws_clean, "alice", [("abc", "aaa"), ("zzz", "zzz"), ("mixed", "abz")])
    await drain(ws_app)
    assert rows(ws_clean, "SELECT model, dimension FROM workspace.embedding_model") == [
        ("all-MiniLM-L6-v2", 384)
    ]
    with psycopg.connect(ws_clean, autocommit=True) as conn:
        from nightcrew import create_api_key

        admin = create_api_key(conn, "root", admin=True)[1]
    with embedding_server() as server:
        remote = OpenAICompatible(url=server.url, key="k", model="fake-embed", dimension=DIMENSION)
        changed = App(ws_clean, **FAST)
        install(changed, embedder=remote)
        try:
            async with client(changed, keys["alice"]) as http:
                refused = await http.post("/api/workspace/reembed")
                assert refused.status_code == 403
            async with client(changed, admin) as http:
                started = await http.post("/api/workspace/reembed")
                assert started.status_code == 202, started.text
            await drain(changed)
            job = rows(
                ws_clean,
                "SELECT status::text, progress, result FROM nightcrew.jobs WHERE id = %s",
                (started.json()["id"],),
            )[0]
            assert job[0] == "completed" and job[1] == 100 and job[2]["embedded"] == 3
            assert rows(ws_clean, "SELECT model, dimension FROM workspace.embedding_model") == [
                ("fake-embed", DIMENSION)
            ]
            assert scalar(ws_clean, "SELECT count(DISTINCT model) FROM workspace.embeddings") == 1
            assert len(server.requests) == 1  # one batch for the three documents
            async with client(changed, keys["alice"]) as http:
                hits = await http.get(
                    "/api/workspace/search", params={"q": "zzzz", "mode": "semantic", "limit": 1}
                )
            assert hits.json()["results"][0]["title"] == "zzz"
        finally:
            await changed.aclose()
