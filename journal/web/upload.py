"""The upload page, and how uploaded files reach the staging folder.

The page's JavaScript (static/js/upload.js) hashes each file, asks /api/photos/check which
contents are known, and sends the rest one file per request to POST /api/photos. Without
JavaScript the same form posts here and the results are listed on the page.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from flask import Blueprint, Flask, Request, current_app, render_template, request, url_for
from flask.blueprints import BlueprintSetupState
from flask_login import current_user
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.datastructures import FileStorage
from werkzeug.exceptions import BadRequest
from werkzeug.formparser import FormDataParser

from journal.app import get_db, get_settings
from journal.services import uploads

logger = logging.getLogger(__name__)

bp = Blueprint("upload", __name__)

#: What the file picker offers; content decides in the end (phones need the HEIC hint).
ACCEPT = "image/*,.heic,.heif,.gpx"
UNREADABLE_HEADER = (
    "a part of the form has a header (such as its file name) that is not UTF-8: send the name as"
    " UTF-8, or percent-encoded as filename*=UTF-8''caf%FF.jpg (its bytes are kept)"
)


class StagingRequest(Request):
    """A request whose uploaded files are spooled to named temp files in the staging folder.

    Werkzeug would spool them to the system temp folder; staging lives on the same file
    system as uploads/, and the importer reads the file by path. The temp file is removed
    when it is closed, which Flask does at the end of the request.
    """

    def _get_file_stream(
        self,
        total_content_length: int | None,
        content_type: str | None,
        filename: str | None = None,
        content_length: int | None = None,
    ) -> IO[bytes]:
        staging = get_settings().staging_dir
        staging.mkdir(parents=True, exist_ok=True)
        suffix = uploads.staging_suffix(filename)
        return tempfile.NamedTemporaryFile(dir=staging, prefix=uploads.UPLOAD_PREFIX, suffix=suffix)

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


@bp.record_once
def _use_staging_requests(state: BlueprintSetupState) -> None:
    # Files must be spooled to staging before the CSRF check parses the form, so this is app-wide.
    app = state.app
    assert isinstance(app, Flask)
    if not issubclass(app.request_class, StagingRequest):
        app.request_class = StagingRequest


def session_factory() -> sessionmaker[Session]:
    """The app's session factory (the importer opens one short transaction per photo)."""
    factory: sessionmaker[Session] = current_app.extensions["journal.sessions"]
    return factory


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
        return uploads.import_staged(get_settings(), session_factory(), current_user.id, files, options)


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
