"""The workspace application: ``install(app)`` adds its job types, schedule, migrations,
HTTP routes (``/api/workspace``) and dashboard page (``/workspace``) to any nightcrew App.

``workspace.app:app`` is an App with only the workspace installed, for the command line:
``nightcrew worker --app workspace.app:app``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from uuid import UUID

from nightcrew import App, JobContext
from workspace import documents, sheets, yjs
from workspace.api import build_router
from workspace.dashboard import build_dashboard_router
from workspace.embedding import EmbeddingProvider, provider_from_env

NAME = "workspace"
"""The application's name: its job types' prefix, its queue, schema and route prefixes."""
QUEUE = "workspace"
REEMBED_TYPE = "workspace.reembed"
SNAPSHOT_TYPE = "workspace.snapshot_documents"


async def index_document(ctx: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
    """Write the document's tsvector, if its content is still the one read."""
    pool = await ctx.app.apool()
    async with pool.connection() as conn:
        return await documents.index_document(conn, UUID(str(payload["document_id"])))


def embed_document_job(
    provider: EmbeddingProvider,
) -> Callable[[JobContext, dict[str, Any]], Awaitable[dict[str, Any]]]:
    """The embed job of ``provider``: the document and up to 31 others waiting, one
    model call; a model other than the searched one starts a re-embed."""

    async def embed_document(ctx: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
        doc_id = UUID(str(payload["document_id"]))
        pool = await ctx.app.apool()
        async with pool.connection() as conn:
            model, _ = await documents.current_model(conn, provider)
            claimed, written = await documents.embed_batch(conn, provider, ctx.job.id, doc_id)
        if model != provider.model:
            await ctx.app.aenqueue(REEMBED_TYPE, {}, dedupe_key=REEMBED_TYPE)
        return {
            "document_id": str(doc_id),
            "batch": claimed,
            "written": written,
            "model": provider.model,
            "summary": f"{written} of {claimed} documents embedded in one batch",
        }

    return embed_document


def reembed_job(
    provider: EmbeddingProvider,
) -> Callable[[JobContext, dict[str, Any] | None], Awaitable[dict[str, Any]]]:
    """Embed every document with ``provider``'s model (batches, progress), then make it
    the searched model and drop the old vectors."""

    async def reembed(ctx: JobContext, payload: dict[str, Any] | None) -> dict[str, Any]:
        pool = await ctx.app.apool()
        done = 0
        async with pool.connection() as conn:
            while True:
                claimed, written = await documents.embed_batch(conn, provider, ctx.job.id, None)
                if not claimed:
                    break
                done += written
                left, total = await documents.missing_embeddings(conn, provider.model)
                progress = 100.0 * (total - left) / total if total else 100.0
                await ctx.save(
                    progress=min(progress, 99.0),
                    stage=f"{total - left} of {total} documents embedded with {provider.model}",
                )
            await documents.switch_model(conn, provider)
        await ctx.save(progress=100, stage=f"searching {provider.model} vectors")
        return {
            "model": provider.model,
            "dimension": provider.dimension,
            "embedded": done,
            "summary": f"{done} documents re-embedded with {provider.model}",
        }

    return reembed


async def recompute_formulas(ctx: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
    """Recompute a sheet's changed cells and everything downstream, writing the values
    and the checkpoint in one transaction."""
    sheet = str(payload["sheet"])
    async with ctx.transaction() as conn:
        result = await sheets.recompute(conn, sheet, ctx.job.id)
        await ctx.save(
            progress=100,
            checkpoint={"last_change": result.get("last_change")},
            stage=result["summary"],
        )
    return result


def snapshot_job(
    before_commit: Callable[[], Awaitable[None]] | None,
) -> Callable[[JobContext, dict[str, Any] | None], Awaitable[dict[str, Any]]]:
    """The snapshot job: each document with pending updates in its own transaction."""

    async def snapshot_documents(ctx: JobContext, payload: dict[str, Any] | None) -> dict[str, Any]:
        pool = await ctx.app.apool()
        async with pool.connection() as conn:
            pending = await yjs.pending_documents(conn)
        merged = 0
        for number, doc_id in enumerate(pending, start=1):
            async with ctx.transaction() as conn:
                result = await yjs.snapshot(conn, doc_id, before_commit)
                merged += result["updates"]
                await ctx.save(
                    progress=100.0 * number / len(pending), checkpoint={"documents_done": number}
                )
        return {
            "documents": len(pending),
            "updates_merged": merged,
            "summary": f"{merged} updates of {len(pending)} documents snapshotted",
        }

    return snapshot_documents


def install(
    app: App,
    *,
    embedder: EmbeddingProvider | None = None,
    before_snapshot_commit: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Add the workspace application to ``app``: migrations (schema ``workspace``, needs
    pgvector), job types (queue ``workspace``), the 5-minute snapshot schedule, the
    ``/api/workspace`` routes and the "Workspace" dashboard page.

    ``embedder``: the embedding provider (default: from the environment, see
    :func:`workspace.embedding.provider_from_env`). ``before_snapshot_commit`` runs inside
    each snapshot transaction just before it commits (fault tests pause there)."""
    provider = embedder or provider_from_env()
    with app.application(NAME):
        app.add_migrations("workspace", "workspace")
        app.job(documents.INDEX_TYPE, queue=QUEUE, max_attempts=5)(index_document)
        app.job(documents.EMBED_TYPE, queue=QUEUE, max_attempts=5, timeout=600)(
            embed_document_job(provider)
        )
        app.job(REEMBED_TYPE, queue=QUEUE, timeout=86_400, public=False)(reembed_job(provider))
        app.job("workspace.recompute_formulas", queue=QUEUE, max_attempts=5, timeout=600)(
            recompute_formulas
        )
        app.job(SNAPSHOT_TYPE, queue=QUEUE, timeout=1800, public=False)(
            snapshot_job(before_snapshot_commit)
        )
        app.schedule(SNAPSHOT_TYPE, cron="*/5 * * * *", critical=False)
        app.add_router(build_router(app, provider))
        app.add_dashboard_page(
            "Workspace", "/workspace", build_dashboard_router(app, provider), templates="workspace"
        )


def build_app(database_url: str | None = None, **settings: Any) -> App:
    """A new App with only the workspace installed (arguments as for
    :class:`nightcrew.App`)."""
    target = App(database_url, **settings)
    install(target)
    return target


app = build_app()
"""For the command line only (``nightcrew worker/serve --app workspace.app:app``)."""
