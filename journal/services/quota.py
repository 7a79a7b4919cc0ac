"""Storage per account: what its originals, renditions and bundles take, against JOURNAL_QUOTA_MB.

The quota (off by default) applies to every account, the owner's too: it guards the disk against
a careless import as much as against a hostile account. It is checked before an import, upload
or export writes: a file that would not fit is refused with a message saying so. Renditions are
made with their photo and counted once they exist, so one import may end above the quota by the
renditions of the photos in flight (a few hundred kB each).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from journal import storage
from journal.config import Settings
from journal.errors import QuotaExceeded
from journal.models import Export, Photo, Track

logger = logging.getLogger(__name__)

MB = 1_000_000


@dataclass(frozen=True)
class Usage:
    """Bytes an account uses, by kind, and its quota (0: none)."""

    originals: int
    renditions: int
    bundles: int
    quota: int = 0

    @property
    def total(self) -> int:
        """Everything the account takes on disk."""
        return self.originals + self.renditions + self.bundles

    @property
    def room(self) -> int | None:
        """Bytes left under the quota (never negative), None without a quota."""
        return None if not self.quota else max(0, self.quota - self.total)

    def fits(self, incoming: int) -> bool:
        """Whether `incoming` more bytes stay within the quota."""
        return not self.quota or self.total + incoming <= self.quota

    def text(self) -> str:
        """For pages: "1.5 MB of 5 MB used", or "1.5 MB used" without a quota."""
        used = f"{self.total / MB:.1f} MB"
        return f"{used} of {_mb(self.quota)} MB used" if self.quota else f"{used} used"

    def message(self) -> str:
        """The one-line refusal shown when the quota is reached."""
        used = f"{self.total / MB:.1f} MB used"
        return f"quota of {_mb(self.quota)} MB reached ({used}): delete bundles or photos"

    def refuse(self) -> QuotaExceeded:
        """The error to raise when something does not fit."""
        return QuotaExceeded(self.message())

    def plus(self, *, originals: int = 0, renditions: int = 0, bundles: int = 0) -> Usage:
        """The usage after writing more."""
        return Usage(
            self.originals + originals, self.renditions + renditions, self.bundles + bundles, self.quota
        )


def _mb(size: int) -> str:
    """A quota in MB as the owner wrote it: "5", "0.25", "20000" (never "2e+04")."""
    return f"{size / MB:f}".rstrip("0").rstrip(".")


def usage(session: Session, settings: Settings, user_id: int) -> Usage:
    """What the account uses now: originals and tracks (rows), renditions and bundles (files on disk)."""
    photos = session.scalar(select(func.coalesce(func.sum(Photo.bytes), 0)).where(Photo.user_id == user_id))
    tracks = session.scalar(select(func.coalesce(func.sum(Track.bytes), 0)).where(Track.user_id == user_id))
    bundles = sum(
        size
        for path, size in session.execute(select(Export.path, Export.bytes).where(Export.user_id == user_id))
        if Path(path).is_file()
    )
    renditions = sum(_file_sizes(settings.uploads_dir, user_id))
    return Usage(int(photos or 0) + int(tracks or 0), renditions, bundles, settings.quota_bytes)


def rendition_bytes(settings: Settings, user_id: int, sha256: str) -> int:
    """The size of a photo's renditions on disk (0 for ones missing)."""
    total = 0
    for kind in storage.RENDITIONS:
        try:
            total += (settings.uploads_dir / storage.rendition_relpath(user_id, sha256, kind)).stat().st_size
        except FileNotFoundError:
            continue
    return total


def _file_sizes(root: Path, user_id: int) -> Iterator[int]:
    """Sizes of the account's rendition files (uploads/<kind>/<user id>/xx/...), by a directory scan."""
    for kind in storage.RENDITIONS:
        folder = root / kind / str(int(user_id))
        if not folder.is_dir():
            continue
        for sub in os.scandir(folder):
            if sub.is_dir(follow_symlinks=False):
                for entry in os.scandir(sub.path):
                    if entry.is_file(follow_symlinks=False):
                        yield entry.stat(follow_symlinks=False).st_size
