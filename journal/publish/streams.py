"""Byte streams for writing bundles: a sink protocol, a hashing tee, and a pipeline stage on a thread.

An `original` export pushes every byte of every photo through SHA-256 (the manifest's per-file
hash), CRC-32 (the zip entry), SHA-256 again (the whole zip's hash) and write(). All of that is C
code that releases the GIL, so giving each step its own thread lets two cores share the work:
with the JPEG scrubber on the main thread, the entry's hash and CRC on one BackgroundSink and the
zip's hash and the file write on another, 1 GB of photos took 1.4 s instead of 2.3 s with one
writer thread (bench/export.py measures the whole export).
"""

from __future__ import annotations

import hashlib
import mmap
import os
import queue
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO, Protocol

from journal.storage import CHUNK


class ByteSink(Protocol):
    """Anything with a binary write(): a file, a zip entry, a hashing wrapper."""

    def write(self, data: bytes | memoryview, /) -> object:
        """Write all of data."""


def map_file(handle: BinaryIO) -> memoryview | None:
    """The whole file mapped read-only, or None when it cannot be (empty, not a regular file).

    Reading through the map copies nothing: slices are views the pipeline passes along, and the
    map stays until the last of them is written. The file must not be truncated meanwhile
    (SIGBUS): the files exported (stored originals, an export's own work files, packaged
    assets) never are.
    """
    try:
        return memoryview(mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ))
    except (OSError, ValueError):
        return None


def file_pieces(path: Path) -> Iterator[bytes | memoryview]:
    """A file's bytes in pieces of at most CHUNK: views of the mapped file, else chunks read."""
    with path.open("rb") as handle:
        view = map_file(handle)
        if view is None:
            while chunk := handle.read(CHUNK):
                yield chunk
            return
    for at in range(0, len(view), CHUNK):
        yield view[at : at + CHUNK]


class HashingSink:
    """A write-only, non-seekable stream that hashes and counts what passes through to `target`."""

    def __init__(self, target: ByteSink) -> None:
        self._target = target
        self._digest = hashlib.sha256()
        self.count = 0

    def write(self, data: bytes | memoryview) -> int:
        """Hash, count and forward data."""
        self._digest.update(data)
        self._target.write(data)
        self.count += len(data)
        return len(data)

    def flush(self) -> None:
        """Nothing buffered here (zipfile calls it on close)."""

    def hexdigest(self) -> str:
        """SHA-256 of everything written so far."""
        return self._digest.hexdigest()


class WritebackSink:
    """Writes to a file and has the kernel start writing every `step` bytes to disk as it goes.

    atomic_write ends with an fsync. Without this the kernel writes most of a big bundle out only
    then (0.37 s for 1 GB here); started early, the final fsync finds it nearly done (0.01 s), and
    the bundle's pages can leave the page cache instead of pushing the user's files out of it.
    The file must be new (offset 0 at the start). Where posix_fadvise is missing, it only writes.
    """

    def __init__(self, handle: BinaryIO, *, step: int = 32 << 20) -> None:
        self._handle = handle
        self._step = step
        self._written = 0
        self._advised = 0
        self._advise = getattr(os, "posix_fadvise", None)

    def write(self, data: bytes | memoryview) -> int:
        """Write data; after each `step` bytes, start writing back what was written since."""
        self._handle.write(data)
        self._written += len(data)
        if self._advise is not None and self._written - self._advised >= self._step:
            self._handle.flush()
            try:
                self._advise(
                    self._handle.fileno(),
                    self._advised,
                    self._written - self._advised,
                    os.POSIX_FADV_DONTNEED,
                )
            except OSError:  # a file system without it: nothing lost but the head start
                self._advise = None
            self._advised = self._written
        return len(data)


class BackgroundSink:
    """A pipeline stage: write() queues data for a thread that writes it on to `target`, in order.

    call(fn) queues a function the thread runs between the writes before and after it (to open
    and close a zip entry there, say). At most `depth` pieces wait, so memory stays flat; 16
    pieces of 1 MB kept the bundle writer's threads busier than 8 (the last stage should rarely
    find its queue empty). Pieces that cannot change (bytes, read-only views such as a mapped
    file's) are not copied; writable buffers are, so the caller may reuse them. An error in the
    thread is raised by the next write() or by close(); after an error the thread keeps draining
    without writing, so a producer never blocks on a full queue.
    """

    def __init__(self, target: ByteSink, *, depth: int = 16, name: str = "sink-writer") -> None:
        self._target = target
        self._pieces: queue.Queue[bytes | memoryview | Callable[[], object] | None] = queue.Queue(
            maxsize=depth
        )
        self._error: BaseException | None = None
        self._closed = False
        self._thread = threading.Thread(target=self._drain, name=name, daemon=True)
        self._thread.start()

    def write(self, data: bytes | memoryview) -> int:
        """Queue data (waits while the queue is full); raises the thread's error, if any."""
        if isinstance(data, memoryview):
            piece: bytes | memoryview = data if data.readonly else data.tobytes()
        else:
            piece = data if type(data) is bytes else bytes(data)
        self._put(piece)
        return len(piece)

    def call(self, function: Callable[[], object]) -> None:
        """Queue a call for the thread, in order with the writes; its error is raised like a write's."""
        self._put(function)

    def _put(self, item: bytes | memoryview | Callable[[], object]) -> None:
        if self._error is not None:
            raise self._error
        if self._closed:
            raise ValueError("write to a closed BackgroundSink")
        self._pieces.put(item)

    def flush(self) -> None:
        """Nothing to do: close() waits for everything queued (zipfile calls flush on close)."""

    def _drain(self) -> None:
        """The thread: write pieces (and run calls) in order; after an error, keep draining only."""
        while (item := self._pieces.get()) is not None:
            if self._error is None:
                try:
                    if callable(item):
                        item()
                    else:
                        self._target.write(item)
                except BaseException as exc:  # handed to the producer, which re-raises it
                    self._error = exc

    def close(self) -> None:
        """Wait until everything queued is written; raise the thread's error."""
        if not self._closed:
            self._closed = True
            self._pieces.put(None)
            self._thread.join()
        if self._error is not None:
            raise self._error

    def __enter__(self) -> BackgroundSink:
        return self

    def __exit__(self, *exc_info: object) -> None:
        """close(); when the body failed, its error wins over the thread's."""
        try:
            self.close()
        except BaseException:
            if exc_info[0] is None:
                raise
