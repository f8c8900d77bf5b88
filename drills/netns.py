"""Worker hosts as Linux network namespaces, each linked to this machine by a veth pair.

Host ``k`` sees this machine at ``10.<net>.<k>.1`` (the veth end outside the namespace) and
is itself ``10.<net>.<k>.2``. Cutting a host takes the outside end of its link down:
packets are dropped silently, as on a real partition, and TCP connections hang instead of
failing. Needs root (CAP_NET_ADMIN); :func:`netns_missing` says why not otherwise.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass

from drills.leftovers import NETNS_FILE, base_dir, owned_dir


@dataclass(frozen=True)
class Host:
    """One namespace and its link."""

    index: int
    netns: str
    link: str  # the veth end outside the namespace
    outside: str  # this machine's address on the link
    inside: str  # the host's own address

    def cut(self) -> None:
        """Partition the host from this machine (and its PostgreSQL)."""
        _ip("link", "set", self.link, "down")

    def restore(self) -> None:
        """Heal the partition."""
        _ip("link", "set", self.link, "up")


def _ip(*args: str, netns: str | None = None) -> None:
    prefix = ["ip", "netns", "exec", netns] if netns else []
    done = subprocess.run([*prefix, "ip", *args], capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")


def netns_missing() -> str | None:
    """Why network namespaces cannot be made here (one line), or None."""
    if os.geteuid() != 0:
        return "needs root for network namespaces (ip netns add); run make drills as root"
    if shutil.which("ip") is None:
        return "the ip command (iproute2) is not installed"
    probe = f"ncprobe{os.getpid()}"
    try:
        subprocess.run(["ip", "netns", "add", probe], check=True, capture_output=True)
    except subprocess.CalledProcessError as exc:
        return f"ip netns add failed: {exc.stderr.decode(errors='replace').strip()}"
    subprocess.run(["ip", "netns", "del", probe], check=False, capture_output=True)
    return None


def _free_net() -> int:
    """A second octet ``n`` such that no address or route of this machine is in 10.n/16
    (another drill's hosts, a leftover, the machine's own network)."""
    used = subprocess.run(["ip", "-4", "-o", "addr"], capture_output=True, text=True,
                          check=True, timeout=30).stdout  # fmt: skip
    used += subprocess.run(["ip", "-4", "route"], capture_output=True, text=True,
                           check=True, timeout=30).stdout  # fmt: skip
    for net in range(200, 250):
        if f"10.{net}." not in used:
            return net
    raise RuntimeError("no free 10.200-249.0.0/16 network for the drill's hosts")


@contextlib.contextmanager
def hosts(count: int) -> Iterator[list[Host]]:
    """``count`` namespaces with a link each; removed on exit. Their names carry our pid;
    they are listed in a directory of ours before they are made, so that a drill killed
    before its ``finally`` leaves nothing the next one does not clear (drills/leftovers.py)."""
    tag = os.getpid()
    record = owned_dir("netns")
    made: list[Host] = []
    try:
        # One drill at a time picks its network and adds its addresses.
        with (base_dir() / "nightcrew-drill-netns.lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            net = _free_net()
            for k in range(1, count + 1):
                host = Host(k, f"ncdrill{tag}h{k}", f"ncd{tag}v{k}", f"10.{net}.{k}.1",
                            f"10.{net}.{k}.2")  # fmt: skip
                with (record / NETNS_FILE).open("a") as listed:
                    listed.write(f"{host.netns} {host.link}\n")
                _ip("netns", "add", host.netns)
                made.append(host)
                _ip("link", "add", host.link, "type", "veth", "peer", "name", "eth0",
                    "netns", host.netns)  # fmt: skip
                _ip("addr", "add", f"{host.outside}/24", "dev", host.link)
                _ip("link", "set", host.link, "up")
                _ip("addr", "add", f"{host.inside}/24", "dev", "eth0", netns=host.netns)
                _ip("link", "set", "eth0", "up", netns=host.netns)
                _ip("link", "set", "lo", "up", netns=host.netns)
        yield made
    finally:
        for host in made:
            subprocess.run(["ip", "link", "del", host.link], check=False, capture_output=True)
            subprocess.run(["ip", "netns", "del", host.netns], check=False, capture_output=True)
        shutil.rmtree(record, ignore_errors=True)
