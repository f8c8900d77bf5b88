"""Embedding providers: the bundled local model, or an OpenAI-compatible HTTP API.

``provider_from_env()`` picks one: ``WORKSPACE_EMBEDDING_URL`` (e.g.
``https://api.openai.com/v1``) selects the HTTP provider with ``WORKSPACE_EMBEDDING_KEY``
and ``WORKSPACE_EMBEDDING_MODEL``; otherwise the local all-MiniLM-L6-v2 (384 dimensions,
numpy, no download). Providers are synchronous: jobs call them in a thread.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx
from threadpoolctl import ThreadpoolController  # type: ignore[import-untyped]

from workspace import minilm

URL_ENV = "WORKSPACE_EMBEDDING_URL"
KEY_ENV = "WORKSPACE_EMBEDDING_KEY"
MODEL_ENV = "WORKSPACE_EMBEDDING_MODEL"
DIMENSION_ENV = "WORKSPACE_EMBEDDING_DIMENSION"
DEFAULT_REMOTE_MODEL = "text-embedding-3-small"
PARALLEL_ENV = "WORKSPACE_EMBEDDING_PARALLEL"
"""How many batches the local model runs at once in a process (default 1)."""


class EmbeddingError(RuntimeError):
    """The provider could not embed (its message says why; the job retries)."""


class EmbeddingProvider(Protocol):
    """Turns texts into vectors of :attr:`dimension` floats, one model call per batch."""

    @property
    def model(self) -> str:
        """The model's name, stored with every vector."""

    @property
    def dimension(self) -> int:
        """The length of every vector."""

    def embed(self, texts: list[str]) -> list[list[float]]:
        """One vector per text, in order."""


@dataclass
class LocalMiniLM:
    """The bundled all-MiniLM-L6-v2 (loaded once per process, on first use).

    Each batch runs on one BLAS thread, and ``parallel`` batches at a time (default 1,
    ``$WORKSPACE_EMBEDDING_PARALLEL``): on a busy machine multi-threaded BLAS spins and was
    2-10 times slower, and parallel batches in one process contend for the GIL (see
    docs/workspace.md)."""

    model: str = minilm.MODEL_NAME
    dimension: int = minilm.DIMENSION
    _encoder: minilm.MiniLM | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    parallel: int = field(default_factory=lambda: int(os.environ.get(PARALLEL_ENV, "1")))
    _slots: threading.BoundedSemaphore | None = field(default=None, repr=False)
    _blas: ThreadpoolController = field(default_factory=ThreadpoolController, repr=False)

    def embed(self, texts: list[str]) -> list[list[float]]:
        """Unit vectors for ``texts`` (a batch: one forward pass)."""
        with self._lock:
            if self._encoder is None:
                self._encoder = minilm.MiniLM.load()
            if self._slots is None:
                self._slots = threading.BoundedSemaphore(max(1, self.parallel))
            encoder, slots = self._encoder, self._slots
        with slots, self._blas.limit(limits=1, user_api="blas"):
            vectors = encoder.encode(texts)
        return [[float(x) for x in row] for row in vectors]


@dataclass
class OpenAICompatible:
    """``POST {url}/embeddings`` with ``{"model", "input": [...]}`` and a bearer key: the
    OpenAI embeddings API, also served by many local and hosted servers."""

    url: str
    key: str | None
    model: str = DEFAULT_REMOTE_MODEL
    dimension: int = 1536
    timeout: float = 60.0
    send_dimensions: bool = False

    def embed(self, texts: list[str]) -> list[list[float]]:
        """Vectors from the server, checked (count, order, dimension)."""
        body: dict[str, Any] = {"model": self.model, "input": texts}
        if self.send_dimensions:
            body["dimensions"] = self.dimension
        headers = {"Authorization": f"Bearer {self.key}"} if self.key else {}
        try:
            response = httpx.post(
                f"{self.url.rstrip('/')}/embeddings",
                json=body,
                headers=headers,
                timeout=self.timeout,
            )
        except httpx.HTTPError as exc:
            raise EmbeddingError(f"embedding server {self.url} unreachable: {exc}") from None
        if response.status_code != 200:
            raise EmbeddingError(
                f"embedding server answered {response.status_code}: {response.text[:200]}"
            )
        return self._vectors(response.json(), len(texts))

    def _vectors(self, answer: Any, count: int) -> list[list[float]]:
        try:
            data = sorted(answer["data"], key=lambda item: int(item["index"]))
            vectors = [[float(x) for x in item["embedding"]] for item in data]
        except (KeyError, TypeError, ValueError):
            raise EmbeddingError("embedding server answer is not an embeddings list") from None
        if len(vectors) != count:
            raise EmbeddingError(f"embedding server gave {len(vectors)} vectors for {count}")
        wrong = {len(v) for v in vectors} - {self.dimension}
        if wrong:
            raise EmbeddingError(
                f"embedding server gave {sorted(wrong)}-dimensional vectors; "
                f"{self.dimension} configured ({DIMENSION_ENV})"
            )
        return vectors


def provider_from_env(environ: dict[str, str] | None = None) -> EmbeddingProvider:
    """The provider the environment configures (see the module docstring)."""
    env = os.environ if environ is None else environ
    url = env.get(URL_ENV)
    if not url:
        return LocalMiniLM()
    return OpenAICompatible(
        url=url,
        key=env.get(KEY_ENV),
        model=env.get(MODEL_ENV, DEFAULT_REMOTE_MODEL),
        dimension=int(env.get(DIMENSION_ENV, "1536")),
        send_dimensions=DIMENSION_ENV in env,
    )


def vector_literal(vector: list[float]) -> str:
    """pgvector's text form, ``[0.1,0.2,...]``."""
    return "[" + ",".join(f"{x:.7g}" for x in vector) + "]"
