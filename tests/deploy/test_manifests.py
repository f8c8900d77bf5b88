"""deploy/: the docker-compose file and the Kubernetes manifests, checked offline.

Kubernetes resources are validated against the API schemas bundled in the
``kubernetes-validate`` package; the KEDA resources and the compose file by their
structure; KEDA's backlog query is run on a migrated database.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml

kubernetes_validate = pytest.importorskip("kubernetes_validate")

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
K8S_VERSION = "1.30.0"
NIGHTCREW_ENV = {"NIGHTCREW_DATABASE_URL", "NIGHTCREW_DIRECT_URL", "NIGHTCREW_MIGRATE_ON_START"}


def documents() -> list[dict[str, Any]]:
    """Every resource of deploy/kubernetes."""
    found = []
    for path in sorted((DEPLOY / "kubernetes").glob("*.yaml")):
        found += [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    return found


def by_kind(kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in documents() if d["kind"] == kind}


def env_names(container: dict[str, Any]) -> set[str]:
    return {entry["name"] for entry in container.get("env", [])}


@pytest.mark.parametrize("doc", [d for d in documents() if not d["apiVersion"].startswith("keda")],
                         ids=lambda d: f"{d['kind']}/{d['metadata']['name']}")  # fmt: skip
def test_kubernetes_resources_match_the_api_schema(doc: dict[str, Any]) -> None:
    kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_workers_and_api_use_the_pooler_and_a_direct_url() -> None:
    deployments = by_kind("Deployment")
    for name in ("nightcrew-worker", "nightcrew-api"):
        container = deployments[name]["spec"]["template"]["spec"]["containers"][0]
        assert env_names(container) == NIGHTCREW_ENV, name
        assert container["command"][:2] == ["nightcrew", name.removeprefix("nightcrew-")
                                            .replace("api", "serve")]  # fmt: skip
    keys = {key for doc in by_kind("Secret").values() for key in doc["stringData"]}
    assert keys == {"database-url", "direct-url"}
    worker = deployments["nightcrew-worker"]["spec"]["template"]["spec"]
    assert worker["terminationGracePeriodSeconds"] > 30  # shutdown_grace_seconds


def test_keda_scales_the_worker_deployment_on_the_backlog() -> None:
    scaled = by_kind("ScaledObject")["nightcrew-worker"]
    spec = scaled["spec"]
    assert spec["scaleTargetRef"]["name"] in by_kind("Deployment")
    assert 1 <= spec["minReplicaCount"] <= spec["maxReplicaCount"]
    (trigger,) = spec["triggers"]
    assert trigger["type"] == "postgresql"
    assert set(trigger["metadata"]) >= {"query", "targetQueryValue"}
    assert int(trigger["metadata"]["targetQueryValue"]) > 0
    auth = by_kind("TriggerAuthentication")[trigger["authenticationRef"]["name"]]
    (ref,) = auth["spec"]["secretTargetRef"]
    assert ref["parameter"] == "connection" and ref["key"] in {"database-url", "direct-url"}


def test_keda_query_counts_runnable_jobs(db_url: str) -> None:
    trigger = by_kind("ScaledObject")["nightcrew-worker"]["spec"]["triggers"][0]
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("TRUNCATE nightcrew.jobs")
        conn.execute("INSERT INTO nightcrew.jobs (id, type, status, run_at) VALUES"
                     " (gen_random_uuid(), 't', 'pending', now()),"
                     " (gen_random_uuid(), 't', 'retrying', now() - interval '1 minute'),"
                     " (gen_random_uuid(), 't', 'pending', now() + interval '1 hour'),"
                     " (gen_random_uuid(), 't', 'completed', now())")  # fmt: skip
        row = conn.execute(trigger["metadata"]["query"]).fetchone()
        conn.execute("TRUNCATE nightcrew.jobs")
    assert row == (2,)


def test_compose_file_has_the_whole_stack() -> None:
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    services = compose["services"]
    assert set(services) == {"postgres", "pgbouncer", "migrate", "api", "worker"}
    assert all("image" in service for service in services.values())
    assert services["pgbouncer"]["environment"]["POOL_MODE"] == "transaction"
    for name in ("api", "worker"):
        env = services[name]["environment"]
        assert set(env) == NIGHTCREW_ENV, name
        assert "@pgbouncer:" in env["NIGHTCREW_DATABASE_URL"]
        assert "@postgres:" in env["NIGHTCREW_DIRECT_URL"]
        assert services[name]["depends_on"]["migrate"]["condition"] == (
            "service_completed_successfully")  # fmt: skip
    assert "--autoscale" in services["worker"]["command"]
    assert services["migrate"]["command"][:2] == ["nightcrew", "migrate"]
    assert "@postgres:" in services["migrate"]["environment"]["NIGHTCREW_DATABASE_URL"]
