"""Worker hosts as Linux network namespaces, each linked to this machine by a veth pair.

Host ``k`` sees this machine at ``10.<net>.<k>.1`` (the veth end outside the namespace) and
is itself ``10.<net>.<k>.2``. Cutting a host takes the outside end of its link down:
packets are dropped silently, as on a real partition, and TCP connections hang instead of
failing. Needs root (CAP_NET_ADMIN); :func:`netns_missing` says why not otherwise.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass


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
    subprocess.run([*prefix, "ip", *args], check=True, capture_output=True, timeout=30)


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


@contextlib.contextmanager
def hosts(count: int) -> Iterator[list[Host]]:
    """``count`` namespaces with a link each; removed on exit (names carry our pid)."""
    tag = os.getpid() % 100_000
    net = 200 + tag % 50
    made: list[Host] = []
    try:
        for k in range(1, count + 1):
            host = Host(k, f"ncdrill{tag}h{k}", f"ncd{tag}v{k}", f"10.{net}.{k}.1",
                        f"10.{net}.{k}.2")  # fmt: skip
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
