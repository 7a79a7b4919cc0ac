"""tests/machine.py: a missing program skips its tests with a reason, except under CI (they run and fail)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import pytest

from tests import machine
from tests.machine import BROWSER_MISSING, needs_tool, skip_browser_tests_without_chromium


class FakeItem:
    """Just what the collection hook touches of a pytest.Item: its marks."""

    def __init__(self, *names: str) -> None:
        self.marks: list[pytest.Mark] = [getattr(pytest.mark, name).mark for name in names]

    def get_closest_marker(self, name: str) -> pytest.Mark | None:
        return next((mark for mark in self.marks if mark.name == name), None)

    def add_marker(self, marker: pytest.MarkDecorator) -> None:
        self.marks.append(marker.mark)

    def skip_reasons(self) -> list[Any]:
        return [mark.kwargs["reason"] for mark in self.marks if mark.name == "skip"]


def collect(*items: FakeItem) -> None:
    skip_browser_tests_without_chromium(cast(list[pytest.Item], list(items)))


def test_browser_tests_skip_without_chromium_except_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(machine, "CHROMIUM", Path("/nonexistent/chromium"))
    monkeypatch.delenv("CI", raising=False)
    browser, plain = FakeItem("browser"), FakeItem("slow")
    collect(browser, plain)
    assert browser.skip_reasons() == [BROWSER_MISSING] and plain.skip_reasons() == []

    monkeypatch.setenv("CI", "true")
    browser = FakeItem("browser")
    collect(browser)
    assert browser.skip_reasons() == []  # runs, and fails for want of Chromium


def test_browser_tests_run_where_chromium_is(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "chromium").touch()
    monkeypatch.setattr(machine, "CHROMIUM", tmp_path / "chromium")
    monkeypatch.delenv("CI", raising=False)
    browser = FakeItem("browser")
    collect(browser)
    assert browser.skip_reasons() == []


def test_needs_tool_skips_only_outside_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    missing = needs_tool("no-such-program-for-journal-tests")
    assert (
        missing.mark.args == (True,) and "no-such-program-for-journal-tests" in missing.mark.kwargs["reason"]
    )
    assert needs_tool("sh").mark.args == (False,)
    monkeypatch.setenv("CI", "1")
    assert needs_tool("no-such-program-for-journal-tests").mark.args == (False,)
