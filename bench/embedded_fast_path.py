"""CPU per ``embedded.start()`` when the server already runs (the fast path), two versions
of ``nightcrew/db/embedded.py`` interleaved on one running server (4 rounds of 3,000 calls).

    git show <commit>:src/nightcrew/db/embedded.py > /tmp/embedded_old.py
    python bench/embedded_fast_path.py /tmp/embedded_old.py

The old module comes from that file, the new one is the installed ``nightcrew.db.embedded``.
CPU time (``time.process_time``), so the figure barely depends on the machine's load.
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

from nightcrew.db import embedded

CALLS = 3000
ROUNDS = 4


def load_module(path: str) -> ModuleType:
    """Import the module at ``path`` as ``embedded_old``."""
    spec = importlib.util.spec_from_file_location("embedded_old", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["embedded_old"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def cpu_us_per_start(module: ModuleType, data_dir: Path) -> float:
    """Mean CPU microseconds of ``module.start(data_dir)`` on a running server."""
    began = time.process_time()
    for _ in range(CALLS):
        module.start(data_dir)
    return (time.process_time() - began) / CALLS * 1e6


def main() -> None:
    variants = {"old": load_module(sys.argv[1]), "new": embedded}
    base = Path(tempfile.mkdtemp(dir="/var/tmp", prefix="nightcrew-bench-"))
    base.chmod(0o755)  # as root, a private parent is refused
    data_dir = base / "pg"
    try:
        url = embedded.start(data_dir)
        assert all(module.start(data_dir) == url for module in variants.values())
        results: dict[str, list[float]] = {name: [] for name in variants}
        for round_no in range(ROUNDS):
            order = list(variants) if round_no % 2 == 0 else list(reversed(variants))
            for name in order:  # interleaved: A B B A ...
                results[name].append(round(cpu_us_per_start(variants[name], data_dir), 1))
        for name, values in results.items():
            print(f"{name}: CPU us per start() {values}")
    finally:
        embedded.stop(data_dir)
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
