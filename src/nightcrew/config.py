"""One validated settings object for an :class:`~nightcrew.App` and its workers.

Every field can be given as an ``App(...)`` keyword argument or as an environment
variable named ``NIGHTCREW_<FIELD>`` (upper case). Keyword arguments win.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


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
    direct_url: str | None = Field(
        default=None,
        description="libpq URL that bypasses a transaction pooler (PgBouncer): LISTEN, the "
        "worker's fetch connection, the scheduler's leader lock and migrations use it. When "
        "set, database_url is taken to be the pooler: its connections never prepare "
        "statements and keep no session state.",
    )
    migrate_on_start: bool = Field(True, description="Apply pending migrations when the App opens.")
    lease_seconds: float = Field(30.0, gt=0, description="How long a fetched job is leased.")
    heartbeat_seconds: float = Field(10.0, gt=0, description="How often running leases renew.")
    poll_seconds: float = Field(1.0, gt=0, description="Fallback polling interval for new jobs.")
    shutdown_grace_seconds: float = Field(
        30.0, ge=0, description="How long running jobs may finish after SIGTERM/SIGINT."
    )
    listen: bool = Field(
        True,
        description="Use LISTEN/NOTIFY (on direct_url when set; disable behind PgBouncer "
        "without a direct_url).",
    )
    listen_check_seconds: float = Field(
        15.0,
        gt=0,
        description="A LISTEN connection silent this long is probed (SELECT 1, and TCP "
        "keepalives after the same idle time); no answer within as long again: reconnect.",
    )
    concurrency: int = Field(10, ge=1, le=10_000, description="Jobs run at once per worker.")
    fetch_batch: int = Field(100, ge=1, le=10_000, description="Most jobs fetched per query.")
    complete_batch: int = Field(500, ge=1, le=50_000, description="Most outcomes per write.")
    complete_interval_ms: float = Field(
        5.0, ge=0, description="How long finished jobs may wait to be written in one batch."
    )
    rescue_seconds: float = Field(15.0, gt=0, description="How often workers rescue lost leases.")
    http_max_body_bytes: int = Field(
        1 << 20, ge=1, description="Largest request body the HTTP API accepts (413 beyond)."
    )
    http_pool_timeout_seconds: float = Field(
        2.0,
        gt=0,
        description="How long an HTTP request waits for a database connection before it "
        "answers 503 (with Retry-After) instead of hanging while the database is down.",
    )
    http_key_cache_size: int = Field(
        10_000,
        ge=0,
        description="How many verified API keys each HTTP process remembers (least recently "
        "used go first; the key is still checked on every request). Their requests send the "
        "key check with their statements in one round trip; 0: remember none.",
    )
    gc_freeze: bool = Field(
        True,
        description="When a worker or `nightcrew serve` starts, collect garbage once, then "
        "move every object alive (modules, the App, routes, models) out of the cyclic "
        "collector's sight (gc.freeze), once per process: its full collections then walk "
        "only what the work creates. Under load this cut the server's HTTP enqueue p99 from "
        "106 to 43 ms. Cyclic garbage among the frozen objects is never collected.",
    )
    metrics_token: SecretStr | None = Field(
        None,
        description="Bearer token Prometheus sends to scrape /metrics (admin keys work too); "
        "unset: only admin keys may scrape.",
    )
    http_heartbeat_seconds: float = Field(
        15.0, gt=0, description="How often an idle event stream sends a keep-alive comment."
    )
    scheduler_poll_seconds: float = Field(
        1.0,
        gt=0,
        description="How often the scheduler leader re-reads its schedules, and "
        "how often other processes try to take over leadership (handover time after the "
        "leader dies).",
    )
    scheduler_misfire_grace_seconds: float = Field(
        10.0,
        ge=0,
        description="A tick found more than this late counts as missed (e.g. "
        "everything was down) and follows the schedule's missed= policy; later ones are "
        "still fired.",
    )
    defer_queue_depth: int = Field(
        1000,
        ge=0,
        description="Runnable jobs (all queues) from which the queue counts as "
        "busy and non-critical schedules are deferred; 0 ignores queue depth.",
    )
    defer_running_jobs: int = Field(
        500,
        ge=0,
        description="Running jobs from which the queue counts as busy and "
        "non-critical schedules are deferred; 0 ignores running jobs.",
    )
    maintenance_schedules: bool = Field(
        True,
        description="Declare the built-in nightcrew.rescue, nightcrew.prune, "
        "nightcrew.retention and nightcrew.vacuum schedules.",
    )
    maintenance_queue: str = Field(
        "nightcrew", min_length=1, description="Queue of the maintenance jobs."
    )
    maintenance_rescue_seconds: float = Field(
        60.0, ge=1, description="Interval of nightcrew.rescue (expired leases, overdue jobs)."
    )
    prune_cron: str = Field(
        "30 3 * * *", description="When nightcrew.prune runs (UTC cron, deferred under load)."
    )
    prune_completed_days: float = Field(
        30.0, gt=0, description="Completed and cancelled jobs are pruned after this many days."
    )
    prune_failed_days: float = Field(
        90.0, gt=0, description="Failed (dead-letter) jobs are pruned after this many days."
    )
    prune_mode: Literal["archive", "delete"] = Field(
        "archive",
        description="archive: move pruned jobs to nightcrew.jobs_history; delete: drop them.",
    )
    prune_batch_size: int = Field(
        1000, ge=1, le=100_000, description="Jobs pruned per short transaction."
    )
    # ---- retention of the other tables (nightcrew.retention; 0 keeps rows forever) ----
    retention_cron: str = Field(
        "45 3 * * *", description="When nightcrew.retention runs (UTC cron, deferred under load)."
    )
    retention_notifications_days: float = Field(
        30.0, ge=0, description="Read in-app notifications are deleted after this many days."
    )
    retention_unread_notifications_days: float = Field(
        90.0,
        ge=0,
        description="Unread in-app notifications are deleted after this many days (never "
        "sooner than read ones).",
    )
    retention_deliveries_days: float = Field(
        30.0, ge=0, description="Sent and failed notification deliveries are deleted after this."
    )
    retention_audit_days: float = Field(
        365.0, ge=0, description="Audit log entries are deleted after this many days."
    )
    retention_alerts_days: float = Field(
        90.0, ge=0, description="Resolved alerts are deleted this many days after resolving."
    )
    retention_history_days: float = Field(
        90.0, ge=0, description="Archived jobs are deleted this many days after archiving."
    )
    retention_workers_hours: float = Field(
        24.0,
        ge=0,
        description="Worker rows without a heartbeat for this many hours are deleted (never "
        "one holding a live lease).",
    )
    retention_sessions_days: float = Field(
        7.0,
        ge=0,
        description="Dashboard sessions are deleted this many days after they ended (logout, "
        "expiry or the key's revocation); a live session never.",
    )
    retention_limits_days: float = Field(
        7.0,
        ge=0,
        description="Limit keys idle for this many days are deleted (never one with an "
        "override, a held slot or a reserved rate slot, nor within an hour of its last call).",
    )
    retention_batch_size: int = Field(
        5000, ge=1, le=100_000, description="Rows one retention statement reads at most."
    )
    retention_time_budget_seconds: float = Field(
        300.0, gt=0, description="A retention run stops after this; the next run continues."
    )
    # ---- quiet-time maintenance (nightcrew.vacuum, when="quiet") ----
    vacuum_cron: str = Field(
        "0 4 * * *", description="When nightcrew.vacuum's tick comes (UTC cron)."
    )
    vacuum_quiet_backlog: int = Field(
        100, ge=1, description="nightcrew.vacuum waits until fewer jobs than this are runnable."
    )
    vacuum_run_by_hours: float = Field(
        6.0, gt=0, description="... and runs this many hours after its tick regardless."
    )
    vacuum_reindex_bloat: float = Field(
        0.5,
        gt=0,
        le=1,
        description="An index of nightcrew.jobs is rebuilt (REINDEX CONCURRENTLY) when at "
        "least this share of its pages is estimated to be bloat.",
    )
    vacuum_reindex_min_pages: int = Field(
        128, ge=1, description="Indexes smaller than this many pages are never rebuilt."
    )
    autoscale_check_seconds: float = Field(
        2.0, gt=0, description="How often nightcrew worker --autoscale reads the backlog."
    )
    autoscale_up_age_seconds: float = Field(
        5.0,
        gt=0,
        description="--autoscale adds a worker once the oldest runnable job waited "
        "this long (or more jobs wait than the workers have slots).",
    )
    autoscale_idle_seconds: float = Field(
        30.0, gt=0, description="--autoscale removes a worker after nothing waited this long."
    )
    autoscale_step_seconds: float = Field(
        5.0, ge=0, description="--autoscale changes the number of workers at most this often."
    )
    pool_min_size: int = Field(1, ge=0)
    pool_max_size: int = Field(10, ge=1)
    # ---- notifications and alerts (docs/notifications.md) ----
    smtp_host: str | None = Field(None, description="SMTP server; unset: no email is sent.")
    smtp_port: int = Field(587, ge=1, le=65535)
    smtp_user: str | None = None
    smtp_password: SecretStr | None = None
    smtp_from: str = Field("nightcrew@localhost", description="Sender address of emails.")
    smtp_tls: Literal["none", "starttls", "ssl"] = Field(
        "starttls", description="none, starttls (true) or ssl (implicit TLS, port 465)."
    )
    smtp_timeout_seconds: float = Field(
        30.0, gt=0, description="Per SMTP command; notify_timeout_seconds bounds the whole."
    )
    alert_emails: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Admins' alert addresses (comma-separated)."
    )
    alert_webhook: str | None = Field(None, description="URL that receives alert events.")
    admin_email: str | None = Field(
        None,
        description="The admin's address: an email about every dead-lettered job (the first "
        "10 of a minute singly, the rest of that minute in one email).",
    )
    webhook_secret: SecretStr | None = Field(
        None, description="Master HMAC key of webhook signatures (per-user keys derive from it)."
    )
    webhook_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Hosts that webhooks set over the HTTP API may target (comma-separated; "
        "'.example.com' allows subdomains, '*' any public host; empty: none).",
    )
    webhook_allow_private: bool = Field(
        False,
        description="Let webhooks reach loopback, private and link-local addresses "
        "(local receivers in development and tests; never on a shared server).",
    )
    notify_timeout_seconds: float = Field(
        10.0, gt=0, description="Deadline of one whole delivery attempt (webhook or email)."
    )
    notify_backoff_seconds: float = Field(2.0, ge=0, description="Base of delivery backoff.")
    dashboard_url: str = Field("http://127.0.0.1:8000", description="Base of job links.")
    dashboard_session_hours: float = Field(
        12.0, gt=0, description="How long a dashboard login lasts (logout ends it sooner)."
    )
    dev_insecure_cookies: bool = Field(
        False,
        description="Development only: the dashboard cookie drops Secure on plain http to "
        "a loopback host (127.0.0.1, localhost, ::1), as make demo and the tests use.",
    )
    alert_check_seconds: float = Field(30.0, ge=1, description="How often alert rules run.")
    alert_failure_rate: float = Field(0.10, gt=0, le=1)
    alert_failure_window_seconds: float = Field(3600.0, ge=60)
    alert_failure_min_jobs: int = Field(20, ge=1)
    alert_queue_depth: int = Field(100, ge=0)
    alert_queue_depth_seconds: float = Field(300.0, ge=0)
    alert_overdue_slack_seconds: float = Field(0.0, ge=0)
    alert_schedule_periods: int = Field(2, ge=1)
    alert_stale_types: dict[str, float] = Field(
        default_factory=dict,
        description='Seconds without a success before a type alerts ({"type": s, "*": s}).',
    )

    @field_validator("alert_emails", "webhook_hosts", mode="before")
    @classmethod
    def _split_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("admin_email")
    @classmethod
    def _admin_email(cls, value: str | None) -> str | None:
        from nightcrew.errors import EnqueueError
        from nightcrew.notify.spec import check_email

        if not value:
            return None
        try:
            return check_email(value, "admin_email")
        except EnqueueError as exc:
            raise ValueError(str(exc)) from None

    @field_validator("retention_workers_hours")
    @classmethod
    def _workers_hours(cls, value: float) -> float:
        # A live worker heartbeats every few seconds: an hour's silence cannot be one.
        if 0 < value < 1:
            raise ValueError("must be 0 (keep forever) or at least 1 hour")
        return value

    @field_validator("smtp_tls", mode="before")
    @classmethod
    def _tls_bool(cls, value: Any) -> Any:
        if isinstance(value, bool):
            return "starttls" if value else "none"
        if isinstance(value, str) and value.lower() in {"true", "1", "yes", "false", "0", "no"}:
            return "starttls" if value.lower() in {"true", "1", "yes"} else "none"
        return value

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
