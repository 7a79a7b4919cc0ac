"""Programs of the machine that tests drive (Chromium, ExifTool, Info-ZIP, OpenSSL).

`make test` installs them (scripts/system-deps.sh). Elsewhere a test that needs a missing one is
skipped with the reason; under CI (the CI environment variable set) it runs and fails loudly, so a
broken set-up cannot turn into a green run of skips.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
BROWSER_MISSING = "needs Debian's Chromium at /usr/bin/chromium (make test installs it)"


def under_ci() -> bool:
    """True in CI, where nothing may be skipped for a missing program."""
    return bool(os.environ.get("CI"))


def chromium_available() -> bool:
    """True when Debian's Chromium is installed."""
    return CHROMIUM.exists()


def needs_tool(name: str) -> pytest.MarkDecorator:
    """A skipif mark for a test that runs the program `name`: skips when it is not on PATH, never under CI."""
    missing = shutil.which(name) is None
    return pytest.mark.skipif(
        missing and not under_ci(), reason=f"needs {name} on PATH (make test installs it)"
    )


def skip_browser_tests_without_chromium(items: list[pytest.Item]) -> None:
    """Mark the tests marked `browser` to be skipped when Chromium is missing, unless under CI."""
    if chromium_available() or under_ci():
        return
    for item in items:
        if item.get_closest_marker("browser") is not None:
            item.add_marker(pytest.mark.skip(reason=BROWSER_MISSING))
