"""One validated settings object for an :class:`~nightcrew.App` and its workers.

Every field can be given as an ``App(...)`` keyword argument or as an environment
variable named ``NIGHTCREW_<FIELD>`` (upper case). Keyword arguments win.
"""

from __future__ import annotations

from pydantic import AliasChoices, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Settings of an App, its worker and its scheduler."""

    model_config = SettingsConfigDict(
        env_prefix="NIGHTCREW_", extra="forbid", validate_default=True, populate_by_name=True
    )

    database_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("database_url", "NIGHTCREW_DATABASE_URL", "DATABASE_URL"),
        description="libpq URL; when unset the embedded PostgreSQL server is used.",
    )
    migrate_on_start: bool = Field(True, description="Apply pending migrations when the App opens.")
    lease_seconds: float = Field(30.0, gt=0, description="How long a fetched job is leased.")
    heartbeat_seconds: float = Field(10.0, gt=0, description="How often running leases renew.")
    poll_seconds: float = Field(1.0, gt=0, description="Fallback polling interval for new jobs.")
    shutdown_grace_seconds: float = Field(
        30.0, ge=0, description="How long running jobs may finish after SIGTERM/SIGINT."
    )
    listen: bool = Field(True, description="Use LISTEN/NOTIFY (disable behind PgBouncer).")
    concurrency: int = Field(10, ge=1, le=10_000, description="Jobs run at once per worker.")
    fetch_batch: int = Field(100, ge=1, le=10_000, description="Most jobs fetched per query.")
    complete_batch: int = Field(500, ge=1, le=50_000, description="Most outcomes per write.")
    complete_interval_ms: float = Field(
        5.0, ge=0, description="How long finished jobs may wait to be written in one batch."
    )
    rescue_seconds: float = Field(15.0, gt=0, description="How often workers rescue lost leases.")
    pool_min_size: int = Field(1, ge=0)
    pool_max_size: int = Field(10, ge=1)

    @model_validator(mode="after")
    def _check(self) -> Settings:
        if self.heartbeat_seconds >= self.lease_seconds:
            raise ValueError(
                f"heartbeat_seconds ({self.heartbeat_seconds}) must be less than "
                f"lease_seconds ({self.lease_seconds})"
            )
        if self.pool_min_size > self.pool_max_size:
            raise ValueError("pool_min_size must not exceed pool_max_size")
        return self
