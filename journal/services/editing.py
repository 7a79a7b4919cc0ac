"""Changing photos: caption, tags, trip, position, time zone, camera clocks, deletion.

Every function takes a Session, flushes and never commits; the caller commits. Deleting a photo
hands back the paths of its files so that the caller removes them after the commit (an orphan
file is harmless; a row pointing at a missing file is a bug).
"""

from __future__ import annotations

import functools
import json
import logging
import math
import re
from dataclasses import dataclass
from datetime import UTC, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from journal import geo, places, storage
from journal.errors import InvalidInput, NotFound
from journal.models import Photo, Post, Tag, Trip, utcnow
from journal.services.owned import owned

logger = logging.getLogger(__name__)

MAX_TAGS = 30
MAX_TAG_CHARS = 100
MAX_CAPTION_CHARS = 10_000
#: A camera clock can be off by years (a reset battery), not by centuries.
MAX_SHIFT = timedelta(days=366 * 30)

_SHIFT = re.compile(
    r"^(?P<sign>[+-])\s*(?:(?P<days>\d{1,5})\s*d\s*)?(?:(?P<hours>\d{1,6})(?::(?P<min>[0-5]?\d))?"
    r"(?::(?P<sec>[0-5]?\d))?\s*h?)?$"
)


# --- captions, tags, trips -----------------------------------------------------------------------


def clean_caption(text: str) -> str:
    """A caption as stored: line ends normalised, surrounding blanks removed, length checked."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").strip()
    if len(text) > MAX_CAPTION_CHARS:
        raise InvalidInput(f"a caption has at most {MAX_CAPTION_CHARS:,} characters")
    return text


def post_of(session: Session, photo: Photo) -> Post:
    """The photo's post; a photo that lost its post gets one of its own."""
    if photo.post is None:
        photo.post = Post(user_id=photo.user_id, caption="")
        photo.position = 0
        session.flush()
    return photo.post


def set_caption(session: Session, post: Post, caption: str) -> None:
    """Set a post's caption (shared by all its photos)."""
    post.caption = clean_caption(caption)
    post.updated_at = utcnow()
    session.flush()


def parse_tags(text: str) -> list[str]:
    """Comma-separated tags -> distinct names (first spelling wins, case-insensitively), in order."""
    names: dict[str, str] = {}
    for raw in text.split(","):
        name = " ".join(raw.split())
        if not name:
            continue
        if len(name) > MAX_TAG_CHARS:
            raise InvalidInput(f"a tag has at most {MAX_TAG_CHARS} characters")
        names.setdefault(name.casefold(), name)
    if len(names) > MAX_TAGS:
        raise InvalidInput(f"a photo has at most {MAX_TAGS} tags")
    return list(names.values())


def _user_tags(session: Session, user_id: int, names: list[str]) -> list[Tag]:
    """The user's Tag rows for these names (matched case-insensitively), created when missing."""
    existing = {t.name.casefold(): t for t in session.scalars(select(Tag).where(Tag.user_id == user_id))}
    tags = []
    for name in names:
        tag = existing.get(name.casefold())
        if tag is None:
            tag = Tag(user_id=user_id, name=name)
            session.add(tag)
            existing[name.casefold()] = tag
        tags.append(tag)
    return tags


def set_tags(session: Session, photo: Photo, text: str) -> None:
    """Replace a photo's tags with the comma-separated ones in `text` (tags belong to the user)."""
    photo.tags = _user_tags(session, photo.user_id, parse_tags(text))
    session.flush()


def tags_text(photo: Photo) -> str:
    """A photo's tags as the comma-separated text the form edits."""
    return ", ".join(t.name for t in photo.tags)


def user_trip(session: Session, user_id: int, trip_id: int | None) -> Trip | None:
    """The user's trip (None for no trip); NotFound for another user's or a missing trip."""
    if trip_id is None:
        return None
    return owned(session, Trip, trip_id, user_id, "trip")


def set_trip(session: Session, post: Post, trip_id: int | None) -> None:
    """Put a post (with all its photos) on a trip, or on none."""
    trip = user_trip(session, post.user_id, trip_id)
    post.trip_id = trip.id if trip else None
    post.updated_at = utcnow()
    session.flush()


# --- position ------------------------------------------------------------------------------------


def parse_position(lat_text: str, lon_text: str) -> tuple[float, float]:
    """Latitude and longitude from form fields (also "lat, lon" pasted into the first); ranges checked."""
    lat_text, lon_text = lat_text.strip(), lon_text.strip()
    if not lon_text and "," in lat_text:
        lat_text, lon_text = (part.strip() for part in lat_text.split(",", 1))
    try:
        lat, lon = float(lat_text), float(lon_text)
    except ValueError:
        raise InvalidInput("latitude and longitude are decimal degrees, e.g. 13.7563 and 100.5018") from None
    if not (math.isfinite(lat) and -90 <= lat <= 90):
        raise InvalidInput("the latitude must be between -90 and 90")
    if not (math.isfinite(lon) and -180 <= lon <= 180):
        raise InvalidInput("the longitude must be between -180 and 180")
    return round(lat, 7), round(lon, 7)


def set_position(session: Session, photo: Photo, lat: float, lon: float) -> None:
    """Place a photo by hand: position, place name and, unless set by hand, its time zone."""
    if not geo.is_valid_position(lat, lon):
        raise InvalidInput("that is not a position on Earth")
    photo.lat, photo.lon = lat, lon
    photo.location_source = "manual"
    place = places.place_for(lat, lon)
    photo.place = place.name if place else None
    photo.country = place.country if place else None
    photo.country_code = place.country_code if place else None
    zone = place.timezone if place else places.timezone_at(lat, lon)
    if photo.offset_source != "manual":
        photo.timezone = zone
        if photo.offset_source in (None, "timezone") and zone:
            # The offset came from the old position (or was unknown): the new position decides it.
            _apply_zone(photo, zone, source="timezone")
    session.flush()


def clear_position(session: Session, photo: Photo) -> None:
    """Remove a photo's position and place name (the time stays as it is)."""
    photo.lat = photo.lon = photo.alt = None
    photo.location_source = None
    photo.place = photo.country = photo.country_code = None
    session.flush()


# --- time ----------------------------------------------------------------------------------------


@functools.cache
def zone_names() -> tuple[str, ...]:
    """IANA time zone names to choose from (Area/Location names and UTC), sorted."""
    names = {n for n in available_timezones() if "/" in n and not n.startswith(("posix/", "right/"))}
    return tuple(sorted(names | {"UTC"}))


def _zone(name: str) -> ZoneInfo:
    name = name.strip()
    if name not in zone_names():
        raise InvalidInput("pick a time zone from the list, e.g. Asia/Bangkok")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(f"unknown time zone {name!r}") from None


def _apply_zone(photo: Photo, name: str, *, source: str) -> None:
    """Read the photo's local time in zone `name`: offset, UTC time and where they came from."""
    if photo.taken_at is None:
        return
    zone = ZoneInfo(name)
    local = photo.taken_at.replace(tzinfo=zone)
    offset = local.utcoffset() or timedelta(0)
    photo.timezone = name
    try:
        photo.taken_at_utc = (photo.taken_at - offset).replace(tzinfo=UTC)
    except OverflowError:  # year 1 east of UTC, 31 Dec 9999 west of it: no UTC time in the calendar
        photo.taken_at_utc = photo.utc_offset_min = photo.offset_source = None
        return
    photo.utc_offset_min = int(offset.total_seconds() // 60)
    photo.offset_source = source


def set_timezone(session: Session, photo: Photo, name: str) -> None:
    """Correct a photo's time zone: its local time stays, the offset and UTC time follow the zone."""
    zone = _zone(name)
    if photo.taken_at is None:
        raise InvalidInput("this photo has no recorded time, so it has no time zone to correct")
    _apply_zone(photo, zone.key, source="manual")
    session.flush()


def parse_shift(text: str) -> timedelta:
    """A clock shift like "+7", "+7:00", "-0:30", "+1d 2:00" or "+0:00:45"; the sign is required."""
    match = _SHIFT.match(text.strip().lower())
    parts = match.groupdict() if match else {}
    if not match or not any(parts[k] for k in ("days", "hours", "min", "sec")):
        raise InvalidInput('write the shift with its sign and hours[:minutes], e.g. "+7:00" or "-0:30"')
    delta = timedelta(
        days=int(parts["days"] or 0),
        hours=int(parts["hours"] or 0),
        minutes=int(parts["min"] or 0),
        seconds=int(parts["sec"] or 0),
    )
    if not delta:
        raise InvalidInput("a shift of zero changes nothing")
    if delta > MAX_SHIFT:
        raise InvalidInput("that shift is longer than 30 years")
    return -delta if parts["sign"] == "-" else delta


@dataclass(frozen=True)
class Camera:
    """A camera seen in a trip (make and model as recorded) and how many photos it took."""

    make: str | None
    model: str | None
    photos: int

    @property
    def key(self) -> str:
        """The camera as a form value."""
        return json.dumps([self.make, self.model])

    @property
    def label(self) -> str:
        """Make and model for people ("unknown camera" when neither was recorded)."""
        return camera_label(self.make, self.model)


def camera_label(make: str | None, model: str | None) -> str:
    """ "Canon EOS 5D" from make "Canon" and model "Canon EOS 5D"; "unknown camera" for neither."""
    make, model = (make or "").strip(), (model or "").strip()
    if model and make and model.lower().startswith(make.split()[0].lower()):
        return model
    return " ".join(p for p in (make, model) if p) or "unknown camera"


def parse_camera(key: str) -> tuple[str | None, str | None]:
    """The (make, model) pair from a Camera.key form value."""
    try:
        value = json.loads(key)
    except ValueError:
        value = None
    if not (
        isinstance(value, list) and len(value) == 2 and all(v is None or isinstance(v, str) for v in value)
    ):
        raise InvalidInput("pick a camera from the list")
    return value[0], value[1]


def _trip_photos(user_id: int, trip_id: int) -> ColumnElement[bool]:
    return Photo.post_id.in_(select(Post.id).where(Post.user_id == user_id, Post.trip_id == trip_id))


def trip_cameras(session: Session, user_id: int, trip_id: int) -> list[Camera]:
    """Cameras that took the trip's photos, most photos first."""
    count = func.count(Photo.id)
    stmt = (
        select(Photo.make, Photo.model, count)
        .where(Photo.user_id == user_id, _trip_photos(user_id, trip_id))
        .group_by(Photo.make, Photo.model)
        .order_by(count.desc(), Photo.make, Photo.model)
    )
    return [Camera(make, model, n) for make, model, n in session.execute(stmt)]


def _same(column: InstrumentedAttribute[str | None], value: str | None) -> ColumnElement[bool]:
    return column.is_(None) if value is None else column == value


def shift_camera_clock(
    session: Session, user_id: int, trip_id: int, camera: tuple[str | None, str | None], delta: timedelta
) -> int:
    """Move the time of every photo one camera took on a trip by `delta`; returns how many changed.

    For a camera left on home time: local and UTC times both move. When the offset came from a time
    zone (the position's or one set by hand) it is read again at the new local time, so a shift
    across a daylight-saving change stays right.
    """
    if user_trip(session, user_id, trip_id) is None:
        raise NotFound("no such trip")
    make, model = camera
    photos = session.scalars(
        select(Photo).where(
            Photo.user_id == user_id,
            _trip_photos(user_id, trip_id),
            _same(Photo.make, make),
            _same(Photo.model, model),
            Photo.taken_at.is_not(None),
        )
    ).all()
    try:
        for photo in photos:
            _shift(photo, delta)
    except OverflowError:
        raise InvalidInput("that shift moves a photo out of the calendar") from None
    session.flush()
    return len(photos)


def _shift(photo: Photo, delta: timedelta) -> None:
    assert photo.taken_at is not None
    photo.taken_at = photo.taken_at + delta
    if photo.offset_source in ("timezone", "manual") and photo.timezone:
        try:
            _apply_zone(photo, photo.timezone, source=photo.offset_source)
            return
        except (ZoneInfoNotFoundError, ValueError):
            logger.warning("photo %s: unknown zone %r, shifting UTC time as it is", photo.id, photo.timezone)
    if photo.taken_at_utc is not None:
        photo.taken_at_utc = photo.taken_at_utc + delta


# --- deletion ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeletedPhoto:
    """What is left to do after a photo's row is gone: its files, removed after the commit."""

    user_id: int
    sha256: str
    paths: list[Path]


def photo_files(uploads: Path, photo: Photo) -> list[Path]:
    """The original and every rendition of a photo under uploads/."""
    paths = [storage.safe_join(uploads, photo.stored_path)]
    for kind in storage.RENDITIONS:
        paths.append(uploads / storage.rendition_relpath(photo.user_id, photo.sha256, kind))
    return paths


def renumber(post: Post) -> None:
    """Positions 0..n-1 in the post's current order."""
    for i, photo in enumerate(sorted(post.photos, key=lambda p: (p.position, p.id))):
        photo.position = i


def detach(session: Session, photo: Photo) -> None:
    """Take a photo out of its post; a post left with no photo is deleted, others are renumbered."""
    post = photo.post
    if post is None:
        return
    post.photos.remove(photo)
    photo.post_id = None
    if post.photos:
        renumber(post)
        post.updated_at = utcnow()
    else:
        session.delete(post)
    session.flush()


def delete_photo(session: Session, uploads: Path, photo: Photo) -> DeletedPhoto:
    """Delete a photo's row and its place in its post (and the post, if it was the last photo)."""
    deleted = DeletedPhoto(photo.user_id, photo.sha256, photo_files(uploads, photo))
    detach(session, photo)
    session.delete(photo)
    session.flush()
    return deleted


def remove_files(session: Session, deleted: DeletedPhoto) -> None:
    """After the commit: remove the files, unless the same content was imported again meanwhile."""
    again = session.scalar(
        select(Photo.id).where(Photo.user_id == deleted.user_id, Photo.sha256 == deleted.sha256)
    )
    if again is not None:
        logger.info("content of a deleted photo was imported again as %s: files kept", again)
        return
    storage.remove_files(deleted.paths)
