"""Batch planning under a size limit, and the zip / e-mail size estimates it relies on."""

from __future__ import annotations

import io
import random
import zipfile

import pytest

from journal.publish.batching import (
    base64_bytes,
    eml_size,
    estimate_zip_bytes,
    plan_batches,
    zip_entry_overhead,
)
from journal.publish.mail import build_eml


def _identity(size: int) -> int:
    return size


def test_examples() -> None:
    assert plan_batches([], _identity, 10) == []
    assert plan_batches([3, 3, 3], _identity, None) == [[3, 3, 3]]
    assert plan_batches([3, 3, 3], _identity, 6) == [[3, 3], [3]]
    assert plan_batches([3, 20, 3], _identity, 10) == [[3], [20], [3]]
    assert plan_batches([10, 10], _identity, 10) == [[10], [10]]
    assert plan_batches([2, 2, 2], _identity, 10, fixed_bytes=5) == [[2, 2], [2]]


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        plan_batches([1], _identity, 0)
    with pytest.raises(ValueError):
        plan_batches([-1], _identity, 10)


def _check_plan(sizes: list[int], limit: int | None, fixed: int, batches: list[list[int]]) -> None:
    """The invariants: order kept, nothing split or lost, each batch under the limit or a lone big post."""
    assert [s for batch in batches for s in batch] == sizes
    assert all(batch for batch in batches)
    if limit is None:
        assert len(batches) == (1 if sizes else 0)
        return
    for index, batch in enumerate(batches):
        total = fixed + sum(batch)
        assert total <= limit or len(batch) == 1
        # Greedy: the next batch's first post did not fit in this one.
        if index + 1 < len(batches):
            assert total + batches[index + 1][0] > limit


@pytest.mark.parametrize("seed", range(40))
def test_random_sizes(seed: int) -> None:
    rng = random.Random(seed)
    limit = rng.choice([None, 1, 1_000, 25_000_000, rng.randint(1, 10**9)])
    fixed = rng.choice([0, 0, 500, 2_000])
    scale = rng.choice([10, 1_000, 10_000_000, 10**10])
    sizes = [rng.randint(0, scale) for _ in range(rng.randint(0, 200))]
    batches = plan_batches(sizes, _identity, limit, fixed_bytes=fixed)
    _check_plan(sizes, limit, fixed, batches)


def test_size_of_is_used_with_objects() -> None:
    posts = [{"id": i, "files": [100] * (i % 4)} for i in range(20)]

    def size_of(post: dict[str, object]) -> int:
        files = post["files"]
        assert isinstance(files, list)
        return sum(files)

    batches = plan_batches(posts, size_of, 450)
    assert [p["id"] for batch in batches for p in batch] == list(range(20))
    assert all(sum(size_of(p) for p in batch) <= 450 for batch in batches)


# --- estimates against real output ---


def _real_zip_size(entries: list[tuple[str, int]], *, seekable: bool) -> int:
    """Size of a zip written like the bundle writer does (stored entries, streamed)."""

    class Unseekable:
        def __init__(self) -> None:
            self.buffer = io.BytesIO()

        def write(self, data: bytes) -> int:
            return self.buffer.write(data)

        def flush(self) -> None:
            pass

    target: io.BytesIO | Unseekable = io.BytesIO() if seekable else Unseekable()
    with zipfile.ZipFile(target, "w") as archive:  # type: ignore[call-overload]
        for name, size in entries:
            with archive.open(zipfile.ZipInfo(name), "w") as entry:
                entry.write(b"\0" * size)
    buffer = target if isinstance(target, io.BytesIO) else target.buffer
    return len(buffer.getvalue())


@pytest.mark.parametrize("seekable", [True, False])
def test_zip_estimate_is_an_upper_bound(seekable: bool) -> None:
    rng = random.Random(3)
    entries = [(f"photos/{i}-{j}.jpg", rng.randint(0, 5_000)) for i in range(30) for j in range(1, 4)]
    real = _real_zip_size(entries, seekable=seekable)
    estimate = estimate_zip_bytes(entries)
    assert real <= estimate <= real + len(entries) * 80 + 200


def test_entry_overhead_counts_the_name_twice() -> None:
    assert zip_entry_overhead("a" * 10) - zip_entry_overhead("a") == 18
    assert zip_entry_overhead("é") - zip_entry_overhead("e") == 2  # UTF-8 bytes, not characters


def test_base64_size() -> None:
    import base64

    for size in (0, 1, 2, 3, 56, 57, 58, 1000, 123_457):
        encoded = base64.encodebytes(b"\0" * size).replace(b"\n", b"\r\n")
        assert base64_bytes(size) == len(encoded)


@pytest.mark.parametrize(
    ("body", "sizes", "name"),
    [
        ("Short caption", [10_000], "1-1.jpg"),
        ("Café à Montréal ✈️ " * 300, [1, 2, 3, 250_000], "photo-été.jpg"),
        ("\n" * 500, [], "x.jpg"),
        ("a" * 5_000, [0], "long-name-" * 10 + ".jpg"),
    ],
)
def test_eml_size_is_an_upper_bound(body: str, sizes: list[int], name: str) -> None:
    rng = random.Random(len(body))
    attachments = [(name, rng.randbytes(size), "image/jpeg") for size in sizes]
    message = build_eml(
        subject="Trip " * 30,
        body_text=body,
        attachments=attachments,
        to="Friend <friend@example.org>",
        sender="Me <me@example.org>",
        message_id="<abc@journal.invalid>",
    )
    estimate = eml_size(sizes, len(body.encode("utf-8")), names=[name] * len(sizes))
    assert len(message) <= estimate
    assert estimate - len(message) < 4_000 + 2 * len(body.encode("utf-8"))
