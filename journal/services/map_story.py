"""The story beside a map, day by day, and the photos without a position, both in pages.

The story comes in chunks of about `STORY_CHUNK` photos cut at day boundaries, walked with keyset
pagination on (sort_at, id) in time order (photos with no time last), so no query scans the library.

Story order: by `Photo.sort_at` (UTC time when known, else the camera's local time), oldest first.
A post appears once, where its earliest photo is, with all its photos; days are the local dates the
camera recorded. Services flush, never commit.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, TypeVar

from sqlalchemy import Select, func, select, tuple_
from sqlalchemy.orm import Session

from journal.errors import NotFound
from journal.models import Photo, Post
from journal.services.library import SortKey
from journal.services.mapscope import Scope, in_scope

logger = logging.getLogger(__name__)

#: Photos per story chunk (a chunk runs on to the end of its last day, up to STORY_CHUNK_MAX).
STORY_CHUNK = 60
STORY_CHUNK_MAX = 300
#: Thumbnails shown per post in the story (the rest as "+N").
ENTRY_THUMBS = 9
#: Place names listed per day.
DAY_PLACES = 5
#: Photos without a position listed per request.
UNLOCATED_PAGE = 24

_S = TypeVar("_S", bound="Select[*tuple[Any, ...]]")


@dataclass(frozen=True)
class StoryPhoto:
    """One photo in the story."""

    id: int
    sha256: str
    web_width: int
    web_height: int
    taken_at: datetime | None
    place: str | None
    lat: float | None
    lon: float | None
    source: str | None

    @property
    def located(self) -> bool:
        """True when the photo has a position (is on the map)."""
        return self.lat is not None and self.lon is not None


@dataclass(frozen=True)
class StoryEntry:
    """A post in the story: its caption and photos (in the post's order), at its earliest photo."""

    post_id: int | None
    caption: str
    photos: tuple[StoryPhoto, ...]
    lead: StoryPhoto
    day: date | None

    @property
    def shown(self) -> tuple[StoryPhoto, ...]:
        """The photos given a thumbnail."""
        return self.photos[:ENTRY_THUMBS]

    @property
    def more(self) -> int:
        """Photos left out of the thumbnails."""
        return max(0, len(self.photos) - ENTRY_THUMBS)

    @property
    def photo_ids(self) -> list[int]:
        """All photo ids of the entry."""
        return [p.id for p in self.photos]


@dataclass(frozen=True)
class StoryDay:
    """Story entries of one local day (day None: photos with no known time)."""

    day: date | None
    number: int | None
    places: tuple[str, ...]
    entries: tuple[StoryEntry, ...]

    @property
    def key(self) -> str:
        """A stable key for the day ("2024-05-01", or "undated")."""
        return self.day.isoformat() if self.day else "undated"

    @property
    def photo_ids(self) -> list[int]:
        """The located photos of the day (for "show this day on the map")."""
        return [p.id for entry in self.entries for p in entry.photos if p.located]

    @property
    def photo_count(self) -> int:
        """All photos of the day."""
        return sum(len(entry.photos) for entry in self.entries)

    @property
    def blocks(self) -> list[StoryBlock]:
        """The entries as the story lays them out: runs of single photos without a caption form a grid."""
        blocks: list[StoryBlock] = []
        for entry in self.entries:
            compact = not entry.caption and len(entry.photos) == 1
            if compact and blocks and blocks[-1].grid:
                blocks[-1].entries.append(entry)
            else:
                blocks.append(StoryBlock(compact, [entry]))
        return blocks


@dataclass(frozen=True)
class StoryBlock:
    """One entry with its caption, or (grid) a run of single photos without one."""

    grid: bool
    entries: list[StoryEntry]


@dataclass(frozen=True)
class StoryChunk:
    """A run of story days, with cursors to load the runs before and after (None at either end)."""

    days: tuple[StoryDay, ...]
    before: str | None
    after: str | None


@dataclass(frozen=True)
class _Row:
    id: int
    post_id: int | None
    sort_at: datetime | None
    taken_at: datetime | None
    #: The clock looks wrong: the photo keeps its place in the order but belongs to no day.
    clock_wrong: bool = False

    @property
    def key(self) -> SortKey:
        return SortKey(self.sort_at, self.id)

    @property
    def day(self) -> date | None:
        when = self.taken_at or self.sort_at
        return when.date() if when and not self.clock_wrong else None


_ROW_COLUMNS = (Photo.id, Photo.post_id, Photo.sort_at, Photo.taken_at, Photo.clock_wrong)


def _order_rows(
    session: Session, scope: Scope, start: SortKey | None, *, forward: bool, limit: int
) -> list[_Row]:
    """Up to `limit` photos after (forward) or before `start`, nearest first; time order, untimed last."""
    base = in_scope(select(*_ROW_COLUMNS), scope)
    segments = [True, False] if forward else [False, True]
    if start is not None:
        segments = segments[segments.index(start.sort_at is not None) :]
    rows: list[_Row] = []
    for i, timed in enumerate(segments):
        stmt = _segment(base, timed, start if i == 0 else None, forward)
        rows += [_Row(*r) for r in session.execute(stmt.limit(limit - len(rows))).all()]
        if len(rows) >= limit:
            break
    return rows


def _segment(stmt: _S, timed: bool, bound: SortKey | None, forward: bool) -> _S:
    """Photos with a time (by time, then id) or without one (by id), beyond a bound in one direction."""
    if not timed:
        stmt = stmt.where(Photo.sort_at.is_(None))
        if bound is not None:
            stmt = stmt.where(Photo.id > bound.id if forward else Photo.id < bound.id)
        return stmt.order_by(Photo.id if forward else Photo.id.desc())
    stmt = stmt.where(Photo.sort_at.is_not(None))
    if bound is not None and bound.sort_at is not None:
        key = tuple_(Photo.sort_at, Photo.id)
        stmt = stmt.where(key > (bound.sort_at, bound.id) if forward else key < (bound.sort_at, bound.id))
    if forward:
        return stmt.order_by(Photo.sort_at, Photo.id)
    return stmt.order_by(Photo.sort_at.desc(), Photo.id.desc())


def _cut(rows: list[_Row], size: int) -> list[_Row]:
    """The first `size` rows and the rest of the last day among them (rows nearest first)."""
    if len(rows) <= size:
        return rows
    for i in range(size, len(rows)):
        if rows[i].day != rows[i - 1].day:
            return rows[:i]
    return rows


_PHOTO_COLUMNS = (
    Photo.id,
    Photo.sha256,
    Photo.web_width,
    Photo.web_height,
    Photo.taken_at,
    Photo.place,
    Photo.lat,
    Photo.lon,
    Photo.location_source,
)


def _post_photos(session: Session, post_ids: set[int]) -> dict[int, list[tuple[StoryPhoto, _Row]]]:
    """Every photo of these posts in post order, with its order key."""
    found: dict[int, list[tuple[StoryPhoto, _Row]]] = {}
    if not post_ids:
        return found
    stmt = (
        select(*_PHOTO_COLUMNS, Photo.post_id, Photo.sort_at, Photo.clock_wrong)
        .where(Photo.post_id.in_(post_ids))
        .order_by(Photo.post_id, Photo.position, Photo.id)
    )
    for r in session.execute(stmt):
        photo = StoryPhoto(*r[:9])
        post_id = int(r[9] or 0)  # never 0: these are the posts' own photos
        found.setdefault(post_id, []).append((photo, _Row(photo.id, post_id, r[10], photo.taken_at, r[11])))
    return found


def _order(row: _Row) -> tuple[bool, datetime, int]:
    return (row.sort_at is None, row.sort_at or datetime.min, row.id)


def _entries(session: Session, rows: Sequence[_Row]) -> list[StoryEntry]:
    """Story entries for rows in time order: one per post, at the post's earliest photo."""
    posts = _post_photos(session, {r.post_id for r in rows if r.post_id is not None})
    captions = dict(session.execute(select(Post.id, Post.caption).where(Post.id.in_(list(posts)))).all())
    loose = {r.id for r in rows if r.post_id is None}
    singles = {}
    if loose:
        for r in session.execute(select(*_PHOTO_COLUMNS).where(Photo.id.in_(loose))):
            singles[r[0]] = StoryPhoto(*r)
    entries = []
    for row in rows:
        if row.post_id is None:
            photo = singles[row.id]
            entries.append(StoryEntry(None, "", (photo,), photo, row.day))
            continue
        members = posts.get(row.post_id, [])
        lead = min(members, key=lambda m: _order(m[1]), default=None)
        if lead is None or lead[0].id != row.id:
            continue  # shown with the post, at its earliest photo
        photos = tuple(m[0] for m in members)
        entries.append(StoryEntry(row.post_id, captions.get(row.post_id) or "", photos, lead[0], row.day))
    return entries


def _places(entries: Sequence[StoryEntry]) -> tuple[str, ...]:
    names: dict[str, None] = {}
    for entry in entries:
        for photo in entry.photos:
            if photo.place:
                names.setdefault(photo.place)
    return tuple(names)[:DAY_PLACES]


def _days(entries: Sequence[StoryEntry], first_day: date | None) -> tuple[StoryDay, ...]:
    groups: list[tuple[date | None, list[StoryEntry]]] = []
    for entry in entries:
        day = entry.day
        if not groups or groups[-1][0] != day:
            groups.append((day, []))
        groups[-1][1].append(entry)
    return tuple(
        StoryDay(
            day,
            (day - first_day).days + 1 if day and first_day else None,
            _places(group),
            tuple(group),
        )
        for day, group in groups
    )


def first_day(session: Session, scope: Scope) -> date | None:
    """The local date of the scope's earliest photo whose clock can be right (day 1 of a trip)."""
    stmt = in_scope(select(*_ROW_COLUMNS), scope).where(
        Photo.sort_at.is_not(None), Photo.clock_wrong.is_(False)
    )
    row = session.execute(stmt.order_by(Photo.sort_at, Photo.id).limit(1)).first()
    return _Row(*row).day if row else None


def parse_cursor(token: str | None) -> SortKey | None:
    """A story cursor, or None for none; InvalidInput when malformed."""
    return SortKey.parse(token) if token else None


def _start_of_day_before(session: Session, scope: Scope, key: SortKey, day: date | None) -> SortKey | None:
    """The cursor just before the first photo of `day` that precedes `key` (None: the story's start)."""
    back = _order_rows(session, scope, key, forward=False, limit=STORY_CHUNK_MAX)
    for i, row in enumerate(back):
        if row.day != day:
            return row.key
        if i == len(back) - 1 and len(back) == STORY_CHUNK_MAX:
            return row.key
    return None


def story_chunk(
    session: Session,
    scope: Scope,
    *,
    after: SortKey | None = None,
    before: SortKey | None = None,
    around: int | None = None,
    size: int = STORY_CHUNK,
    number_days: bool = False,
) -> StoryChunk:
    """A run of story days: from the start, `after` a cursor, `before` one, or around a photo's day."""
    day_one = first_day(session, scope) if number_days else None
    if around is not None:
        after = _around(session, scope, around)
    forward = before is None
    fetched = _order_rows(
        session, scope, after if forward else before, forward=forward, limit=STORY_CHUNK_MAX + 1
    )
    rows = _cut(fetched[:STORY_CHUNK_MAX], size)
    more_beyond = len(fetched) > len(rows)
    if forward:
        more_before, more_after = after is not None, more_beyond
    else:
        rows.reverse()
        more_before, more_after = more_beyond, True
    days = _days(_entries(session, rows), day_one)
    first_key = rows[0].key.token() if rows and more_before else None
    last_key = rows[-1].key.token() if rows and more_after else None
    return StoryChunk(days, first_key, last_key)


def _around(session: Session, scope: Scope, photo_id: int) -> SortKey | None:
    """The cursor that starts the story at the beginning of a photo's day."""
    row = session.execute(
        select(*_ROW_COLUMNS).where(Photo.id == photo_id, Photo.user_id == scope.user_id)
    ).first()
    if row is None:
        raise NotFound("no such photo")
    target = _Row(*row)
    return _start_of_day_before(session, scope, target.key, target.day)


# --- photos without a position --------------------------------------------------------------------------


@dataclass(frozen=True)
class UnlocatedPage:
    """Photos of a scope with no position, a page at a time in time order."""

    photos: list[StoryPhoto]
    total: int
    after: str | None


def unlocated(
    session: Session, scope: Scope, *, after: SortKey | None = None, limit: int = UNLOCATED_PAGE
) -> UnlocatedPage:
    """The next photos without a position, oldest first (photos with no time last)."""
    base = in_scope(select(*_PHOTO_COLUMNS, Photo.sort_at), scope).where(Photo.lat.is_(None))
    segments = [True, False]
    if after is not None:
        segments = segments[segments.index(after.sort_at is not None) :]
    rows: list[Any] = []
    for i, timed in enumerate(segments):
        stmt = _segment(base, timed, after if i == 0 else None, True)
        rows += session.execute(stmt.limit(limit + 1 - len(rows))).all()
        if len(rows) > limit:
            break
    total = session.scalar(in_scope(select(func.count()), scope).where(Photo.lat.is_(None))) or 0
    page = rows[:limit]
    cursor = SortKey(page[-1][9], page[-1][0]).token() if len(rows) > limit else None
    return UnlocatedPage([StoryPhoto(*r[:9]) for r in page], total, cursor)
