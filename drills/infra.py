"""The engines the drills run: PgBouncer and private PostgreSQL clusters, as processes.

Everything listens on addresses of this machine only, on a port chosen free (another one
when it turns out taken: never the machine's own PostgreSQL at 5432). Processes started here
are stopped by their own pid when the context manager exits, and their directories belong
to this drill process (drills/leftovers.py: a killed drill's are cleared at the next start).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg

from drills.leftovers import SERVICE_USER, owned_dir

PGBOUNCER = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
# Tries of a start on a fresh port when the chosen one was taken in the meantime.
PORT_TRIES = 3


def _pg_bin() -> Path:
    """NIGHTCREW_PG_BIN, else the newest Debian PostgreSQL server's binaries."""
    if "NIGHTCREW_PG_BIN" in os.environ:
        return Path(os.environ["NIGHTCREW_PG_BIN"])
    found = sorted(
        (p.parent for p in Path("/usr/lib/postgresql").glob("*/bin/initdb")),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    return found[-1] if found else Path("/usr/lib/postgresql/15/bin")


PG_BIN = _pg_bin()


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
        return "pgbouncer is not installed (make drill-packages installs it as root: apt-get)"
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
    work = owned_dir("pgbouncer")
    try:
        for attempt in range(1, PORT_TRIES + 1):
            port = free_port(listen_host)
            proc = _start_pgbouncer(work, server_host, server_port, pool_size, max_client_conn,
                                    listen_host, port)  # fmt: skip
            try:
                _wait_for_pgbouncer(proc, listen_host, port, work)
            except RuntimeError:
                _stop(proc, signal.SIGINT)
                if attempt == PORT_TRIES:
                    raise
                continue  # the port was taken between choosing and binding it: another one
            try:
                yield Bouncer(listen_host, port, work / "pgbouncer.log")
            finally:
                _stop(proc, signal.SIGINT)  # SIGINT: PgBouncer's immediate shutdown
            return
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _start_pgbouncer(
    work: Path, server_host: str, server_port: int, pool_size: int, max_client_conn: int,
    listen_host: str, port: int,
) -> subprocess.Popen[bytes]:  # fmt: skip
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
        f"pidfile = {work / 'pgbouncer.pid'}\n"
        "log_connections = 0\n"
        "log_disconnections = 0\n"
    )
    config.chmod(0o644)
    with (work / "stderr.log").open("wb") as stderr:
        return subprocess.Popen(
            [PGBOUNCER, str(config)],
            user=service_user(),
            cwd=work,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )


def _wait_for_pgbouncer(proc: subprocess.Popen[bytes], host: str, port: int, work: Path) -> None:
    """Wait until *this* PgBouncer answers on its admin console (not merely until something
    listens on the port); raise RuntimeError with its last words if it exits first."""
    deadline = time.monotonic() + 30
    while True:
        if proc.poll() is not None:
            raise RuntimeError(
                f"pgbouncer exited ({proc.returncode}): "
                f"{(work / 'stderr.log').read_text(errors='replace')[-500:]}"
            )
        try:
            with psycopg.connect(f"postgresql://postgres@{host}:{port}/pgbouncer",
                                 autocommit=True, connect_timeout=2) as conn:  # fmt: skip
                conn.execute("SHOW VERSION", prepare=False)
            return
        except psycopg.Error:
            if time.monotonic() > deadline:
                raise RuntimeError(f"pgbouncer did not answer on {host}:{port} in 30 s") from None
            time.sleep(0.05)


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

    def start_on_free_port(self, settings: dict[str, str]) -> None:
        """Configure ``settings`` on a free port and start; on another port when the chosen
        one was taken in the meantime. A failure raises with the server's last words."""
        for attempt in range(1, PORT_TRIES + 1):
            self.port = free_port(self.host)
            self.configure({**_base_settings(self.listen, self.port, self.base), **settings})
            try:
                self.start()
                return
            except subprocess.CalledProcessError as exc:
                log = self.log_text()
                if attempt < PORT_TRIES and "could not bind" in log:
                    (self.base / "server.log").rename(self.base / f"server-{attempt}.log")
                    continue
                raise RuntimeError(f"{self.data} did not start: {exc.stderr or ''}"
                                   f"{log[-800:]}") from exc  # fmt: skip

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
        except (FileNotFoundError, ValueError, ProcessLookupError, PermissionError):
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


def _run_tool(tool: str, *args: str, cwd: Path, timeout: float = 120) -> None:
    """Run a PostgreSQL program as the service user; raise with its output if it fails."""
    done = subprocess.run(
        [str(PG_BIN / tool), *args], user=service_user(), cwd=cwd, stdin=subprocess.DEVNULL,
        capture_output=True, text=True, check=False, timeout=timeout,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"{tool} failed ({done.returncode}): "
                           f"{(done.stderr or done.stdout)[-800:]}")  # fmt: skip


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
    base = owned_dir("pg")
    cluster = Cluster(base, 0, listen)
    try:
        _run_tool("initdb", "-D", str(cluster.data), "-U", "postgres", "--auth=trust",
                  "-E", "UTF8", "--no-sync", cwd=base)  # fmt: skip
        _trust_hba(cluster.data)
        cluster.start_on_free_port(settings or {})
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
    base = owned_dir("standby")
    standby = Cluster(base, 0, primary.listen)
    try:
        _run_tool("pg_basebackup", "-h", primary.host, "-p", str(primary.port), "-U",
                  "postgres", "-D", str(standby.data), "-R", "-X", "stream", "-c", "fast",
                  "-d", f"application_name={name}", cwd=base, timeout=300)  # fmt: skip
        standby.start_on_free_port(settings or {})
        yield standby
    finally:
        standby.stop()
        standby.kill()
        shutil.rmtree(base, ignore_errors=True)
