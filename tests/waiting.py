"""Waiting for a condition, never for a fixed time: poll until it holds, fail with what was awaited."""

from __future__ import annotations

import subprocess
import time
import urllib.request
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(
    condition: Callable[[], T | None], timeout_s: float, what: str, *, interval_s: float = 0.05
) -> T:
    """Call `condition` until it returns a true value, and return that value.

    Raises AssertionError naming `what` once `timeout_s` has passed; `condition` may raise to give up
    early (a server process that died, say).
    """
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"gave up after {timeout_s:g} s waiting for {what}")
        time.sleep(interval_s)


def serving(url: str, process: subprocess.Popen[bytes]) -> Callable[[], bool]:
    """A condition for wait_until: the server at `url` answers /healthz (RuntimeError once it has died)."""

    def answers() -> bool:
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=1) as response:
                return bool(response.status == 200)
        except OSError:
            if process.poll() is not None:
                raise RuntimeError(process.stderr.read().decode() if process.stderr else "died") from None
            return False

    return answers
