"""What a drill leaves behind when it is killed, and the sweep that clears it at the next start.

``finally`` blocks stop every cluster, PgBouncer, namespace and process a drill started, but
not when the drill itself is killed (SIGKILL, a CI time limit, the OOM killer). So each of
those is tied to its *owner*, the drill process (pid and start time, so a reused pid is not
taken for it): clusters and PgBouncers live in a directory ``nightcrew-drill-*`` holding an
``owner`` file, network namespaces are listed in such a directory before they are made, and
every nightcrew process a drill starts carries ``DRILL_OWNER`` in its environment.
:func:`sweep`, run before every drill, removes what belongs to an owner that no longer runs;
what belongs to a live owner (another drill running on this machine) is left alone, and so
is anything without an owner file.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

PREFIX = "nightcrew-drill-"
OWNER_FILE = "owner"
NETNS_FILE = "netns"  # lines "<namespace> <outside link>" of a hosts() set
OWNER_ENV = "DRILL_OWNER"
# PgBouncer and postgres refuse to run as root: they run as this user then.
SERVICE_USER = "postgres"


def _start_time(pid: int) -> str | None:
    """The start time of process ``pid`` (clock ticks after boot), or None if it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Field 22; the command name (field 2) may hold spaces, so count after its ')'.
    return text.rsplit(")", 1)[1].split()[19]


def owner() -> str:
    """This process as an owner: ``<pid>:<start time>``."""
    return f"{os.getpid()}:{_start_time(os.getpid())}"


def alive(who: str) -> bool:
    """Whether the owner ``who`` (from :func:`owner`) still runs."""
    pid, _, started = who.strip().partition(":")
    return pid.isdigit() and _start_time(int(pid)) == started


def service_uid_gid() -> tuple[int, int] | None:
    """uid and gid services run as when this process is root, else None (they run as us)."""
    if os.geteuid() != 0:
        return None
    entry = pwd.getpwnam(SERVICE_USER)
    return entry.pw_uid, entry.pw_gid


def _traversable(path: Path, uid: int, gid: int) -> bool:
    """Whether ``uid``/``gid`` may enter ``path`` and every directory above it."""
    for part in [path, *path.parents]:
        try:
            info = part.stat()
        except OSError:
            return False
        mode = info.st_mode
        if not (mode & stat.S_IXOTH or (info.st_uid == uid and mode & stat.S_IXUSR)
                or (info.st_gid == gid and mode & stat.S_IXGRP)):  # fmt: skip
            return False
    return True


def base_dir() -> Path:
    """Where the drills' directories go: the temporary directory, unless the service user
    cannot enter it or its path is too long for a Unix socket there (then /tmp)."""
    base = Path(tempfile.gettempdir())
    ids = service_uid_gid()
    if (ids is not None and not _traversable(base, *ids)) or len(str(base)) > 60:
        return Path("/tmp")
    return base


def owned_dir(kind: str) -> Path:
    """A new directory ``nightcrew-drill-<kind>-*`` owned by this process, usable by the
    service user."""
    path = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{kind}-", dir=base_dir()))
    (path / OWNER_FILE).write_text(owner() + "\n")
    ids = service_uid_gid()
    if ids is not None:
        os.chown(path, *ids)
    return path


def _run(*args: str) -> None:
    subprocess.run(args, stdin=subprocess.DEVNULL, capture_output=True, check=False, timeout=60)


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signal.SIGKILL)


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _pid_in(path: Path) -> int | None:
    try:
        first = path.read_text().split("\n", 1)[0].strip()
    except OSError:
        return None
    return int(first) if first.isdigit() else None


def _clear_dir(path: Path) -> None:
    """Stop what runs from ``path`` (a cluster, a PgBouncer, namespaces), then remove it."""
    # A postmaster killed outright: its backends see it gone and exit on their own. A pid
    # file may be stale and its pid reused: only a process started from this directory.
    for pidfile in [*path.glob("*/postmaster.pid"), *path.glob("*.pid")]:  # PgBouncer's
        pid = _pid_in(pidfile)
        if pid is not None and str(path).encode() in _cmdline(pid):
            _kill(pid)
    netns = path / NETNS_FILE
    if netns.exists():
        for line in netns.read_text().splitlines():
            name, _, link = line.partition(" ")
            found = subprocess.run(["ip", "netns", "pids", name], capture_output=True,
                                   text=True, check=False, timeout=30)  # fmt: skip
            for word in found.stdout.split():
                if word.isdigit():
                    _kill(int(word))
            if link:
                _run("ip", "link", "del", link)
            _run("ip", "netns", "del", name)
    shutil.rmtree(path, ignore_errors=True)


def _orphan_processes() -> list[int]:
    """Processes started by a drill whose owner is gone (``DRILL_OWNER`` in their
    environment)."""
    found = []
    marker = f"{OWNER_ENV}=".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        for item in environ.split(b"\0"):
            if item.startswith(marker):
                if not alive(item[len(marker) :].decode(errors="replace")):
                    found.append(int(entry.name))
                break
    return found


def sweep() -> list[str]:
    """Remove what drills whose process is gone left behind; return what was removed."""
    removed = []
    for pid in _orphan_processes():
        _kill(pid)
        removed.append(f"process {pid}")
    base = base_dir()
    for path in sorted(base.glob(f"{PREFIX}*")):
        try:
            who = (path / OWNER_FILE).read_text()
        except OSError:
            continue  # not ours to judge (no owner recorded)
        if not alive(who):
            _clear_dir(path)
            removed.append(str(path.name))
    return removed


def _exit_on_signal(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def prepare(drill: str) -> None:
    """What every drill does first: the machine's libpq settings are dropped; a SIGTERM or
    SIGHUP (a CI time limit, a closed terminal) unwinds through its ``finally`` blocks like
    Ctrl-C does, instead of ending the process where it stands; and what killed drills left
    behind is cleared."""
    # libpq's and the server tools' environment (PGHOST, PGSSLMODE, PGDATA, ...) is for the
    # machine's own server: the drills name everything of theirs explicitly.
    for name in [n for n in os.environ if n.startswith("PG")]:
        del os.environ[name]
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, _exit_on_signal)
    removed = sweep()
    if removed:
        print(f"[{drill}] cleared what a killed drill left: {', '.join(removed)}",
              file=sys.stderr, flush=True)  # fmt: skip


@contextlib.contextmanager
def owned_tempdir(kind: str) -> Iterator[Path]:
    """:func:`owned_dir` for the length of a block, removed afterwards (or by a later
    :func:`sweep` if this process is killed)."""
    path = owned_dir(kind)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
