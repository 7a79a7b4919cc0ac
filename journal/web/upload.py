"""The upload page, and how uploaded files reach the staging folder.

The page's JavaScript (static/js/upload.js) hashes each file, asks /api/photos/check which
contents are known, and sends the rest one file per request to POST /api/photos. Without
JavaScript the same form posts here and the results are listed on the page.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, cast

from flask import Blueprint, Request, current_app, render_template, request, url_for
from flask_login import current_user
from werkzeug.datastructures import FileStorage
from werkzeug.exceptions import BadRequest, RequestEntityTooLarge
from werkzeug.formparser import FormDataParser

from journal.services import uploads
from journal.web.context import get_db, get_settings, session_factory

logger = logging.getLogger(__name__)

bp = Blueprint("upload", __name__)

#: What the file picker offers; content decides in the end (phones need the HEIC hint).
ACCEPT = "image/*,.heic,.heif,.gpx"
UNREADABLE_HEADER = (
    "a part of the form has a header (such as its file name) that is not UTF-8: send the name as"
    " UTF-8, or percent-encoded as filename*=UTF-8''caf%FF.jpg (its bytes are kept)"
)


class TooManyFiles(RequestEntityTooLarge):
    """More file parts in one request than the settings allow (413)."""


class StagedPart(io.RawIOBase):
    """One uploaded file part in a staging file that holds a descriptor only while in use.

    Werkzeug keeps every part's stream until the request ends; one open temp file per part ran
    a request of 300 one-byte parts out of descriptors (EMFILE, a 500). This stream writes its
    part, lets go of the descriptor when werkzeug rewinds it at the end of the part, reopens the
    file when read, and removes it when closed.
    """

    def __init__(self, staging: Path, suffix: str) -> None:
        super().__init__()
        fd, name = tempfile.mkstemp(dir=staging, prefix=uploads.UPLOAD_PREFIX, suffix=suffix)
        self.name = name
        self._handle: io.BufferedIOBase | None = os.fdopen(fd, "wb")
        self._writing = True
        self._position = 0

    @property
    def is_open(self) -> bool:
        """True while the part holds a file descriptor."""
        return self._handle is not None

    def readable(self) -> bool:
        """Readable once written."""
        return True

    def writable(self) -> bool:
        """Writable until the part is complete."""
        return self._writing

    def seekable(self) -> bool:
        """Seekable (werkzeug rewinds each part)."""
        return True

    def write(self, data: Any) -> int:
        """Append the part's next bytes."""
        if not self._writing or self._handle is None:
            raise io.UnsupportedOperation("this upload part is complete")
        return self._handle.write(data)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        """Move the read position; the first seek ends writing and frees the descriptor."""
        self._finish_writing()
        if self._handle is not None:
            self._position = self._handle.seek(offset, whence)
        elif whence == io.SEEK_SET:
            self._position = offset
        elif whence == io.SEEK_CUR:
            self._position += offset
        else:
            self._position = os.path.getsize(self.name) + offset
        return self._position

    def tell(self) -> int:
        """The read position."""
        return self._handle.tell() if self._handle is not None else self._position

    def readinto(self, buffer: Any) -> int:
        """Read from the staged file, opening it on first use."""
        self._finish_writing()
        if self._handle is None:
            self._handle = open(self.name, "rb")  # closed by close()
            self._handle.seek(self._position)
        return self._handle.readinto(buffer)

    def flush(self) -> None:
        """Flush what was written so far."""
        if self._writing and self._handle is not None:
            self._handle.flush()

    def close(self) -> None:
        """Close the file and remove it."""
        if not self.closed:
            handle, self._handle, self._writing = self._handle, None, False
            if handle is not None:
                handle.close()
            Path(self.name).unlink(missing_ok=True)
        super().close()

    def _finish_writing(self) -> None:
        if self._writing:
            self._writing = False
            if self._handle is not None:
                self._handle.close()
                self._handle = None


class StagingRequest(Request):
    """A request whose uploaded files are spooled to staging files, at most so many per request.

    Werkzeug would spool them to the system temp folder; staging lives on the same file
    system as uploads/, and the importer reads the file by path. Each part keeps a descriptor
    only while it is written or read (StagedPart), and every part is removed when the request
    is closed, which Flask does at its end (also when parsing stopped half-way).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.staged_parts: list[StagedPart] = []

    def _get_file_stream(
        self,
        total_content_length: int | None,
        content_type: str | None,
        filename: str | None = None,
        content_length: int | None = None,
    ) -> IO[bytes]:
        settings = get_settings()
        if len(self.staged_parts) >= settings.max_upload_files:
            raise TooManyFiles(
                f"That request has too many files: send at most {settings.max_upload_files} per request."
            )
        settings.staging_dir.mkdir(parents=True, exist_ok=True)
        part = StagedPart(settings.staging_dir, uploads.staging_suffix(filename))
        self.staged_parts.append(part)
        return cast(IO[bytes], part)

    def close(self) -> None:
        """Close the uploaded files and remove every staged part."""
        try:
            super().close()
        finally:
            for part in self.staged_parts:
                part.close()

    def make_form_data_parser(self) -> FormDataParser:
        """Werkzeug's parser, but one that says when a body cannot be read instead of dropping it."""
        parser = super().make_form_data_parser()
        parser.silent = False
        return parser

    def _load_form_data(self) -> None:
        try:
            super()._load_form_data()
        except UnicodeDecodeError as exc:
            # Werkzeug reads part headers as UTF-8 only: a raw byte such as 0xff in a file name
            # would otherwise lose the whole form without a word.
            raise BadRequest(UNREADABLE_HEADER) from exc
        except ValueError as exc:
            raise BadRequest(f"the form could not be read: {exc}") from exc


@contextlib.contextmanager
def staged_files(parts: list[FileStorage], hashes: list[str]) -> Iterator[list[uploads.Staged]]:
    """The request's `file` parts as staged files on disk; the temp files are gone afterwards.

    `hashes` are the client's SHA-256 of each part, in order (optional; ignored unless one per part).
    """
    parts = [part for part in parts if part.filename]  # a form with no file chosen sends an empty part
    claimed = [uploads.parse_sha256(h) for h in hashes] if len(hashes) == len(parts) else [None] * len(parts)
    extra: list[IO[bytes]] = []
    try:
        staged = []
        for part, sha in zip(parts, claimed, strict=True):
            path = _staged_path(part, extra)
            name = uploads.client_name(part.filename, part.headers.get("Content-Disposition"))
            staged.append(uploads.Staged(uploads.display_name(name), path, sha))
        yield staged
    finally:
        for handle in [part.stream for part in parts] + extra:
            handle.close()


def _staged_path(part: FileStorage, extra: list[IO[bytes]]) -> Path:
    staging = get_settings().staging_dir
    stream = part.stream
    name = getattr(stream, "name", None)
    if isinstance(name, str) and Path(name).parent.resolve() == staging.resolve():
        stream.flush()
        return Path(name)
    # Not spooled by StagingRequest (another request class): copy it into staging.
    staging.mkdir(parents=True, exist_ok=True)
    copy = tempfile.NamedTemporaryFile(dir=staging, prefix=uploads.UPLOAD_PREFIX)
    extra.append(copy)
    part.save(copy)
    copy.flush()
    return Path(copy.name)


def import_request_files() -> list[uploads.UploadResult]:
    """Import the current request's `file` parts with its form options (shared with the API)."""
    form = request.form
    options = uploads.parse_options(
        caption=form.get("caption"), trip=form.get("trip"), mode=form.get("mode"), post=form.get("post")
    )
    with staged_files(request.files.getlist("file"), form.getlist("sha256")) as files:
        return uploads.run_import_staged(get_settings(), session_factory(), current_user.id, files, options)


@bp.route("/upload", methods=["GET", "POST"])
def index() -> Any:
    """Upload photos: many at once, with progress, retries and per-file results (POST: the no-script form)."""
    results = import_request_files() if request.method == "POST" else None
    return render_template(
        "upload/index.html",
        trips=uploads.trip_titles(get_db(), current_user.id),
        max_upload_bytes=get_settings().max_upload_bytes,
        accept=ACCEPT,
        results=results,
        library_url=url_for("library.index") if "library.index" in current_app.view_functions else None,
    )
