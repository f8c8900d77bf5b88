"""The engines the drills run: PgBouncer and private PostgreSQL clusters, as processes.

Everything listens on addresses of this machine only. Processes started here are stopped
by their own pid when the context manager exits.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

PGBOUNCER = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
PG_BIN = Path(os.environ.get("NIGHTCREW_PG_BIN", "/usr/lib/postgresql/15/bin"))
# PgBouncer and postgres refuse to run as root: they run as this user then.
SERVICE_USER = "postgres"


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def wait_for_port(host: str, port: int, timeout: float = 10.0) -> None:
    """Wait until ``host:port`` accepts TCP connections."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listens on {host}:{port} after {timeout}s") from None
            time.sleep(0.05)


def pgbouncer_missing() -> str | None:
    """Why PgBouncer cannot run here (one line), or None when it can."""
    if not Path(PGBOUNCER).exists():
        return "pgbouncer is not installed (make drills installs it as root: apt-get)"
    if os.geteuid() == 0 and not _user_exists(SERVICE_USER):
        return f"running as root but there is no {SERVICE_USER!r} user to run pgbouncer as"
    return None


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def service_user() -> str | None:
    """The user services run as (``Popen(user=...)``): root is refused by them."""
    return SERVICE_USER if os.geteuid() == 0 else None


def _private_dir(prefix: str) -> Path:
    """A temporary directory the service user can use."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    if os.geteuid() == 0:
        entry = pwd.getpwnam(SERVICE_USER)
        os.chown(path, entry.pw_uid, entry.pw_gid)
    return path


def _stop(proc: subprocess.Popen[bytes], sig: signal.Signals = signal.SIGTERM) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@dataclass
class Bouncer:
    """A running PgBouncer in transaction mode."""

    host: str
    port: int
    log: Path

    def url(self, dbname: str) -> str:
        """The libpq URL of ``dbname`` through this PgBouncer."""
        return f"postgresql://postgres@{self.host}:{self.port}/{dbname}"

    def log_text(self) -> str:
        """What PgBouncer logged so far."""
        return self.log.read_text(errors="replace") if self.log.exists() else ""


@contextlib.contextmanager
def pgbouncer(
    server_host: str,
    server_port: int,
    *,
    pool_size: int = 20,
    max_client_conn: int = 2000,
    listen_host: str = "127.0.0.1",
) -> Iterator[Bouncer]:
    """Run PgBouncer (transaction pooling, ``pool_size`` server connections per database)
    in front of the server at ``server_host:server_port``; stop it on exit.

    Authentication is passed through as ``postgres`` (``auth_type = any``): the drills'
    servers trust local connections and PgBouncer listens on ``listen_host`` only.
    """
    reason = pgbouncer_missing()
    if reason:
        raise RuntimeError(reason)
    work = _private_dir("nightcrew-pgbouncer-")
    port = free_port(listen_host)
    config = work / "pgbouncer.ini"
    config.write_text(
        "[databases]\n"
        f"* = host={server_host} port={server_port} user=postgres\n"
        "[pgbouncer]\n"
        f"listen_addr = {listen_host}\n"
        f"listen_port = {port}\n"
        "unix_socket_dir =\n"
        "auth_type = any\n"
        "pool_mode = transaction\n"
        f"default_pool_size = {pool_size}\n"
        "reserve_pool_size = 0\n"
        f"max_client_conn = {max_client_conn}\n"
        "server_reset_query =\n"
        "ignore_startup_parameters = extra_float_digits\n"
        f"logfile = {work / 'pgbouncer.log'}\n"
        "log_connections = 0\n"
        "log_disconnections = 0\n"
    )
    config.chmod(0o644)
    with (work / "stderr.log").open("wb") as stderr:
        proc = subprocess.Popen(
            [PGBOUNCER, str(config)],
            user=service_user(),
            cwd=work,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    try:
        wait_for_port(listen_host, port)
        yield Bouncer(listen_host, port, work / "pgbouncer.log")
    finally:
        _stop(proc, signal.SIGINT)  # SIGINT: PgBouncer's immediate shutdown
        shutil.rmtree(work, ignore_errors=True)
