"""Uploads over HTTP: files staged by the web layer go through the importer, one result per file.

The web layer streams each uploaded file into the data home's staging folder; this module
checks it, hands it to the importer (the same pipeline as `journal import`) and turns the
importer's outcome into the three statuses the HTTP contract knows: imported, duplicate,
failed. Several uploads may run at once: the importer settles races on the content hash.
"""

from __future__ import annotations

import logging
import re
import unicodedata
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.utils import secure_filename

from journal import ids, storage
from journal.config import Settings
from journal.errors import InvalidInput, NotFound
from journal.models import Photo, Post, Trip
from journal.names import printable
from journal.services import editing, importing

logger = logging.getLogger(__name__)

Status = Literal["imported", "duplicate", "failed"]

MAX_CAPTION = editing.MAX_CAPTION_CHARS
MAX_TRIP_TITLE = 200
MAX_NAME = 1024
#: Most hashes one `check` call may ask about.
MAX_CHECK = 1000
#: Temp files of uploads in the staging folder start with this.
UPLOAD_PREFIX = storage.TEMP_PREFIX + "upload-"

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
#: RFC 7578 4.2 / RFC 5987: filename*=charset'language'percent-encoded-bytes
_EXT_FILENAME = re.compile(
    r"""(?:^|;)\s*filename\*\s*=\s*"?([\w!#$%&+^`{}~-]*)'[^']*'([^";\s]*)""", re.IGNORECASE
)
_SUFFIX = re.compile(r"\.[a-z0-9]{1,5}")

NOT_A_PHOTO = "not a photo: the journal takes JPEG, HEIC, PNG, WebP, AVIF and TIFF images"
NOT_STORED = "could not be stored this time (another upload got in the way): try again"
CHANGED_IN_TRANSIT = (
    "the file arrived changed (the connection or a proxy altered it); nothing was stored, try again"
)


@dataclass(frozen=True)
class Staged:
    """One received file: the name the client gave, where its bytes wait, and the hash the client computed."""

    name: str
    path: Path
    client_sha256: str | None = None


@dataclass(frozen=True)
class UploadOptions:
    """Where uploaded photos go: caption, trip title, one post for all, or an existing post to add to."""

    caption: str = ""
    trip: str | None = None
    one_post: bool = False
    post_id: int | None = None

    def __post_init__(self) -> None:
        if len(self.caption) > MAX_CAPTION:
            raise InvalidInput(f"the caption is longer than {MAX_CAPTION} characters")
        if self.trip is not None and not 0 < len(self.trip) <= MAX_TRIP_TITLE:
            raise InvalidInput(f"a trip title is 1-{MAX_TRIP_TITLE} characters")
        if self.post_id is not None and self.post_id <= 0:
            raise InvalidInput("post must be a post id")


@dataclass(frozen=True)
class UploadResult:
    """The outcome for one uploaded file, as the API reports it."""

    name: str
    status: Status
    photo_id: int | None = None
    post_id: int | None = None
    sha256: str | None = None
    error: str | None = None
    #: A failed upload that may well work when sent again (it was damaged on the way).
    retryable: bool = False
    #: For a GPX file: the recorded track, and what placing photos on it did.
    track_id: int | None = None
    note: str | None = None
    #: For a photo without a position of its own: where the tracks put it, or why they could not.
    position_source: str | None = None
    not_placed: str | None = None

    def as_dict(self) -> dict[str, object]:
        """The contract's JSON object: `id` only when stored, `error` only when failed."""
        optional = {
            "id": self.photo_id,
            "post": self.post_id,
            "sha256": self.sha256,
            "error": self.error,
            "retry": True if self.retryable else None,
            "track": self.track_id,
            "note": self.note,
            "position_source": self.position_source,
            "not_placed": self.not_placed,
        }
        return {"name": self.name, "status": self.status} | {
            k: v for k, v in optional.items() if v is not None
        }


def display_name(raw: str | None) -> str:
    """The client's file name kept as data: normalised, without control characters, capped.

    Bytes that are not UTF-8 (surrogate escapes) stay, escaped as `\\xff` (names.printable).
    """
    name = _CONTROL.sub("", printable(unicodedata.normalize("NFC", raw or ""))).strip()
    return name[-MAX_NAME:] or "unnamed file"


def client_name(filename: str | None, disposition: str | None) -> str | None:
    """The file name a multipart part gives, with percent-encoded bytes that are not UTF-8 kept.

    Werkzeug decodes `filename*=UTF-8''caf%FF.jpg` with replacement characters, which loses the
    bytes; they are read again from the header here, as a file name on disk would be.
    """
    match = _EXT_FILENAME.search(disposition or "")
    if not match:
        return filename
    charset, encoded = match.group(1).lower() or "utf-8", urllib.parse.unquote_to_bytes(match.group(2))
    if charset in ("utf-8", "utf8"):
        return encoded.decode("utf-8", "surrogateescape")
    try:
        return encoded.decode(charset, "replace")
    except LookupError:  # an unknown charset: keep the bytes the same way
        return encoded.decode("utf-8", "surrogateescape")


def staging_suffix(raw: str | None) -> str:
    """A harmless extension for a staged temp file (".jpg"), or "" when the name has none."""
    suffix = Path(secure_filename(raw or "")).suffix.lower()
    return suffix if _SUFFIX.fullmatch(suffix) else ""


def parse_sha256(value: str | None) -> str | None:
    """A client-supplied SHA-256 (any case) as lowercase hex, None when empty; InvalidInput when malformed."""
    if not value:
        return None
    return storage.check_sha256(value.strip().lower())


def parse_options(
    *, caption: str | None, trip: str | None, mode: str | None, post: str | None
) -> UploadOptions:
    """Options from form fields: `mode` "one" means one post for all files; `post` an existing post id."""
    if mode not in (None, "", "each", "one"):
        raise InvalidInput("mode is 'each' (one post per photo) or 'one' (one post for all)")
    post_id = ids.parse_id(post, "post")
    return UploadOptions(
        caption=editing.clean_caption(caption or ""),  # the same cleaning as editing a caption
        trip=(trip or "").strip() or None,
        one_post=mode == "one" or post_id is not None,
        post_id=post_id,
    )


def trip_titles(session: Session, user_id: int) -> list[str]:
    """The user's trip titles, newest first (offered on the upload form)."""
    query = select(Trip.title).where(Trip.user_id == user_id).order_by(Trip.created_at.desc(), Trip.id.desc())
    return list(session.scalars(query))


def known_photos(session: Session, user_id: int, hashes: Sequence[object]) -> dict[str, int]:
    """Which of these content hashes the user's journal holds already: hash -> photo id."""
    if len(hashes) > MAX_CHECK:
        raise InvalidInput(f"ask about at most {MAX_CHECK} hashes at a time")
    if not all(isinstance(value, str) for value in hashes):
        raise InvalidInput("sha256 must be a list of SHA-256 hex digests")
    wanted = sorted({storage.check_sha256(str(value).strip().lower()) for value in hashes})
    known: dict[str, int] = {}
    for start in range(0, len(wanted), 500):  # stays under SQLite's bound-parameter limit
        chunk = wanted[start : start + 500]
        query = select(Photo.sha256, Photo.id).where(Photo.user_id == user_id, Photo.sha256.in_(chunk))
        known.update({sha: photo_id for sha, photo_id in session.execute(query)})
    return known


def run_import_staged(
    settings: Settings,
    factory: sessionmaker[Session],
    user_id: int,
    files: Sequence[Staged],
    options: UploadOptions,
) -> list[UploadResult]:
    """Import staged files for a user, in order; one bad file never stops the others.

    A job: each file is committed on its own (see importing.run_import).
    """
    if not files:
        raise InvalidInput("no file in the request: send one or more `file` parts")
    if options.post_id is not None:
        with factory() as session:
            check_post(session, user_id, options.post_id)
    trip_id = importing.run_ensure_trip(factory, user_id, options.trip) if options.trip else None
    # The web server runs uploads in parallel requests already: no process pool per request.
    single = settings.with_(workers=1)
    target = importing.ImportOptions(
        user_id=user_id,
        trip_title=options.trip,
        trip_id=trip_id,
        caption=options.caption,
        one_post=options.one_post,
        post_id=options.post_id,
    )
    results: list[UploadResult] = []
    for staged in files:
        try:
            result = _import_one(single, factory, target, staged)
        except Exception as exc:  # one file's bug answers "failed" for it; the other files go on
            logger.exception("unexpected failure uploading %r", staged.name)
            result = UploadResult(staged.name, "failed", error=importing.internal_error(exc))
        if target.one_post and target.post_id is None and result.status == "imported":
            target = replace(target, post_id=result.post_id)
        results.append(result)
    return results


def check_post(session: Session, user_id: int, post_id: int) -> Post:
    """The user's post with that id; NotFound for a missing post or another user's."""
    post = session.get(Post, post_id)
    if post is None or post.user_id != user_id:
        raise NotFound(f"no post {post_id} in your journal")
    return post


def _import_one(
    settings: Settings, factory: sessionmaker[Session], options: importing.ImportOptions, staged: Staged
) -> UploadResult:
    if staged.client_sha256 and storage.sha256_file(staged.path) != staged.client_sha256:
        logger.warning("upload %r does not match the hash its client computed", staged.name)
        return UploadResult(staged.name, "failed", error=CHANGED_IN_TRANSIT, retryable=True)
    candidate = importing.Candidate(staged.path, staged.name, importing.sniff(staged.path))
    outcome = importing.run_import(settings, factory, options, [candidate]).results[0]
    if candidate.kind == "track" and outcome.status in ("imported", "duplicate"):
        return UploadResult(
            staged.name, outcome.status, sha256=outcome.sha256, track_id=outcome.track_id, note=outcome.note
        )
    if outcome.status == "skipped":
        error = (outcome.error or NOT_A_PHOTO) if candidate.kind == "track" else NOT_A_PHOTO
        return UploadResult(staged.name, "failed", sha256=outcome.sha256, error=error)
    if outcome.status == "failed":
        return UploadResult(
            staged.name, "failed", sha256=outcome.sha256, error=outcome.error or "unreadable file"
        )
    with factory() as session:
        row = session.execute(
            select(Photo.id, Photo.post_id).where(
                Photo.user_id == options.user_id, Photo.sha256 == outcome.sha256
            )
        ).first()
    if row is None:
        # The importer answered imported/duplicate but no row exists: it took another constraint
        # error for a duplicate. Nothing is stored, so say so and let the client send it again.
        logger.error("no photo row for %s after import of %r", outcome.sha256, staged.name)
        return UploadResult(staged.name, "failed", error=NOT_STORED, retryable=True)
    return UploadResult(
        staged.name,
        outcome.status,
        photo_id=row.id,
        post_id=row.post_id,
        sha256=outcome.sha256,
        position_source=outcome.position_source,
        not_placed=outcome.not_placed,
    )
