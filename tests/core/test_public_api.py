"""The declared public API (docs/public-api.md): the names in ``__all__`` of the public
modules. Applications in apps/ import nothing else from nightcrew; every public name exists,
has a docstring and is documented; the old import paths of re-exported names still work."""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
APPS = REPO / "apps"
PUBLIC_MODULES = ("nightcrew", "nightcrew.http", "nightcrew.http.dashboard", "nightcrew.testing")


def public_names() -> dict[str, set[str]]:
    """Each public module and the names it declares (its ``__all__``)."""
    return {name: set(importlib.import_module(name).__all__) for name in PUBLIC_MODULES}


def is_nightcrew(module: str) -> bool:
    return module == "nightcrew" or module.startswith("nightcrew.")


def non_public_imports(source: str, public: dict[str, set[str]]) -> list[str]:
    """The imports of nightcrew names in ``source`` that the public API does not declare."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [
                f"line {node.lineno}: import {alias.name}"
                for alias in node.names
                if is_nightcrew(alias.name) and alias.name not in public
            ]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if not is_nightcrew(node.module):
                continue
            declared = public.get(node.module, set())
            found += [
                f"line {node.lineno}: from {node.module} import {alias.name}"
                for alias in node.names
                if alias.name not in declared
            ]
    return found


def test_the_checker_flags_internal_imports() -> None:
    source = (
        "import nightcrew\nimport nightcrew.keys\nfrom nightcrew import App, Worker\n"
        "from nightcrew.keys import create_key\nfrom nightcrew.http import *\n"
        "from nightcrew.http.dashboard import render\nimport nightcrew_apps\n"
        "from nightcrew_apps import build_app\nfrom . import sibling\n"
        "def f():\n    from nightcrew.scheduler import Scheduler\n"
    )
    assert non_public_imports(source, public_names()) == [
        "line 2: import nightcrew.keys",
        "line 4: from nightcrew.keys import create_key",
        "line 5: from nightcrew.http import *",
        "line 11: from nightcrew.scheduler import Scheduler",
    ]


@pytest.mark.parametrize(
    "path", sorted(APPS.rglob("*.py")), ids=lambda path: str(path.relative_to(APPS))
)
def test_applications_import_only_the_public_api(path: Path) -> None:
    found = non_public_imports(path.read_text(encoding="utf-8"), public_names())
    assert not found, f"{path.relative_to(REPO)} imports internal nightcrew names: {found}"


def test_apps_has_applications_to_check() -> None:
    assert (APPS / "estimating" / "app.py").is_file()


@pytest.mark.parametrize("module", PUBLIC_MODULES)
def test_every_public_name_exists_and_has_a_docstring(module: str) -> None:
    loaded = importlib.import_module(module)
    assert loaded.__doc__, f"{module} has no docstring"
    for name in loaded.__all__:
        assert hasattr(loaded, name), f"{module}.__all__ names {name!r}, which is missing"
        doc = getattr(loaded, name).__doc__
        assert doc and doc.strip(), f"{module}.{name} has no docstring"


def test_docs_public_api_lists_every_public_module_and_name() -> None:
    text = (REPO / "docs" / "public-api.md").read_text(encoding="utf-8")
    quoted = set(re.findall(r"`([^`]+)`", text))
    for module, names in public_names().items():
        assert module in quoted, f"docs/public-api.md does not name the module {module}"
        missing = sorted(names - quoted)
        assert not missing, f"docs/public-api.md does not list {module}: {missing}"


def test_the_old_import_paths_of_re_exported_names_still_work() -> None:
    import nightcrew
    from nightcrew.keys import create_key
    from nightcrew.notify.render import EmailTemplate
    from nightcrew.queries import query
    from nightcrew.scheduler import Scheduler

    assert nightcrew.create_api_key is create_key
    assert nightcrew.load_query is query
    assert nightcrew.Scheduler is Scheduler
    assert nightcrew.EmailTemplate is EmailTemplate
