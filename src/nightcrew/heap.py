"""Keep the objects of a process's start out of the cyclic garbage collector's full passes.

A worker or an HTTP server holds a large, long-lived heap (modules, the App, FastAPI's
routes, pydantic's validators) and creates many short-lived objects per job or request.
CPython's full collections walk the whole heap each time, pausing the event loop for tens
of milliseconds: every job and request in flight waits for it (under 50 clients the HTTP
enqueue p99 was 106 ms with them, 43 ms without: docs/benchmarks.md).
"""

from __future__ import annotations

import gc
import threading

_lock = threading.Lock()
_frozen = False


def freeze_startup_heap() -> bool:
    """Collect garbage once, then freeze every object alive (``gc.freeze``), once per
    process; return whether this call did it. Objects frozen are still freed when their
    last reference goes; only cycles among them are never collected."""
    global _frozen
    with _lock:
        if _frozen:
            return False
        _frozen = True
    gc.collect()
    gc.freeze()
    return True
