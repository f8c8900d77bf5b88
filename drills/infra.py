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
        if proc.poll() is not None:  # the port was someone else's: say so, don't use it
            raise RuntimeError(
                f"pgbouncer exited ({proc.returncode}): "
                f"{(work / 'stderr.log').read_text(errors='replace')[-500:]}"
            )
        yield Bouncer(listen_host, port, work / "pgbouncer.log")
    finally:
        _stop(proc, signal.SIGINT)  # SIGINT: PgBouncer's immediate shutdown
        shutil.rmtree(work, ignore_errors=True)


def postgres_missing() -> str | None:
    """Why a private PostgreSQL cluster cannot run here (one line), or None."""
    if not (PG_BIN / "initdb").exists():
        return f"PostgreSQL server binaries not found in {PG_BIN} (set NIGHTCREW_PG_BIN)"
    if os.geteuid() == 0 and not _user_exists(SERVICE_USER):
        return f"running as root but there is no {SERVICE_USER!r} user to run postgres as"
    return None


@dataclass
class Cluster:
    """A private PostgreSQL cluster in a temporary directory (``initdb`` + ``pg_ctl``)."""

    base: Path
    port: int
    listen: str

    @property
    def data(self) -> Path:
        """The data directory."""
        return self.base / "data"

    @property
    def host(self) -> str:
        """The first address the cluster listens on."""
        return self.listen.split(",")[0]

    def url(self, dbname: str = "postgres", host: str | None = None) -> str:
        """libpq URL of ``dbname`` on this cluster (over TCP to ``host``)."""
        return f"postgresql://postgres@{host or self.host}:{self.port}/{dbname}"

    def pg_ctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run ``pg_ctl -D <data> args...`` as the service user."""
        return subprocess.run(
            [str(PG_BIN / "pg_ctl"), "-D", str(self.data), *args],
            user=service_user(), cwd=self.base, stdin=subprocess.DEVNULL,
            capture_output=True, text=True, check=check, timeout=120,
        )  # fmt: skip

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        self.pg_ctl("-l", str(self.base / "server.log"), "-w", "-t", "60", "start")

    def stop(self) -> None:
        """Fast shutdown, if it runs."""
        if self.postmaster_pid() is not None:
            self.pg_ctl("-m", "fast", "-w", "-t", "60", "stop", check=False)

    def kill(self) -> None:
        """SIGKILL the postmaster (a crash: no shutdown checkpoint, no goodbye to clients)."""
        pid = self.postmaster_pid()
        if pid is not None:
            os.kill(pid, signal.SIGKILL)

    def promote(self) -> None:
        """Promote this standby to primary and wait until it accepts writes."""
        self.pg_ctl("-w", "-t", "60", "promote")

    def postmaster_pid(self) -> int | None:
        """The postmaster's pid, when its pid file names a live process."""
        try:
            pid = int((self.data / "postmaster.pid").read_text().split("\n", 1)[0])
            os.kill(pid, 0)
        except (FileNotFoundError, ValueError, ProcessLookupError):
            return None
        return pid

    def configure(self, settings: dict[str, str]) -> None:
        """Append ``settings`` to postgresql.conf (the last value of a name wins)."""
        with (self.data / "postgresql.conf").open("a") as conf:
            for name, value in settings.items():
                conf.write(f"{name} = {value}\n")

    def log_text(self) -> str:
        """The server log so far."""
        path = self.base / "server.log"
        return path.read_text(errors="replace") if path.exists() else ""


def _base_settings(listen: str, port: int, base: Path) -> dict[str, str]:
    return {
        "listen_addresses": f"'{listen}'",
        "port": str(port),
        "unix_socket_directories": f"'{base}'",
        "max_connections": "400",
        "shared_buffers": "128MB",
        "log_min_messages": "warning",
        "log_line_prefix": "'%m [%p] '",
    }


def _trust_hba(data: Path) -> None:
    # Drill clusters listen on this machine's own addresses and namespaces only.
    (data / "pg_hba.conf").write_text(
        "local all all trust\nhost all all 0.0.0.0/0 trust\n"
        "local replication all trust\nhost replication all 0.0.0.0/0 trust\n"
    )


@contextlib.contextmanager
def private_cluster(
    listen: str = "127.0.0.1", settings: dict[str, str] | None = None
) -> Iterator[Cluster]:
    """``initdb`` a fresh cluster listening on ``listen`` (comma-separated addresses of this
    machine), start it, and remove it afterwards."""
    reason = postgres_missing()
    if reason:
        raise RuntimeError(reason)
    base = _private_dir("nightcrew-drill-pg-")
    cluster = Cluster(base, free_port(listen.split(",")[0]), listen)
    try:
        subprocess.run(
            [str(PG_BIN / "initdb"), "-D", str(cluster.data), "-U", "postgres",
             "--auth=trust", "-E", "UTF8", "--no-sync"],
            user=service_user(), cwd=base, stdin=subprocess.DEVNULL,
            capture_output=True, check=True, timeout=120,
        )  # fmt: skip
        _trust_hba(cluster.data)
        cluster.configure({**_base_settings(listen, cluster.port, base), **(settings or {})})
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
        cluster.kill()
        shutil.rmtree(base, ignore_errors=True)


@contextlib.contextmanager
def standby_of(
    primary: Cluster, *, name: str = "standby", settings: dict[str, str] | None = None
) -> Iterator[Cluster]:
    """A streaming standby of ``primary`` made with ``pg_basebackup -R``, started."""
    base = _private_dir("nightcrew-drill-standby-")
    standby = Cluster(base, free_port(primary.host), primary.listen)
    try:
        subprocess.run(
            [str(PG_BIN / "pg_basebackup"), "-h", primary.host, "-p", str(primary.port),
             "-U", "postgres", "-D", str(standby.data), "-R", "-X", "stream", "-c", "fast",
             "-d", f"application_name={name}"],
            user=service_user(), cwd=base, stdin=subprocess.DEVNULL,
            capture_output=True, check=True, timeout=300,
        )  # fmt: skip
        standby.configure({**_base_settings(primary.listen, standby.port, base),
                           **(settings or {})})  # fmt: skip
        standby.start()
        yield standby
    finally:
        standby.stop()
        standby.kill()
        shutil.rmtree(base, ignore_errors=True)
