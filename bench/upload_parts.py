"""Many parts in one upload: descriptors held while the body is parsed, and parse time per part.

Run: .venv/bin/python bench/upload_parts.py [PARTS ...]   (default 100 300 500)
Prints, per request size, the most descriptors the request's parts held at once (werkzeug's
default spooling held one per part until the request ended) and the parse time.
"""

from __future__ import annotations

import io
import os
import sys
import tempfile
import time
from pathlib import Path

from flask import Flask
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from journal.app import create_app
from journal.config import Settings
from journal.web.upload import StagedPart, StagingRequest


def open_descriptors() -> int:
    """Descriptors this process has open now (Linux)."""
    return len(os.listdir("/proc/self/fd"))


def parse(app: Flask, body: bytes, boundary: str, parts: int) -> float:
    """Seconds to parse one upload body into its staged parts."""
    environ = {"CONTENT_TYPE": f"multipart/form-data; boundary={boundary}"}
    with app.test_request_context("/api/photos", method="POST", data=body, environ_base=environ) as ctx:
        assert isinstance(ctx.request, StagingRequest)
        started = time.perf_counter()
        assert len(ctx.request.files.getlist("file")) == parts
        return time.perf_counter() - started


def measure(parts: int) -> tuple[int, float]:
    """(most descriptors held by parts at once, seconds to parse) for one request of `parts` files."""
    with tempfile.TemporaryDirectory() as home:
        app = create_app(Settings(home=Path(home), workers=1), TESTING=True)
        fields = {"file": [FileStorage(io.BytesIO(b"x" * 100), f"{i}.jpg") for i in range(parts)]}
        boundary, body = encode_multipart(fields)
        elapsed = parse(app, body, boundary, parts)
        baseline, peak = open_descriptors(), 0
        original = StagedPart.write

        def spy(self: StagedPart, data: object) -> int:
            nonlocal peak
            peak = max(peak, open_descriptors() - baseline)
            return original(self, data)

        StagedPart.write = spy  # type: ignore[method-assign]
        try:
            parse(app, body, boundary, parts)
        finally:
            StagedPart.write = original  # type: ignore[method-assign]
        app.extensions["journal.engine"].dispose()
        return peak, elapsed


def main(argv: list[str]) -> None:
    """Print one line per request size."""
    for parts in [int(a) for a in argv] or [100, 300, 500]:
        peak, elapsed = measure(parts)
        print(
            f"{parts:5d} parts: at most {peak} descriptor(s) held by parts, parsed in {elapsed * 1000:.0f} ms"
        )


if __name__ == "__main__":
    main(sys.argv[1:])
