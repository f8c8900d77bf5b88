"""The pooler tests spawn worker processes the way the fault tests do."""

from tests.faults.conftest import workers

__all__ = ["workers"]
