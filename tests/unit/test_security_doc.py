"""docs/security.md names a test for every rule: each named test must exist."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "security.md"
REFERENCE = re.compile(r"`([a-z_/]+\.py)::(test_[a-z0-9_]+)`")


def functions_in(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {
        node.name
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    }


def test_every_test_named_in_the_security_doc_exists() -> None:
    references = REFERENCE.findall(DOC.read_text(encoding="utf-8"))
    assert len(references) > 40
    missing = [
        f"{file}::{name}"
        for file, name in references
        if not (ROOT / "tests" / file).is_file() or name not in functions_in(ROOT / "tests" / file)
    ]
    assert not missing, f"docs/security.md names tests that do not exist: {missing}"
