"""Refresh docs/screenshots/*.png: runs the browser tests, which save a screenshot of each
main page (laptop size) when NIGHTCREW_SCREENSHOTS is set, then phone-sized ones.

    NIGHTCREW_TEST_DATABASE_URL=... python -m tests.browser.screenshots
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

if __name__ == "__main__":
    folder = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    os.environ["NIGHTCREW_SCREENSHOTS"] = str(folder)
    sys.exit(pytest.main(["-q", str(Path(__file__).parent)]))
