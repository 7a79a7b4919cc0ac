"""Clocks that cannot be right, and times written out whatever their year. stdlib only.

One rule for every device clock the journal reads: a time more than FUTURE_SLACK after the moment
it was read (a GPX file parsed, a photo imported) cannot be right, and neither can one before the
device kind existed: EARLIEST_TRACK for GPS loggers (consumer GPS), EARLIEST_PHOTO for photos (scans
of old prints carry real dates from the 20th century; year 1 or 1899 is a reset clock).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

FUTURE_SLACK = timedelta(days=1)
EARLIEST_TRACK = datetime(1990, 1, 1, tzinfo=UTC)
EARLIEST_PHOTO = datetime(1900, 1, 1, tzinfo=UTC)
#: Offsets in use on Earth run from UTC-12 to UTC+14: how far a local time may be from UTC.
_EAST, _WEST = timedelta(hours=14), timedelta(hours=12)


def implausible(utc: datetime, *, earliest: datetime, read_at: datetime) -> bool:
    """True when an aware time is before `earliest` or more than FUTURE_SLACK after `read_at`."""
    return utc < earliest or utc > read_at + FUTURE_SLACK


def photo_clock_wrong(
    taken_at_utc: datetime | None, taken_at: datetime | None, imported_at: datetime
) -> bool:
    """True when a photo's capture time cannot be right (see module doc); False when it has none.

    A local time with no known offset counts as wrong only when no offset in use would make it right.
    Times are naive or aware UTC; the bounds are moved instead of the time, so year 1 and 9999 never
    overflow.
    """
    imported = _naive_utc(imported_at)
    earliest, latest = _naive_utc(EARLIEST_PHOTO), imported + FUTURE_SLACK
    if taken_at_utc is not None:
        utc = _naive_utc(taken_at_utc)
        return utc < earliest or utc > latest
    if taken_at is None:
        return False
    return taken_at < earliest - _WEST or taken_at > latest + _EAST


def _naive_utc(value: datetime) -> datetime:
    return value if value.tzinfo is None else value.astimezone(UTC).replace(tzinfo=None)


def strftime(value: datetime, fmt: str) -> str:
    """datetime.strftime with %Y always four digits (glibc writes year 1 as "1", not "0001")."""
    return value.strftime(fmt.replace("%Y", f"{value.year:04d}"))
