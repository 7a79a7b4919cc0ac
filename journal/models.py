"""The journal's tables as typed SQLAlchemy models."""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    event,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

from journal import clock
from journal.db import Base


def utcnow() -> datetime:
    """The current time in UTC, timezone-aware."""
    return datetime.now(UTC)


class UserOwned:
    """A row that belongs to one account and goes when the account does; look such rows up with
    services.owned.owned(), so that somebody else's row is "not found"."""

    id: Mapped[int] = mapped_column(primary_key=True, sort_order=-2)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True, sort_order=-1
    )


class UTCDateTime(TypeDecorator[datetime]):
    """Stores aware datetimes as naive UTC (portable across SQLite and PostgreSQL); returns aware UTC."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("UTCDateTime needs an aware datetime")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: object) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


class User(Base):
    """An account; each user sees only their own journal."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(80), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    is_owner: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ApiToken(UserOwned, Base):
    """A bearer token for /api/*, stored as its SHA-256 only."""

    __tablename__ = "api_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    #: The token's name, chosen by its owner (shown in `journal token list` and on the tokens page).
    label: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: After this moment the token is refused (NULL: never expires).
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class UserSession(UserOwned, Base):
    """A signed-in browser: the cookie carries a random id whose SHA-256 is this row.

    Deleting the row (logout, password change, "sign out everywhere") revokes that cookie even if
    it was copied: Flask's cookie sessions are only signed, so revocation has to live here.
    """

    __tablename__ = "user_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: Refreshed at most every few minutes; sessions idle for long are pruned.
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class LoginThrottle(Base):
    """Failed sign-in attempts per key ("user:NAME" or "addr:NETWORK"), shared by every process.

    The delay until ``next_at`` applies to every attempt on that key; rows idle for long are
    pruned and the table is capped (see services/throttle.py).
    """

    __tablename__ = "login_throttle"

    key: Mapped[str] = mapped_column(String(120), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    last_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    next_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Trip(UserOwned, Base):
    """A journey: a title, dates and the posts made on it."""

    __tablename__ = "trips"
    __table_args__ = (UniqueConstraint("user_id", "title"),)

    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    start_date: Mapped[date | None] = mapped_column(Date)
    end_date: Mapped[date | None] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: The user's own rule for placing this trip's photos on tracks (None: the settings' default):
    #: kept so that a later clock fix places them again the same way.
    track_max_gap_s: Mapped[int | None] = mapped_column(Integer)
    track_nearest_s: Mapped[int | None] = mapped_column(Integer)

    posts: Mapped[list[Post]] = relationship(back_populates="trip")


photo_tags = Table(
    "photo_tags",
    Base.metadata,
    Column("photo_id", ForeignKey("photos.id", ondelete="CASCADE"), primary_key=True),
    Column("tag_id", ForeignKey("tags.id", ondelete="CASCADE"), primary_key=True),
)


class Tag(UserOwned, Base):
    """A user's label for photos."""

    __tablename__ = "tags"
    __table_args__ = (UniqueConstraint("user_id", "name"),)

    name: Mapped[str] = mapped_column(String(100))


class Post(UserOwned, Base):
    """What gets published: a caption and one or more photos in order."""

    __tablename__ = "posts"

    trip_id: Mapped[int | None] = mapped_column(ForeignKey("trips.id", ondelete="SET NULL"), index=True)
    caption: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    trip: Mapped[Trip | None] = relationship(back_populates="posts")
    photos: Mapped[list[Photo]] = relationship(back_populates="post", order_by="(Photo.position, Photo.id)")


class Photo(UserOwned, Base):
    """One stored original with what its metadata says, and where it is on disk."""

    __tablename__ = "photos"
    __table_args__ = (
        UniqueConstraint("user_id", "sha256"),
        Index("ix_photos_user_taken", "user_id", "taken_at_utc"),
        Index("ix_photos_user_sort", "user_id", "sort_at"),
        Index("ix_photos_user_lat_sort", "user_id", "lat", "sort_at"),
    )

    post_id: Mapped[int | None] = mapped_column(ForeignKey("posts.id", ondelete="SET NULL"), index=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    sha256: Mapped[str] = mapped_column(String(64))
    original_name: Mapped[str] = mapped_column(String(1024), default="")
    stored_path: Mapped[str] = mapped_column(String(255))
    bytes: Mapped[int] = mapped_column(BigInteger)
    format: Mapped[str] = mapped_column(String(16))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    orientation: Mapped[int | None] = mapped_column(Integer)
    web_width: Mapped[int] = mapped_column(Integer, default=0)
    web_height: Mapped[int] = mapped_column(Integer, default=0)
    make: Mapped[str | None] = mapped_column(String(255))
    model: Mapped[str | None] = mapped_column(String(255))
    lens: Mapped[str | None] = mapped_column(String(255))
    #: Local wall-clock time the camera recorded (naive).
    taken_at: Mapped[datetime | None] = mapped_column(DateTime)
    #: Offset of taken_at from UTC in minutes, and where it came from: camera, gps, timezone, manual.
    utc_offset_min: Mapped[int | None] = mapped_column(Integer)
    offset_source: Mapped[str | None] = mapped_column(String(16))
    taken_at_utc: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: The library's order: taken_at_utc (naive UTC), else the local taken_at, else NULL (no time: last).
    #: Kept by the before_insert/before_update hooks below; keyset pages run on (user_id, sort_at, id).
    sort_at: Mapped[datetime | None] = mapped_column(DateTime)
    #: The capture time cannot be right (journal.clock: before 1900, or over a day after the import):
    #: the photo keeps its time and place in the order, but trip spans, day counts and day headings
    #: leave it out. Kept by the same hooks as sort_at.
    clock_wrong: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    alt: Mapped[float | None] = mapped_column(Float)
    #: exif, xmp, track, manual
    location_source: Mapped[str | None] = mapped_column(String(16))
    place: Mapped[str | None] = mapped_column(String(255))
    country: Mapped[str | None] = mapped_column(String(100))
    country_code: Mapped[str | None] = mapped_column(String(2))
    timezone: Mapped[str | None] = mapped_column(String(64))
    imported_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    post: Mapped[Post | None] = relationship(back_populates="photos")
    tags: Mapped[list[Tag]] = relationship(secondary=photo_tags)

    @property
    def has_location(self) -> bool:
        """True when the photo has a position."""
        return self.lat is not None and self.lon is not None


def photo_sort_at(taken_at_utc: datetime | None, taken_at: datetime | None) -> datetime | None:
    """A photo's place in the library order (see Photo.sort_at)."""
    if taken_at_utc is not None:
        return taken_at_utc.astimezone(UTC).replace(tzinfo=None)
    return taken_at


@event.listens_for(Photo, "before_insert")
@event.listens_for(Photo, "before_update")
def _keep_sort_at(_mapper: object, _connection: object, photo: Photo) -> None:
    photo.sort_at = photo_sort_at(photo.taken_at_utc, photo.taken_at)
    photo.clock_wrong = clock.photo_clock_wrong(
        photo.taken_at_utc, photo.taken_at, photo.imported_at or utcnow()
    )


class ImportFailure(UserOwned, Base):
    """A file that could not be imported, and why (shown to the user, never silently lost)."""

    __tablename__ = "import_failures"

    source_name: Mapped[str] = mapped_column(String(1024))
    reason: Mapped[str] = mapped_column(String(1024))
    sha256: Mapped[str | None] = mapped_column(String(64))
    details: Mapped[dict[str, object] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


# --- exports, publications, outgoing e-mail, privacy zones (journal export / send / published) ---


class Export(UserOwned, Base):
    """One written bundle (a zip or an .eml) of one export run: which batch, its hash and settings."""

    __tablename__ = "exports"

    trip_id: Mapped[int | None] = mapped_column(ForeignKey("trips.id", ondelete="SET NULL"), index=True)
    #: The batches written by one `journal export` share a run id.
    run_id: Mapped[str] = mapped_column(String(32), index=True)
    #: File name (made by the app) and where it was written.
    name: Mapped[str] = mapped_column(String(255))
    path: Mapped[str] = mapped_column(String(4096))
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    bytes: Mapped[int] = mapped_column(BigInteger)
    batch: Mapped[int] = mapped_column(Integer)
    batches: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    platform: Mapped[str] = mapped_column(String(32))
    #: exact, approx or none
    location_mode: Mapped[str] = mapped_column(String(8))
    #: zip or eml
    format: Mapped[str] = mapped_column(String(8))
    max_batch_bytes: Mapped[int | None] = mapped_column(BigInteger)

    posts: Mapped[list[ExportPost]] = relationship(
        back_populates="export", cascade="all, delete-orphan", order_by="ExportPost.post_id"
    )


class ExportPost(Base):
    """A post (or one numbered part of it) inside an exported bundle."""

    __tablename__ = "export_posts"

    export_id: Mapped[int] = mapped_column(ForeignKey("exports.id", ondelete="CASCADE"), primary_key=True)
    post_id: Mapped[int] = mapped_column(
        ForeignKey("posts.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    #: 1 for a post that was not split; k of a post split into numbered parts.
    part: Mapped[int] = mapped_column(Integer, primary_key=True, default=1)

    export: Mapped[Export] = relationship(back_populates="posts")


class Publication(Base):
    """A post was published (from a bundle, or marked by hand): when, and where when known."""

    __tablename__ = "publications"
    __table_args__ = (UniqueConstraint("post_id", "export_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    post_id: Mapped[int] = mapped_column(ForeignKey("posts.id", ondelete="CASCADE"), index=True)
    export_id: Mapped[int | None] = mapped_column(ForeignKey("exports.id", ondelete="SET NULL"), index=True)
    published_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    url: Mapped[str | None] = mapped_column(String(2048))


class OutgoingMessage(Base):
    """An e-mail bundle waiting to be sent (sent_at NULL) or sent; Message-ID makes sending idempotent."""

    __tablename__ = "outgoing_messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    export_id: Mapped[int] = mapped_column(ForeignKey("exports.id", ondelete="CASCADE"), index=True)
    message_id: Mapped[str] = mapped_column(String(255), unique=True)
    path: Mapped[str] = mapped_column(String(4096))
    #: The To header written into the message (None: `journal send --to` gives the recipient).
    to: Mapped[str | None] = mapped_column(String(320))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(String(1024))


class PrivacyZone(UserOwned, Base):
    """A circle (home, family) inside which no photo's position is ever exported."""

    __tablename__ = "privacy_zones"

    label: Mapped[str] = mapped_column(String(100), default="")
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
    radius_m: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


# --- GPX tracks and offline tile sets (journal import *.gpx / journal tiles add) ---------------


class Track(UserOwned, Base):
    """A recorded GPX track: the stored file, its time span, and a simplified geometry for drawing.

    ``geometry`` is a list of segments, each a list of ``[lat, lon, unix_time or null]`` points,
    simplified for drawing; placing photos by time reads the stored GPX file itself.
    """

    __tablename__ = "tracks"
    __table_args__ = (
        UniqueConstraint("user_id", "sha256"),
        Index("ix_tracks_user_span", "user_id", "started_at", "ended_at"),
    )

    trip_id: Mapped[int | None] = mapped_column(ForeignKey("trips.id", ondelete="SET NULL"), index=True)
    name: Mapped[str] = mapped_column(String(255), default="")
    original_name: Mapped[str] = mapped_column(String(1024), default="")
    sha256: Mapped[str] = mapped_column(String(64))
    #: The GPX file under uploads/ (tracks/<user id>/<sha256>.gpx); never modified.
    stored_path: Mapped[str] = mapped_column(String(255))
    bytes: Mapped[int] = mapped_column(BigInteger)
    #: First and last plausible point times (UTC); NULL when the track has no usable times.
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    point_count: Mapped[int] = mapped_column(Integer, default=0)
    distance_m: Mapped[float] = mapped_column(Float, default=0.0)
    geometry: Mapped[list[list[list[float | None]]]] = mapped_column(JSON)
    imported_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class TileSet(Base):
    """An offline raster tile set (MBTiles or PMTiles) the map pages draw over the basemap."""

    __tablename__ = "tile_sets"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    #: Absolute path of the file (a copy under the data home's tiles/, or the original with --link).
    path: Mapped[str] = mapped_column(String(4096), unique=True)
    #: mbtiles or pmtiles
    format: Mapped[str] = mapped_column(String(8))
    #: png, jpg or webp: the tiles' image type
    tile_type: Mapped[str] = mapped_column(String(8))
    min_zoom: Mapped[int] = mapped_column(Integer)
    max_zoom: Mapped[int] = mapped_column(Integer)
    #: Coverage in degrees; NULL when the file does not say (then: the whole world).
    west: Mapped[float | None] = mapped_column(Float)
    south: Mapped[float | None] = mapped_column(Float)
    east: Mapped[float | None] = mapped_column(Float)
    north: Mapped[float | None] = mapped_column(Float)
    #: Plain text (any HTML in the file's metadata is reduced to its text).
    attribution: Mapped[str] = mapped_column(String(1024), default="")
    registered_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class HomeIdentity(Base):
    """The data home this database belongs to (one row): writers refuse a database of another home.

    The data home keeps the same id and generation in its .journal-home file; each writer raises the
    generation (here first, then there), so a restored older copy of the database shows a lower one.
    """

    __tablename__ = "home_identity"

    #: Always 1: a second row cannot be inserted by two first writers racing.
    id: Mapped[int] = mapped_column(primary_key=True)
    home_id: Mapped[str] = mapped_column(String(64))
    generation: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
