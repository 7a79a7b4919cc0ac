"""The byte-stream pieces of the bundle writer: hashing tee and background pipeline stage."""

from __future__ import annotations

import hashlib
import mmap
import os
import threading
from pathlib import Path

import pytest

from journal.publish.streams import BackgroundSink, HashingSink, WritebackSink


class Collect:
    """A sink that keeps what it is given (the very objects), optionally failing at one write."""

    def __init__(self, fail_at: int | None = None) -> None:
        self.pieces: list[bytes | memoryview] = []
        self.fail_at = fail_at
        self.threads: set[str] = set()

    def write(self, data: bytes | memoryview) -> int:
        self.threads.add(threading.current_thread().name)
        if len(self.pieces) == self.fail_at:
            raise OSError("No space left on device")
        self.pieces.append(data)
        return len(data)

    def joined(self) -> bytes:
        return b"".join(bytes(piece) for piece in self.pieces)


def test_hashing_sink_forwards_counts_and_hashes() -> None:
    target = Collect()
    tee = HashingSink(target)
    tee.write(b"hello ")
    tee.write(memoryview(b"world"))
    assert target.joined() == b"hello world"
    assert tee.count == 11
    assert tee.hexdigest() == hashlib.sha256(b"hello world").hexdigest()


def test_background_sink_keeps_order_on_its_own_thread() -> None:
    target = Collect()
    with BackgroundSink(target, depth=2, name="test-stage") as sink:
        for i in range(50):
            sink.write(bytes([i]) * 1000)
    assert target.joined() == b"".join(bytes([i]) * 1000 for i in range(50))
    assert target.threads == {"test-stage"}


def test_background_sink_copies_writable_buffers_only(tmp_path: Path) -> None:
    target = Collect()
    buffer = bytearray(b"abc")
    path = tmp_path / "f.bin"
    path.write_bytes(b"mapped bytes")
    with path.open("rb") as handle:
        view = memoryview(mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ))
    fixed = b"fixed"
    with BackgroundSink(target) as sink:
        sink.write(memoryview(buffer))
        buffer[:] = b"XYZ"  # the caller reuses its buffer: what was queued must not change
        sink.write(view[:6])
        sink.write(fixed)
    assert target.joined() == b"abcmappedfixed"
    assert target.pieces[2] is fixed  # immutable pieces go through without a copy
    assert isinstance(target.pieces[1], memoryview)  # a read-only view of a mapped file too


def test_background_sink_raises_the_threads_error_and_keeps_draining() -> None:
    failing = Collect(fail_at=3)
    with pytest.raises(OSError, match="No space left"):
        with BackgroundSink(failing, depth=2) as sink:
            for _ in range(50):  # never blocks on the full queue after the failure
                sink.write(b"x" * 1000)
    assert len(failing.pieces) == 3


def test_background_sink_lets_the_bodys_error_win_and_refuses_writes_after_close() -> None:
    failing = Collect(fail_at=0)
    with pytest.raises(KeyError):
        with BackgroundSink(failing) as sink:
            sink.write(b"x")
            raise KeyError("the producer's own error")
    sink = BackgroundSink(Collect())
    sink.close()
    with pytest.raises(ValueError, match="closed"):
        sink.write(b"late")


def test_writeback_sink_starts_writeback_of_each_step_it_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[int, int, int]] = []
    real = os.posix_fadvise

    def advise(fd: int, offset: int, length: int, advice: int) -> None:
        calls.append((offset, length, advice))
        real(fd, offset, length, advice)  # the real call must accept what we give it

    monkeypatch.setattr(os, "posix_fadvise", advise)
    path = tmp_path / "out.bin"
    with path.open("wb") as handle:
        sink = WritebackSink(handle, step=100)
        for i in range(7):
            sink.write(bytes([i]) * 60)
    assert path.read_bytes() == b"".join(bytes([i]) * 60 for i in range(7))
    assert calls == [
        (0, 120, os.POSIX_FADV_DONTNEED),
        (120, 120, os.POSIX_FADV_DONTNEED),
        (240, 120, os.POSIX_FADV_DONTNEED),
    ]


def test_writeback_sink_only_writes_where_the_advice_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = []

    def refuse(*args: int) -> None:
        calls.append(args)
        raise OSError(95, "Operation not supported")

    monkeypatch.setattr(os, "posix_fadvise", refuse)
    path = tmp_path / "out.bin"
    with path.open("wb") as handle:
        sink = WritebackSink(handle, step=10)
        for _ in range(5):
            sink.write(b"x" * 10)
    assert path.read_bytes() == b"x" * 50 and len(calls) == 1  # asked once, then not again
