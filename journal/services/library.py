"""Reading the library: the photo grid with keyset pagination, one photo with its neighbours, GeoJSON.

Order of the grid (and of previous/next on a photo page): newest first by `Photo.sort_at`, which is
`taken_at_utc` when known and else the local `taken_at` (a camera with no offset and no GPS still
sorts by its clock, at most a few hours off). Ties, and photos with no time at all (which come after
all the others), go by import order, newest import first: the id grows with every import, so it
stands for `imported_at` and makes the order total. Pages are cut with keyset pagination on
(sort_at, id): each query is a range scan of the (user_id, sort_at) index however deep the page,
never an OFFSET scan.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Select, String, case, func, or_, select, type_coerce
from sqlalchemy.orm import Session, selectinload

from journal import clock, ids
from journal.errors import InvalidInput, NotFound
from journal.models import Photo, Post, Trip, photo_sort_at
from journal.services.geotagging import POSITION_SOURCES
from journal.services.owned import owned

logger = logging.getLogger(__name__)

#: The C string encoder json.dumps uses (escapes quotes, control and non-ASCII characters).
_encode_string: Callable[[str], str] = json.encoder.encode_basestring_ascii

PAGE_SIZE = 60
#: Captions in the GeoJSON feed are cut to this many characters (map popups, compact at 100,000 photos).
GEOJSON_CAPTION_CHARS = 200

_S = TypeVar("_S", bound="Select[*tuple[Any, ...]]")
_CURSOR = re.compile(r"^(?:(?P<t>[0-9]{8}T[0-9]{12})|(?P<none>n))-(?P<id>[0-9]{1,18})$")
_CURSOR_TIME = "%Y%m%dT%H%M%S%f"


@dataclass(frozen=True)
class SortKey:
    """A photo's place in the library order: (sort_at, id), photos with no time last."""

    sort_at: datetime | None
    id: int

    def token(self) -> str:
        """The key as a URL-safe cursor."""
        if self.sort_at is None:
            return f"n-{self.id}"
        return f"{clock.strftime(self.sort_at, _CURSOR_TIME)}-{self.id}"

    @classmethod
    def parse(cls, token: str) -> SortKey:
        """Read a cursor made by token(); InvalidInput for anything else."""
        match = _CURSOR.match(token)
        if not match:
            raise InvalidInput("that page link is not valid: go back to the first page")
        when = match.group("t")
        try:
            sort_at = datetime.strptime(when, _CURSOR_TIME) if when else None
        except ValueError:
            raise InvalidInput("that page link is not valid: go back to the first page") from None
        key = cls(sort_at, int(match.group("id")))
        if not ids.in_range(key.id):
            raise NotFound("that page link is not valid: go back to the first page")
        return key


@dataclass(frozen=True)
class LibraryFilter:
    """Which photos the grid shows: a trip, a range of local dates, only the ones with no position."""

    trip_id: int | None = None
    date_from: date | None = None
    date_to: date | None = None
    no_location: bool = False

    def __post_init__(self) -> None:
        if self.date_from and self.date_to and self.date_from > self.date_to:
            raise InvalidInput("the start date is after the end date")

    @property
    def active(self) -> bool:
        """True when anything is filtered out."""
        return bool(self.trip_id or self.date_from or self.date_to or self.no_location)

    def query_args(self) -> dict[str, Any]:
        """The filter as query-string arguments (for links that keep it)."""
        args: dict[str, Any] = {}
        if self.trip_id:
            args["trip"] = str(self.trip_id)
        if self.date_from:
            args["from"] = self.date_from.isoformat()
        if self.date_to:
            args["to"] = self.date_to.isoformat()
        if self.no_location:
            args["nolocation"] = "1"
        return args


def parse_filter(args: Mapping[str, str]) -> LibraryFilter:
    """A filter from query-string arguments (trip, from, to, nolocation); InvalidInput when malformed."""
    return LibraryFilter(
        trip_id=ids.parse_id(args.get("trip"), "trip"),
        date_from=parse_date(args.get("from"), "start date"),
        date_to=parse_date(args.get("to"), "end date"),
        no_location=(args.get("nolocation") or "") in {"1", "on", "true", "yes"},
    )


def parse_date(value: str | None, what: str) -> date | None:
    """A YYYY-MM-DD form value as a date, None when empty; InvalidInput naming `what` otherwise."""
    value = (value or "").strip()
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidInput(f"the {what} is not a date (YYYY-MM-DD)") from None


@dataclass(frozen=True)
class GridItem:
    """What one tile of the grid shows."""

    id: int
    key: SortKey
    thumb_width: int
    thumb_height: int
    taken_at: datetime | None
    place: str | None
    has_location: bool
    post_id: int | None
    post_size: int
    original_name: str
    sha256: str
    #: The capture time cannot be right (see Photo.clock_wrong).
    clock_wrong: bool = False


@dataclass(frozen=True)
class DayGroup:
    """Consecutive grid items taken on one local day (day None: no known time)."""

    day: date | None
    items: list[GridItem]


@dataclass(frozen=True)
class Page:
    """One page of the grid, with cursors to the pages either side (None at the ends)."""

    items: list[GridItem]
    total: int
    newer: str | None = None
    older: str | None = None

    @property
    def days(self) -> list[DayGroup]:
        """The items in runs of the same local day, for headings in the grid."""
        groups: list[DayGroup] = []
        for item in self.items:
            day = item.taken_at.date() if item.taken_at is not None else None
            if not groups or groups[-1].day != day:
                groups.append(DayGroup(day, []))
            groups[-1].items.append(item)
        return groups


@dataclass(frozen=True)
class LibraryCounts:
    """Numbers shown above the grid."""

    all_photos: int
    without_location: int


@dataclass(frozen=True)
class Neighbours:
    """The photos before and after one photo in the library order."""

    newer: int | None
    older: int | None


@dataclass(frozen=True)
class PhotoPage:
    """A photo with everything its page shows."""

    photo: Photo
    neighbours: Neighbours
    trips: list[Trip] = field(default_factory=list)


def thumb_dimensions(web_width: int, web_height: int, thumb_size: int) -> tuple[int, int]:
    """Pixel size of the thumbnail, from the web rendition's (same aspect, longest side thumb_size)."""
    if web_width <= 0 or web_height <= 0:
        return thumb_size, thumb_size
    longest = max(web_width, web_height)
    if longest <= thumb_size:
        return web_width, web_height
    scale = thumb_size / longest
    return max(1, round(web_width * scale)), max(1, round(web_height * scale))


# --- queries -------------------------------------------------------------------------------------


def plausible(column: Any) -> ColumnElement[Any]:
    """The column for photos whose clock can be right, NULL for the others (min/max skip them)."""
    return case((Photo.clock_wrong.is_(False), column), else_=None)


def _filtered(stmt: _S, user_id: int, flt: LibraryFilter) -> _S:
    """The user's photos that pass the filter. Callers check_trip() first."""
    if flt.trip_id:
        # The callers check that the trip is the user's; only the owner's posts go on a trip and only
        # the owner's photos into a post, so the trip alone selects the user's photos. Without a user_id
        # term the database starts from the trip's posts (trip_id index), not every photo of the user.
        stmt = stmt.join(Post, Post.id == Photo.post_id).where(Post.trip_id == flt.trip_id)
    else:
        stmt = stmt.where(Photo.user_id == user_id)
    if flt.date_from:
        stmt = stmt.where(Photo.taken_at >= datetime.combine(flt.date_from, datetime.min.time()))
    if flt.date_to:
        end = datetime.combine(flt.date_to, datetime.min.time()) + timedelta(days=1)
        stmt = stmt.where(Photo.taken_at < end)
    if flt.no_location:
        # lat and lon are set and cleared together; lat alone keeps to the (user_id, lat, sort_at) index.
        stmt = stmt.where(Photo.lat.is_(None))
    return stmt


def _segment(stmt: _S, timed: bool, bound: SortKey | None, forward: bool) -> _S:
    """One run of the order: photos with a time (by time, then id) or without one (by id)."""
    taken, pid = Photo.sort_at, Photo.id
    if not timed:
        stmt = stmt.where(taken.is_(None))
        if bound is not None:
            stmt = stmt.where(pid < bound.id if forward else pid > bound.id)
        return stmt.order_by(pid.desc() if forward else pid.asc())
    stmt = stmt.where(taken.is_not(None))
    if bound is not None and bound.sort_at is not None:
        t = bound.sort_at
        # The first term is a range on the index, the second picks the tie-break: no OR across the index.
        if forward:
            stmt = stmt.where(taken <= t, or_(taken < t, pid < bound.id))
        else:
            stmt = stmt.where(taken >= t, or_(taken > t, pid > bound.id))
    if forward:
        return stmt.order_by(taken.desc(), pid.desc())
    return stmt.order_by(taken.asc(), pid.asc())


def _walk(
    session: Session,
    stmt: Select[*tuple[Any, ...]],
    start: SortKey | None,
    *,
    forward: bool,
    limit: int,
) -> list[Any]:
    """Rows after (forward: older) or before (newer) `start` in library order, nearest first."""
    segments = [True, False] if forward else [False, True]
    if start is not None:
        segments = segments[segments.index(start.sort_at is not None) :]
    rows: list[Any] = []
    for i, timed in enumerate(segments):
        bound = start if i == 0 else None
        rows += session.execute(_segment(stmt, timed, bound, forward).limit(limit - len(rows))).all()
        if len(rows) >= limit:
            break
    return rows


_GRID_COLUMNS = (
    Photo.id,
    Photo.sort_at,
    Photo.taken_at,
    Photo.place,
    Photo.lat,
    Photo.lon,
    Photo.post_id,
    Photo.web_width,
    Photo.web_height,
    Photo.original_name,
    Photo.sha256,
    Photo.clock_wrong,
)


def _post_sizes(session: Session, post_ids: set[int]) -> dict[int, int]:
    if not post_ids:
        return {}
    stmt = select(Photo.post_id, func.count()).where(Photo.post_id.in_(post_ids)).group_by(Photo.post_id)
    return {pid: n for pid, n in session.execute(stmt) if pid is not None}


def _grid_items(session: Session, rows: list[Any], thumb_size: int) -> list[GridItem]:
    sizes = _post_sizes(session, {r.post_id for r in rows if r.post_id is not None})
    items = []
    for r in rows:
        width, height = thumb_dimensions(r.web_width, r.web_height, thumb_size)
        items.append(
            GridItem(
                id=r.id,
                key=SortKey(r.sort_at, r.id),
                thumb_width=width,
                thumb_height=height,
                taken_at=r.taken_at,
                place=r.place,
                has_location=r.lat is not None and r.lon is not None,
                post_id=r.post_id,
                post_size=sizes.get(r.post_id, 1) if r.post_id is not None else 1,
                original_name=r.original_name,
                sha256=r.sha256,
                clock_wrong=bool(r.clock_wrong),
            )
        )
    return items


def count_photos(session: Session, user_id: int, flt: LibraryFilter | None = None) -> int:
    """How many of the user's photos match the filter (NotFound for a trip that is not the user's)."""
    flt = flt or LibraryFilter()
    check_trip(session, user_id, flt.trip_id)
    stmt = _filtered(select(func.count(Photo.id)), user_id, flt)
    return session.scalar(stmt) or 0


def library_counts(session: Session, user_id: int) -> LibraryCounts:
    """All photos, and how many have no position."""
    return LibraryCounts(
        all_photos=count_photos(session, user_id),
        without_location=count_photos(session, user_id, LibraryFilter(no_location=True)),
    )


def check_trip(session: Session, user_id: int, trip_id: int | None) -> None:
    """NotFound unless the trip is the user's (a filter on someone else's trip shows nothing, loudly)."""
    if trip_id is not None:
        owned(session, Trip, trip_id, user_id, "trip")


def list_page(
    session: Session,
    user_id: int,
    flt: LibraryFilter,
    *,
    after: str | None = None,
    before: str | None = None,
    limit: int = PAGE_SIZE,
    thumb_size: int = 400,
) -> Page:
    """One page of the grid: the first one, the one after cursor `after`, or the one before `before`."""
    check_trip(session, user_id, flt.trip_id)
    stmt = _filtered(select(*_GRID_COLUMNS), user_id, flt)
    forward = before is None
    cursor = SortKey.parse(after or before or "") if (after or before) else None
    rows = _walk(session, stmt, cursor, forward=forward, limit=limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    if not forward:
        rows.reverse()
    items = _grid_items(session, rows, thumb_size)
    total = count_photos(session, user_id, flt)
    if not items:
        return Page(items, total)
    first, last = items[0].key, items[-1].key
    has_newer = more if not forward else bool(_walk(session, stmt, first, forward=False, limit=1))
    has_older = more if forward else bool(_walk(session, stmt, last, forward=True, limit=1))
    return Page(
        items,
        total,
        newer=first.token() if has_newer else None,
        older=last.token() if has_older else None,
    )


@dataclass(frozen=True)
class GridView:
    """Everything the library page shows: a page of the grid, the filter, trips to filter by, counts."""

    page: Page
    filter: LibraryFilter
    trips: list[Trip]
    counts: LibraryCounts


def grid_view(session: Session, user_id: int, flt: LibraryFilter, page: Page) -> GridView:
    """The library page's data: a page of the grid (from list_page) plus the trips and counts around it."""
    return GridView(page, flt, list_trips(session, user_id), library_counts(session, user_id))


def get_photo(session: Session, user_id: int, photo_id: int) -> Photo:
    """The user's photo; NotFound for a missing id or somebody else's photo."""
    return owned(session, Photo, photo_id, user_id, "photo")


def neighbours(session: Session, photo: Photo, flt: LibraryFilter | None = None) -> Neighbours:
    """The ids of the photos either side of this one in the grid's order (within a filter)."""
    flt = flt or LibraryFilter()
    check_trip(session, photo.user_id, flt.trip_id)
    stmt = _filtered(select(Photo.id), photo.user_id, flt)
    key = SortKey(photo_sort_at(photo.taken_at_utc, photo.taken_at), photo.id)
    newer = _walk(session, stmt, key, forward=False, limit=1)
    older = _walk(session, stmt, key, forward=True, limit=1)
    return Neighbours(newer[0].id if newer else None, older[0].id if older else None)


def list_trips(session: Session, user_id: int) -> list[Trip]:
    """The user's trips, newest first (for pickers)."""
    stmt = (
        select(Trip)
        .where(Trip.user_id == user_id)
        .order_by(Trip.start_date.desc().nulls_last(), Trip.created_at.desc(), Trip.id.desc())
    )
    return list(session.scalars(stmt))


def photo_page(session: Session, user_id: int, photo_id: int, flt: LibraryFilter | None = None) -> PhotoPage:
    """A photo, its neighbours in the grid order and the trips to choose from."""
    photo = session.scalar(
        select(Photo)
        .where(Photo.id == photo_id, Photo.user_id == user_id)
        .options(selectinload(Photo.tags), selectinload(Photo.post).selectinload(Post.photos))
    )
    if photo is None:
        raise NotFound("no such photo")
    return PhotoPage(photo, neighbours(session, photo, flt), list_trips(session, user_id))


# --- GeoJSON -------------------------------------------------------------------------------------


def _utc_text(value: datetime | str | None) -> str | None:
    """Stored naive UTC as ISO 8601 with a Z; SQLite hands back its text, other databases a datetime."""
    if value is None:
        return None
    if isinstance(value, str):  # "YYYY-MM-DD HH:MM:SS[.ffffff]"
        head, _, fraction = value.partition(".")
        fraction = fraction.rstrip("0")
        return f"{head[:10]}T{head[11:19]}{'.' + fraction if fraction else ''}Z"
    return value.replace(tzinfo=None).isoformat() + "Z"


def _json_text(value: str | None) -> str:
    """A JSON string (ASCII only) or null."""
    return "null" if value is None else _encode_string(value)


def _features(rows: Sequence[Any], thumb_url: Callable[[int, str], str]) -> str:
    """Rows as comma-separated GeoJSON features, formatted directly (3x faster than dicts + json.dumps)."""
    out = []
    for photo_id, lat, lon, taken, place, sha256, caption, source in rows:
        if caption and len(caption) > GEOJSON_CAPTION_CHARS:
            caption = caption[: GEOJSON_CAPTION_CHARS - 1] + "…"
        out.append(
            f'{{"type":"Feature","geometry":{{"type":"Point","coordinates":[{float(lon)!r},{float(lat)!r}]}},'
            f'"properties":{{"id":{int(photo_id)},"caption":{_json_text(caption or "")},'
            f'"taken_at_utc":{_json_text(_utc_text(taken))},"place":{_json_text(place)},'
            f'"thumb_url":{_json_text(thumb_url(photo_id, sha256))},'
            f'"position_source":{_json_text(POSITION_SOURCES.get(source or ""))}}}}}'
        )
    text = ",".join(out)
    # Still the same JSON (<, > and & only occur inside strings), but safe even if embedded in HTML.
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def geojson_chunks(
    session: Session,
    user_id: int,
    thumb_url: Callable[[int, str], str],
    *,
    trip_id: int | None = None,
    chunk_rows: int = 2000,
) -> Iterator[str]:
    """The user's located photos as a GeoJSON FeatureCollection, in pieces (stream them).

    Only the needed columns are read, as plain rows (no ORM objects), `chunk_rows` at a time.
    """
    check_trip(session, user_id, trip_id)
    stmt = (
        select(
            Photo.id,
            Photo.lat,
            Photo.lon,
            # As stored (text in SQLite): no datetime parsing per row.
            type_coerce(Photo.taken_at_utc, String),
            Photo.place,
            Photo.sha256,
            Post.caption,
            Photo.location_source,
        )
        .outerjoin(Post, Post.id == Photo.post_id)
        .where(Photo.user_id == user_id, Photo.lat.is_not(None), Photo.lon.is_not(None))
        .order_by(Photo.id)
    )
    if trip_id is not None:
        stmt = stmt.where(Post.trip_id == trip_id)
    # Core execution on the session's connection: plain tuples, no ORM loading per row. yield_per is
    # this statement's option (Connection.execution_options would keep streaming on for the session's
    # later statements: on PostgreSQL each would become a server-side cursor, an INSERT a syntax error).
    result = session.connection().execute(stmt, execution_options={"yield_per": chunk_rows})
    yield '{"type":"FeatureCollection","features":['
    sep = ""
    for rows in result.partitions():
        yield sep + _features(rows, thumb_url)
        sep = ","
    yield "]}"
